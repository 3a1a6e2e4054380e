"""Initial schema: ledger entries, request projection, subjects, users, tokens, read log.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=True),
        sa.Column("agent", sa.String(200), nullable=False),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("request_type", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("reference", sa.String(32), nullable=True),
        sa.Column("jurisdiction", sa.String(8), nullable=True),
        sa.Column("script_id", sa.String(200), nullable=True),
        sa.Column("script_version", sa.String(200), nullable=True),
        sa.Column("call_id", sa.String(200), nullable=True),
    )
    op.create_index("ix_entries_subject_seq", "entries", ["subject", "seq"])
    op.create_index("ix_entries_request_seq", "entries", ["request_id", "seq"])
    op.create_index("ix_entries_team_seq", "entries", ["team", "seq"])
    op.create_index("ix_entries_agent_seq", "entries", ["agent", "seq"])
    op.create_index("ix_entries_call_id", "entries", ["call_id"])
    op.create_index("ix_entries_reference", "entries", ["reference"])

    op.create_table(
        "requests",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("reference", sa.String(32), nullable=False, unique=True),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("is_open", sa.Boolean, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("updated_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_requests_subject", "requests", ["subject"])
    op.create_index("ix_requests_open_due", "requests", ["is_open", "due"])

    op.create_table(
        "subjects",
        sa.Column("number", sa.String(16), primary_key=True),
        sa.Column("customer_ref", sa.String(200), nullable=True),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )

    op.create_table(
        "users",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(200), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tokens_user_name", "tokens", ["user_name"])

    op.create_table(
        "read_log",
        sa.Column("seq", _ID, primary_key=True),
        sa.Column("record_id", sa.String(36), nullable=False, unique=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reader", sa.String(200), nullable=False),
        sa.Column("reader_team", sa.String(200), nullable=True),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("what", sa.String(16), nullable=False),
        sa.Column("call_id", sa.String(200), nullable=True),
        sa.Column("about", sa.String(36), nullable=True),
    )
    op.create_index("ix_read_log_team_seq", "read_log", ["reader_team", "seq"])
    op.create_index("ix_read_log_subject_seq", "read_log", ["subject", "seq"])


def downgrade() -> None:
    for table in ("read_log", "tokens", "users", "subjects", "requests", "entries"):
        op.drop_table(table)
