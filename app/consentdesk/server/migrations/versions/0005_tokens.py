"""Token lifecycle and enrollment codes.

Tokens gain a label, an expiry, a last-used time and a revocation time;
``enrollment_codes`` holds one-time codes a desk trades for its own token;
``enroll_failures`` counts wrong codes for the rate limit.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("label", sa.String(200), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "enrollment_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(200), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_days", sa.Integer, nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_enrollment_codes_user_name", "enrollment_codes", ["user_name"])
    op.create_table(
        "enroll_failures",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_enroll_failures_at", "enroll_failures", ["at"])


def downgrade() -> None:
    op.drop_index("ix_enroll_failures_at", table_name="enroll_failures")
    op.drop_table("enroll_failures")
    op.drop_index("ix_enrollment_codes_user_name", table_name="enrollment_codes")
    op.drop_table("enrollment_codes")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("label")
