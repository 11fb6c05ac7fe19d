"""Reading a service's PostgreSQL database back in tests: its outbox as consumers would decode it, its tables and
its migration version."""

from __future__ import annotations

from chat_contracts.envelope import Envelope, Record, decode
from chat_contracts.topics import TOPICS
from chat_runtime.extras import missing_extra
from chat_runtime.outbox import OUTBOX, decode_headers

try:
    import psycopg
    from sqlalchemy import make_url, select
    from sqlalchemy.ext.asyncio import AsyncEngine
except ImportError as missing:
    raise missing_extra("postgres", __name__, missing) from missing


def libpq_url(url: str) -> str:
    """``url`` as psycopg's own ``connect`` takes it (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def outbox_envelopes(engine: AsyncEngine) -> list[Envelope]:
    """Every envelope in the outbox, in the order it was queued, decoded as the relay's consumers would."""
    async with engine.connect() as connection:
        rows = (await connection.execute(select(OUTBOX).order_by(OUTBOX.c.position))).all()
    return [
        decode(
            Record(
                topic=row.topic,
                key=row.record_key.encode(),
                value=row.record_value,
                headers=decode_headers(row.headers),
            ),
            TOPICS[row.topic],
        )
        for row in rows
    ]


def public_tables(url: str) -> set[str]:
    with psycopg.connect(libpq_url(url)) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows}


def alembic_version(url: str) -> str | None:
    """The migration the database is at, or ``None`` when it is at base."""
    with psycopg.connect(libpq_url(url)) as connection:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])
