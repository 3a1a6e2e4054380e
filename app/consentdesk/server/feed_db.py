"""Tables of the change feed and webhooks (migration 0007).

``webhook_endpoints`` are the admins' registered receivers; ``webhook_deliveries``
is the durable delivery queue (one row per change × endpoint, delivered in ``id``
order per ``order_key``); ``feed_state`` keeps the fan-out cursor and the key of
the subjects' pseudonymous ids.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from consentdesk.server.db import metadata

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON list of event types
    Column("include_numbers", Boolean, nullable=False),
    Column("secret", Text, nullable=False),
    # The secret before the last rotation, still signed with until previous_until.
    Column("previous_secret", Text, nullable=True),
    Column("previous_until", DateTime(timezone=True), nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    # Changes after this entry are delivered (the ledger head when it was added).
    Column("from_seq", BigInteger, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("msg_id", String(64), nullable=False, unique=True),
    Column("endpoint_id", String(36), nullable=False),
    Column("order_key", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(12), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False),
    Column("next_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("first_try_at", DateTime(timezone=True), nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_deliveries_queue", "endpoint_id", "order_key", "state", "id"),
    Index("ix_deliveries_due", "state", "next_at"),
)

feed_state = Table(
    "feed_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
