"""Per-patient consent record (date, channels), what each enrollment's schedule was derived from, event
dates and stop reasons on enrollments, and the scheduling timeline (why a touch was skipped or deferred)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch_op:
        batch_op.add_column(sa.Column("consent_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("consent_channels", sa.JSON(), nullable=True))
    with op.batch_alter_table("enrollments") as batch_op:
        batch_op.add_column(sa.Column("schedule_basis", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("events", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("status_reason", sa.String(length=64), nullable=True))
    op.create_table(
        "timeline_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=True),
        sa.Column("touch_row_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.ForeignKeyConstraint(["enrollment_id"], ["enrollments.id"]),
        sa.ForeignKeyConstraint(["touch_row_id"], ["scheduled_touches.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_timeline_events_patient_at", "timeline_events", ["patient_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_timeline_events_patient_at", table_name="timeline_events")
    op.drop_table("timeline_events")
    with op.batch_alter_table("enrollments") as batch_op:
        batch_op.drop_column("status_reason")
        batch_op.drop_column("events")
        batch_op.drop_column("schedule_basis")
    with op.batch_alter_table("patients") as batch_op:
        batch_op.drop_column("consent_channels")
        batch_op.drop_column("consent_date")
