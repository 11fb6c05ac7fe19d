"""PostgreSQL helpers for the services that own a PostgreSQL database (auth, rooms)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog

from chat_runtime.extras import missing_extra
from chat_runtime.store_metrics import StoreMetrics

try:
    import psycopg
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from psycopg import sql
    from sqlalchemy import Engine, create_engine, event, make_url, pool, text
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
except ImportError as missing:
    raise missing_extra("postgres", __name__, missing) from missing

log = structlog.get_logger("chat.postgres")

MIGRATION_LOCK: Final = int.from_bytes(b"chatmigr")
"""The key of the session-level advisory lock a migrator holds on the database it migrates. Advisory locks are
per database, so migrators of different databases never wait for each other."""


def async_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async SQLAlchemy engine on psycopg 3; pings pooled connections before use."""
    return create_async_engine(_driver_url(url), pool_size=pool_size, pool_pre_ping=True)


def observe_statements(engine: AsyncEngine | Engine, metrics: StoreMetrics) -> None:
    """Time every statement ``engine`` runs, failed ones too, as ``store="postgres"`` and its first keyword."""
    sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    started_at = "chat_store_started"

    def started(_conn: Any, _cursor: Any, _statement: str, _parameters: Any, context: Any, _many: bool) -> None:
        setattr(context, started_at, time.perf_counter())

    def finished(_conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool) -> None:
        began = getattr(context, started_at, None)
        if began is not None:
            metrics.observe("postgres", statement_kind(statement), time.perf_counter() - began)

    def failed(exception_context: Any) -> None:
        context, statement = exception_context.execution_context, exception_context.statement
        began = getattr(context, started_at, None) if context is not None else None
        if began is not None and statement:
            metrics.observe("postgres", statement_kind(statement), time.perf_counter() - began)

    event.listen(sync, "before_cursor_execute", started)
    event.listen(sync, "after_cursor_execute", finished)
    event.listen(sync, "handle_error", failed)


def statement_kind(statement: str) -> str:
    """The statement's first keyword, lowercased (``select``, ``insert``…); ``other`` when it starts otherwise, so
    the label stays a short list of SQL words."""
    first = statement.lstrip(" \t\r\n(").split(None, 1)
    word = first[0].lower() if first else ""
    return word if word.isalpha() and len(word) <= 16 else "other"


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers ``SELECT 1``."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def _driver_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _libpq_url(url: str, *, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _database_name(url: str) -> str:
    name = make_url(url).database
    if not name:
        raise ValueError(f"no database name in {make_url(url).render_as_string()}")
    return name


def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` if it does not exist; True when it was created (by this call: of two
    callers racing to create it, one gets True)."""
    name = _database_name(url)
    with psycopg.connect(_libpq_url(url, database="postgres"), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        try:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            return False  # created meanwhile by another migrator (the catalog's unique index may say so first)
        return True


def alembic_config(url: str, script_location: Path) -> Config:
    """An Alembic configuration for a service's migrations, without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", _driver_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, script_location: Path, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (synchronously; call from a thread inside an event loop)."""
    command.upgrade(alembic_config(url, script_location), revision)


def downgrade(url: str, script_location: Path, revision: str) -> None:
    """Revert migrations down to ``revision``."""
    command.downgrade(alembic_config(url, script_location), revision)


def current_revision(url: str) -> str | None:
    """The migration the database is at, or ``None`` at base (no migration applied yet)."""
    engine = create_engine(_driver_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


@dataclass(frozen=True, slots=True)
class Migration:
    """What ``prepare`` did to one database."""

    database: str
    created_database: bool
    from_revision: str | None
    """``None``: the database had no migration applied (base)."""
    to_revision: str | None
    applied: tuple[str, ...]
    """The revisions applied, oldest first; empty when the database was already at head."""


async def prepare(url: str, script_location: Path) -> Migration:
    """Create the database if needed and apply every migration, holding the database's migration lock: a second
    migrator starting meanwhile waits, then finds the database at head. Logs and returns what it did."""
    migration = await asyncio.to_thread(_prepare, url, script_location)
    if migration.applied:
        log.info(
            "postgres.migrated",
            database=migration.database,
            created_database=migration.created_database,
            from_revision=migration.from_revision or "base",
            to_revision=migration.to_revision,
            applied=list(migration.applied),
        )
    else:
        log.info("postgres.already_at_head", database=migration.database, revision=migration.to_revision or "base")
    return migration


def _prepare(url: str, script_location: Path) -> Migration:
    database = _database_name(url)
    created = ensure_database(url)
    # A session-level lock on a connection of its own, released when that connection closes (even if this
    # process dies mid-migration); the migrations run on Alembic's connection meanwhile.
    with psycopg.connect(_libpq_url(url), autocommit=True) as lock:
        if not _try_lock(lock):
            log.info("postgres.migration_waiting", database=database, reason="another migrator holds the lock")
            lock.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        before = current_revision(url)
        upgrade(url, script_location)
        after = current_revision(url)
    return Migration(
        database=database,
        created_database=created,
        from_revision=before,
        to_revision=after,
        applied=_revisions_between(script_location, before, after),
    )


def _try_lock(connection: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = connection.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK,)).fetchone()
    return bool(row and row[0])


def _revisions_between(script_location: Path, before: str | None, after: str | None) -> tuple[str, ...]:
    """The revisions after ``before`` up to and including ``after``, oldest first."""
    if before == after or after is None:
        return ()
    scripts = ScriptDirectory(str(script_location))
    newest_first = scripts.iterate_revisions(after, before or "base")
    return tuple(reversed([script.revision for script in newest_first if script.revision != before]))
