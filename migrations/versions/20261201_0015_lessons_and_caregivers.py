"""Education lessons sent part by part (issue 12 item 5); caregivers with the patient's permission and a
scope, answers and messages that record a caregiver, who is answering from a shared phone (issue 12 item 6)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "caregivers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("relationship_to_patient", sa.String(40), nullable=True),
        sa.Column("language", sa.String(16), nullable=False, server_default="en"),
        sa.Column("scopes", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("consent_basis", sa.String(40), nullable=False),
        sa.Column("consent_recorded_by", sa.String(200), nullable=False),
        sa.Column("consent_recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("patient_id", "phone", name="uq_caregivers_patient_phone"),
    )
    op.create_index("ix_caregivers_patient_id", "caregivers", ["patient_id"])
    op.create_index("ix_caregivers_phone", "caregivers", ["phone"])
    with op.batch_alter_table("answers") as batch_op:
        batch_op.add_column(sa.Column("given_by_caregiver_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_answers_caregiver", "caregivers", ["given_by_caregiver_id"], ["id"])
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("caregiver_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_messages_caregiver", "caregivers", ["caregiver_id"], ["id"])
    op.create_table(
        "lesson_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("source_key", sa.String(200), nullable=False, unique=True),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id"), nullable=True),
        sa.Column("parts_total", sa.Integer(), nullable=False),
        sa.Column("parts_sent", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False, server_default="waiting"),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_lessons_patient_status", "lesson_deliveries", ["patient_id", "status"])
    op.create_index("ix_lesson_deliveries_due_at", "lesson_deliveries", ["due_at"])
    op.create_table(
        "shared_phone_choices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="asking"),
        sa.Column("candidates", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("held_message_id", sa.Integer(), sa.ForeignKey("messages.id"), nullable=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=True),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_shared_phone_choices_phone", "shared_phone_choices", ["phone", "status"])


def downgrade() -> None:
    op.drop_index("ix_shared_phone_choices_phone", "shared_phone_choices")
    op.drop_table("shared_phone_choices")
    op.drop_index("ix_lesson_deliveries_due_at", "lesson_deliveries")
    op.drop_index("ix_lessons_patient_status", "lesson_deliveries")
    op.drop_table("lesson_deliveries")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_constraint("fk_messages_caregiver", type_="foreignkey")
        batch_op.drop_column("caregiver_id")
    with op.batch_alter_table("answers") as batch_op:
        batch_op.drop_constraint("fk_answers_caregiver", type_="foreignkey")
        batch_op.drop_column("given_by_caregiver_id")
    op.drop_index("ix_caregivers_phone", "caregivers")
    op.drop_index("ix_caregivers_patient_id", "caregivers")
    op.drop_table("caregivers")
