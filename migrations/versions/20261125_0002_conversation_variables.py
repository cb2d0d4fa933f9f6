"""enrollment and conversation variables (appointment time, medication name)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch_op:
        batch_op.add_column(sa.Column("variables", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("variables", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_column("variables")
    with op.batch_alter_table("enrollments") as batch_op:
        batch_op.drop_column("variables")
