"""operator actions (who did what, and why), the operator's name on a console session, and event
processing attempts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 17:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("admin_sessions") as batch:
        batch.add_column(sa.Column("operator", sa.String(length=200), nullable=True))
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.CheckConstraint("length(reason) > 0", name=op.f("ck_operator_actions_reason_given")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_actions")),
    )
    op.create_index(
        op.f("ix_operator_actions_created"), "operator_actions", ["created"], unique=False
    )
    op.create_index(
        op.f("ix_operator_actions_target_type_target_id"),
        "operator_actions",
        ["target_type", "target_id"],
        unique=False,
    )
    op.create_table(
        "event_attempts",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_attempts_event_id_events")
        ),
        sa.PrimaryKeyConstraint("event_id", "attempt", name=op.f("pk_event_attempts")),
    )


def downgrade() -> None:
    op.drop_table("event_attempts")
    op.drop_index(op.f("ix_operator_actions_target_type_target_id"), table_name="operator_actions")
    op.drop_index(op.f("ix_operator_actions_created"), table_name="operator_actions")
    op.drop_table("operator_actions")
    with op.batch_alter_table("admin_sessions") as batch:
        batch.drop_column("operator")
