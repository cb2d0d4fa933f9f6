"""Voice: the calls table, conversations.channel, patients' voice opt-out and SMS capability, programs'
nurse line (issue 9)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("programs") as batch_op:
        batch_op.add_column(sa.Column("nurse_line", sa.String(20), nullable=True))
    with op.batch_alter_table("patients") as batch_op:
        batch_op.add_column(sa.Column("voice_opted_out", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("voice_opted_out_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sms_capable", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(10), nullable=False, server_default="sms"))
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=True),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id"), nullable=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("call_key", sa.String(200), nullable=False, unique=True),
        sa.Column("call_sid", sa.String(64), nullable=True, unique=True),
        sa.Column("to_number", sa.String(20), nullable=True),
        sa.Column("from_number", sa.String(20), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("answered_by", sa.String(32), nullable=True),
        sa.Column("last_call_status", sa.String(20), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("opening", sa.JSON(), nullable=False),
        sa.Column("turns", sa.JSON(), nullable=False),
        sa.Column("pending", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_calls_patient_id", "calls", ["patient_id"])
    op.create_index("ix_calls_conversation_id", "calls", ["conversation_id"])
    op.create_index("ix_calls_status_next_try", "calls", ["status", "next_try_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_status_next_try", table_name="calls")
    op.drop_index("ix_calls_conversation_id", table_name="calls")
    op.drop_index("ix_calls_patient_id", table_name="calls")
    op.drop_table("calls")
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_column("channel")
    with op.batch_alter_table("patients") as batch_op:
        batch_op.drop_column("sms_capable")
        batch_op.drop_column("voice_opted_out_at")
        batch_op.drop_column("voice_opted_out")
    with op.batch_alter_table("programs") as batch_op:
        batch_op.drop_column("nurse_line")
