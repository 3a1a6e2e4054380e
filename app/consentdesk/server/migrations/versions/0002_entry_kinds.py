"""Review records on the ledger: an index by record kind.

Flags, incidents and call tags are appended to ``entries`` beside the
captures; the review reads them by kind (open flags on every page of the
action list), which without this index would scan the whole ledger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_entries_kind_seq", "entries", ["kind", "seq"])


def downgrade() -> None:
    op.drop_index("ix_entries_kind_seq", table_name="entries")
