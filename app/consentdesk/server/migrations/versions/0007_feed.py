"""The change feed's webhooks: endpoints, the durable delivery queue, feed state.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("include_numbers", sa.Boolean, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text, nullable=True),
        _ts("previous_until", True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("from_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("msg_id", sa.String(64), nullable=False, unique=True),
        sa.Column("endpoint_id", sa.String(36), nullable=False),
        sa.Column("order_key", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _ts("next_at"),
        _ts("lease_until", True),
        _ts("created_at"),
        _ts("first_try_at", True),
        _ts("delivered_at", True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_deliveries_queue",
        "webhook_deliveries",
        ["endpoint_id", "order_key", "state", "id"],
    )
    op.create_index("ix_deliveries_due", "webhook_deliveries", ["state", "next_at"])
    op.create_table(
        "feed_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feed_state")
    op.drop_index("ix_deliveries_due", table_name="webhook_deliveries")
    op.drop_index("ix_deliveries_queue", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
