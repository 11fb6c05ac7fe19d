"""PostgreSQL helpers for the services that own a PostgreSQL database (auth, rooms)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chat_runtime.extras import missing_extra

try:
    import psycopg
    from alembic import command
    from alembic.config import Config
    from psycopg import sql
    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
except ImportError as missing:
    raise missing_extra("postgres", __name__, missing) from missing


def async_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async SQLAlchemy engine on psycopg 3; pings pooled connections before use."""
    return create_async_engine(_driver_url(url), pool_size=pool_size, pool_pre_ping=True)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers ``SELECT 1``."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def _driver_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` if it does not exist; True when it was created."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise ValueError(f"no database name in {parsed.render_as_string()}")
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
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


async def prepare(url: str, script_location: Path) -> None:
    """Create the database if needed and apply every migration."""
    await asyncio.to_thread(ensure_database, url)
    await asyncio.to_thread(upgrade, url, script_location)
