"""notifications: the outbox, the application's endpoints, low-balance thresholds and alerts

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("balances", sa.Column("low_balance", sa.BigInteger(), nullable=True))
    op.add_column(
        "balances",
        sa.Column("low_alert", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_to", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("updated", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')",
            name=op.f("ck_notifications_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        op.f("ix_notifications_status_next_attempt_at"),
        "notifications",
        ["status", "next_attempt_at"],
    )
    op.create_index(op.f("ix_notifications_account_id"), "notifications", ["account_id"])
    op.create_index(op.f("ix_notifications_type"), "notifications", ["type"])
    op.create_table(
        "notification_endpoints",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("types", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_endpoints")),
    )


def downgrade() -> None:
    op.drop_table("notification_endpoints")
    op.drop_index(op.f("ix_notifications_type"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_account_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_status_next_attempt_at"), table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("balances") as batch:
        batch.drop_column("low_alert")
        batch.drop_column("low_balance")
