"""When a care-plan goal's confidence was last given (issue 12 item 3: the weekly goal check writes the
patient's 0-10 answer back to the goal, with when)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("care_plan_goals") as batch:
        batch.add_column(sa.Column("confidence_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("care_plan_goals") as batch:
        batch.drop_column("confidence_at")
