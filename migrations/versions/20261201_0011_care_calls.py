"""Care managers' calls logged from the patient page (outcome, CCM minutes, the TCM attempt they fed); an index
for the page's transcript (a patient's latest messages)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "care_calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("program_id", sa.Integer(), sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contact_attempt_id", sa.Integer(), sa.ForeignKey("contact_attempts.id"), nullable=True),
    )
    op.create_index("ix_care_calls_patient_called", "care_calls", ["patient_id", "called_at"])
    op.create_index("ix_messages_patient_created", "messages", ["patient_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_patient_created", table_name="messages")
    op.drop_index("ix_care_calls_patient_called", table_name="care_calls")
    op.drop_table("care_calls")
