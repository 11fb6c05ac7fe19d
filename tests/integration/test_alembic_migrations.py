"""Each PostgreSQL service's Alembic migrations apply to, and revert from, a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from chat_auth.adapters.postgres import MIGRATIONS as AUTH_MIGRATIONS
from chat_rooms.adapters.postgres import MIGRATIONS as ROOMS_MIGRATIONS
from chat_runtime import postgres
from chat_runtime.testing.postgres import libpq_url, public_tables


@pytest.mark.parametrize(
    ("migrations", "head"), [(AUTH_MIGRATIONS, "0003"), (ROOMS_MIGRATIONS, "0004")], ids=["auth", "rooms"]
)
def test_migrations_apply_to_head_and_revert_to_base(pg_database: str, migrations: Path, head: str) -> None:
    postgres.upgrade(pg_database, migrations)
    assert {"alembic_version", "outbox"} <= public_tables(pg_database)
    with psycopg.connect(libpq_url(pg_database)) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (head,)
    postgres.downgrade(pg_database, migrations, "base")
    assert "outbox" not in public_tables(pg_database)


def test_applying_migrations_twice_changes_nothing(pg_database: str) -> None:
    postgres.upgrade(pg_database, AUTH_MIGRATIONS)
    postgres.upgrade(pg_database, AUTH_MIGRATIONS)
    assert "outbox" in public_tables(pg_database)


def test_prepare_creates_a_missing_database_then_migrates_it(postgres_url: str) -> None:
    url = make_url(postgres_url).set(database="chat_prepare_probe").render_as_string(hide_password=False)
    with psycopg.connect(libpq_url(postgres_url), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS chat_prepare_probe WITH (FORCE)")
    try:
        asyncio.run(postgres.prepare(url, ROOMS_MIGRATIONS))
        assert "outbox" in public_tables(url)
        assert postgres.ensure_database(url) is False
    finally:
        with psycopg.connect(libpq_url(postgres_url), autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS chat_prepare_probe WITH (FORCE)")


def test_the_outbox_rejects_a_second_row_for_the_same_event(pg_database: str) -> None:
    postgres.upgrade(pg_database, AUTH_MIGRATIONS)
    insert = (
        "INSERT INTO outbox (event_id, topic, record_key, record_value) "
        "VALUES ('6f1c3c1e-7d7a-4a53-9c35-8d0f7f4d9b01', 'chat.users.events', 'u1', 'x')"
    )
    with psycopg.connect(libpq_url(pg_database)) as connection:
        connection.execute(insert)
        connection.commit()
        with pytest.raises(psycopg.errors.UniqueViolation):
            connection.execute(insert)


def test_the_rotate_signing_key_command_publishes_a_second_key(
    pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat_app.cli import main

    postgres.upgrade(pg_database, AUTH_MIGRATIONS)
    monkeypatch.setenv("CHAT_AUTH_DATABASE_URL", pg_database)
    monkeypatch.setenv("CHAT_DATA_DIR", str(tmp_path))
    assert main(["rotate-signing-key"]) == 0
    assert main(["rotate-signing-key"]) == 0
    with psycopg.connect(libpq_url(pg_database)) as connection:
        keys = connection.execute("SELECT count(*) FROM signing_keys WHERE retired_at IS NULL").fetchone()
    assert keys == (2,)
