"""on-call and supervisor paging for EMERGENCY escalations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("programs") as batch_op:
        batch_op.add_column(sa.Column("on_call_phone", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("supervisor_phone", sa.String(length=20), nullable=True))
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.add_column(sa.Column("page_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_paged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.drop_column("last_paged_at")
        batch_op.drop_column("page_count")
    with op.batch_alter_table("programs") as batch_op:
        batch_op.drop_column("supervisor_phone")
        batch_op.drop_column("on_call_phone")
