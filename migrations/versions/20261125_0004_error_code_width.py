"""messages.error_code wide enough for "unconfirmed:<code>"

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.alter_column("error_code", type_=sa.String(length=64), existing_type=sa.String(length=16))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.alter_column("error_code", type_=sa.String(length=16), existing_type=sa.String(length=64))
