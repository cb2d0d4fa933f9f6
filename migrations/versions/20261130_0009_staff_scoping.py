"""Staff sign-in and scoping: users.session_version (bumped on sign-out and password change, so old
session cookies stop working), users.timezone (the zone staff read times in), user_programs (which
programs, and which team in each, a user works for), escalations.assigned_to_id / assigned_at (claim and
assign in the queue), an index on audit_events.at (the admin's audit page reads the newest first)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column("timezone", sa.String(64), nullable=False, server_default="America/New_York")
        )
    op.create_table(
        "user_programs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("program_id", sa.Integer(), sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("team", sa.String(64), nullable=True),
        sa.UniqueConstraint("user_id", "program_id", name="uq_user_programs"),
    )
    op.create_index("ix_user_programs_program", "user_programs", ["program_id"])
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.add_column(sa.Column("assigned_to_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_escalations_assigned_to", "users", ["assigned_to_id"], ["id"])
        batch_op.add_column(sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_escalations_resolved_at", "escalations", ["resolved_at"])


def downgrade() -> None:
    op.drop_index("ix_escalations_resolved_at", table_name="escalations")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.drop_constraint("fk_escalations_assigned_to", type_="foreignkey")
        batch_op.drop_column("assigned_at")
        batch_op.drop_column("assigned_to_id")
    op.drop_index("ix_user_programs_program", table_name="user_programs")
    op.drop_table("user_programs")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("timezone")
        batch_op.drop_column("session_version")
