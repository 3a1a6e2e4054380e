"""Alembic environment: always run programmatically on a connection we hand in."""

from __future__ import annotations

from alembic import context

from consentdesk.server.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through consentdesk.server.db.upgrade()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
