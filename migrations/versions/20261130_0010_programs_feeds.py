"""Programs of their own (sender, time zone (the nurse line came with voice, 0007), campaigns, caps); HL7 ADT messages received;
discharges with their TCM clock and care managers' contact attempts (issue 10 items 4-6)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("programs") as batch_op:
        batch_op.add_column(sa.Column("sender_number", sa.String(20), nullable=True))
        batch_op.add_column(sa.Column("messaging_service_sid", sa.String(34), nullable=True))
        batch_op.add_column(
            sa.Column("timezone", sa.String(64), nullable=False, server_default="America/New_York")
        )
        batch_op.add_column(sa.Column("campaigns", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("daily_cap", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("weekly_cap", sa.Integer(), nullable=True))
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("sender", sa.String(34), nullable=True))
    op.create_table(
        "adt_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sender", sa.String(200), nullable=False),
        sa.Column("control_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(8), nullable=False),
        sa.Column("ack_code", sa.String(2), nullable=False),
        sa.Column("detail", sa.String(400), nullable=False),
        sa.Column("program_id", sa.Integer(), sa.ForeignKey("programs.id"), nullable=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("sender", "control_id", name="uq_adt_messages_sender_control"),
    )
    op.create_table(
        "discharges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("program_id", sa.Integer(), sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("visit_number", sa.String(64), nullable=False),
        sa.Column("discharged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("discharge_date", sa.Date(), nullable=False),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("diagnoses", sa.JSON(), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("readmitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enrollment_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("patient_id", "visit_number", name="uq_discharges_patient_visit"),
    )
    op.create_index("ix_discharges_patient_id", "discharges", ["patient_id"])
    op.create_index("ix_discharges_status_deadline", "discharges", ["status", "deadline_at"])
    op.create_table(
        "contact_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("discharge_id", sa.Integer(), sa.ForeignKey("discharges.id"), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("attempted_by", sa.String(200), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_contact_attempts_discharge_id", "contact_attempts", ["discharge_id"])


def downgrade() -> None:
    op.drop_table("contact_attempts")
    op.drop_table("discharges")
    op.drop_table("adt_messages")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("sender")
    with op.batch_alter_table("programs") as batch_op:
        for column in (
            "weekly_cap",
            "daily_cap",
            "campaigns",
            "timezone",
            "messaging_service_sid",
            "sender_number",
        ):
            batch_op.drop_column(column)
