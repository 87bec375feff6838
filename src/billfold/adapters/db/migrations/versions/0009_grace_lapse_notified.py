"""subscriptions: the grace end whose lapse has been notified (entitlements.updated, once)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "subscriptions", sa.Column("grace_lapse_notified", sa.BigInteger(), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch:
        batch.drop_column("grace_lapse_notified")
