"""Users projection: the avatar URL that user.updated carries, for the user lookups.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: a metadata-only change however many users are projected. Lookups by id use the
    # primary key and lookups by username the unique index on username_key: no new index is needed.
    op.add_column("users", sa.Column("avatar_url", sa.String(2048), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "avatar_url")
