"""Reading back what an outbox recorded: the durable past of a topic when the bus itself keeps none.

The in-process bus forgets its records once consumed and with the process; the outbox keeps every record it
relayed for ``OutboxRelay``'s retention (7 days). ``chat_runtime.bus.follow`` reads a topic's recent past here
in the all-in-one mode.
"""

from __future__ import annotations

from datetime import datetime

from chat_contracts.envelope import Record
from chat_runtime.extras import missing_extra
from chat_runtime.outbox.store import OUTBOX, decode_headers

try:
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncEngine
except ImportError as missing:
    raise missing_extra("postgres", __name__, missing) from missing


async def records_since(engine: AsyncEngine, *, topic: str, since: datetime) -> list[Record]:
    """Every record for ``topic`` written to the outbox at or after ``since``, relayed or not, in outbox order."""
    query = (
        select(OUTBOX.c.topic, OUTBOX.c.record_key, OUTBOX.c.record_value, OUTBOX.c.headers)
        .where(OUTBOX.c.topic == topic, OUTBOX.c.created_at >= since)
        .order_by(OUTBOX.c.position)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [
        Record(
            topic=row.topic,
            key=row.record_key.encode("utf-8"),
            value=row.record_value,
            headers=decode_headers(row.headers),
        )
        for row in rows
    ]
