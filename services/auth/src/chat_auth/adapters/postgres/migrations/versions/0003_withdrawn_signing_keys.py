"""Withdrawn signing keys: a leaked key leaves the JWKS at once and is remembered, so withdrawing is idempotent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("signing_keys", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM signing_keys WHERE withdrawn_at IS NOT NULL")
    op.drop_column("signing_keys", "withdrawn_at")
