"""What the welcome flow learns about a patient (preferred time of day, interpreter, caregiver permission,
ZIP code for local resources) and the program setting that holds outreach until consent (issue 12 item 1)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch_op:
        batch_op.add_column(sa.Column("preferred_time", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("interpreter_needed", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("caregiver_may_receive", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("zip_code", sa.String(10), nullable=True))
    with op.batch_alter_table("programs") as batch_op:
        batch_op.add_column(
            sa.Column("consent_before_outreach", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("programs") as batch_op:
        batch_op.drop_column("consent_before_outreach")
    with op.batch_alter_table("patients") as batch_op:
        batch_op.drop_column("zip_code")
        batch_op.drop_column("caregiver_may_receive")
        batch_op.drop_column("interpreter_needed")
        batch_op.drop_column("preferred_time")
