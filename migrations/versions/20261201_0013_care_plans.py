"""Care plans (issue 12 item 3): the plan's monitoring modules, goals, medications with dose times, and
each change of a patient's threshold overrides (who, when, from, to).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "care_plans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False, unique=True),
        sa.Column("monitoring", sa.JSON(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "care_plan_goals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(300), nullable=False),
        sa.Column("weekly_check", sa.Boolean(), nullable=False),
        sa.Column("confidence", sa.Integer(), nullable=True),
    )
    op.create_table(
        "care_plan_medications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("dose", sa.String(100), nullable=True),
        sa.Column("times", sa.JSON(), nullable=False),
    )
    op.create_table(
        "threshold_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("old_value", sa.Float(), nullable=True),
        sa.Column("new_value", sa.Float(), nullable=True),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_threshold_changes_patient_name", "threshold_changes", ["patient_id", "name"])


def downgrade() -> None:
    op.drop_index("ix_threshold_changes_patient_name", table_name="threshold_changes")
    op.drop_table("threshold_changes")
    op.drop_table("care_plan_medications")
    op.drop_table("care_plan_goals")
    op.drop_table("care_plans")
