"""Direct rooms remember whether one of their two people blocked the other (docs/decisions/0009).

Direct rooms whose pair already has a block are marked now, and their ``room.blocked`` event is queued in the
outbox in the same transaction, so the messages service and the gateway close them too: without it, a block
made before this version would still let the blocked person write in the room.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from chat_contracts.envelope import Envelope, encode
from chat_contracts.rooms import RoomBlocked
from chat_contracts.topics import ROOMS_EVENTS
from chat_runtime.outbox import OUTBOX, encode_headers

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MARK_BLOCKED = sa.text(
    """
    UPDATE rooms SET blocked = true, version = version + 1, updated_at = :now
    WHERE kind = 'direct' AND EXISTS (
        SELECT 1 FROM blocks
        WHERE rooms.dm_key IN (blocks.blocker::text || ':' || blocks.blocked::text,
                               blocks.blocked::text || ':' || blocks.blocker::text)
    )
    RETURNING id, version
    """
)


def upgrade() -> None:
    # A constant default: a metadata-only change however many rooms there are.
    op.add_column("rooms", sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_check_constraint("rooms_blocked_check", "rooms", "kind = 'direct' OR NOT blocked")
    connection = op.get_bind()
    now = datetime.now(UTC)
    for room_id, version in connection.execute(_MARK_BLOCKED, {"now": now}).all():
        envelope = Envelope.wrap(
            RoomBlocked(room_id=room_id, room_version=version, occurred_at=now),
            source="rooms",
            key=str(room_id),
            correlation_id="migration-0004",
        )
        record = encode(envelope, topic=ROOMS_EVENTS.name)
        connection.execute(
            sa.insert(OUTBOX).values(
                event_id=envelope.id,
                topic=ROOMS_EVENTS.name,
                record_key=envelope.key,
                record_value=record.value,
                headers=encode_headers(record.headers),
            )
        )


def downgrade() -> None:
    op.drop_constraint("rooms_blocked_check", "rooms", type_="check")
    op.drop_column("rooms", "blocked")
