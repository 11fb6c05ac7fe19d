"""The one-shot operator commands against the real servers: `chat migrate` says what it did to each store, two
migrators of one database never both migrate it, and `chat create-topics` logs as CHAT_LOG_FORMAT says."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import make_url

from chat_auth.adapters.postgres import MIGRATIONS as AUTH_MIGRATIONS
from chat_rooms.adapters.postgres import MIGRATIONS as ROOMS_MIGRATIONS
from chat_runtime import postgres
from chat_runtime.testing.postgres import alembic_version, libpq_url

AUTH_HEAD = ("0001", "0002", "0003")
ROOMS_HEAD = ("0001", "0002", "0003", "0004")


def _fresh_database_urls(postgres_url: str, count: int) -> list[str]:
    return [
        make_url(postgres_url).set(database=f"test_fresh_{secrets.token_hex(6)}").render_as_string(hide_password=False)
        for _ in range(count)
    ]


def _drop(postgres_url: str, urls: list[str]) -> None:
    with psycopg.connect(libpq_url(postgres_url), autocommit=True) as admin:
        for url in urls:
            name = str(make_url(url).database)
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def fresh_databases(postgres_url: str) -> Iterator[list[str]]:
    """URLs of two databases that do not exist yet (dropped after the test if something created them)."""
    urls = _fresh_database_urls(postgres_url, 2)
    try:
        yield urls
    finally:
        _drop(postgres_url, urls)


def _chat(args: list[str], env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Run ``chat <args>`` as an operator would; every line it writes, parsed as JSON (fails on one that is not)."""
    done = subprocess.run(
        [sys.executable, "-m", "chat_app", *args],
        env={**os.environ, **env, "CHAT_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def _by_store(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["store"]: event for event in events if "store" in event}


def test_migrate_on_fresh_databases_says_it_created_them_and_which_revisions_it_applied(
    fresh_databases: list[str], mongo_url: str, mongo_database_name: str, tmp_path: Path
) -> None:
    auth_url, rooms_url = fresh_databases
    env = {
        "CHAT_DATA_DIR": str(tmp_path),
        "CHAT_AUTH_DATABASE_URL": auth_url,
        "CHAT_ROOMS_DATABASE_URL": rooms_url,
        "CHAT_MESSAGES_MONGO_URL": mongo_url,
        "CHAT_MESSAGES_MONGO_DATABASE": mongo_database_name,
    }

    first = _by_store(_chat(["migrate"], env))

    assert first["auth"]["event"] == "postgres.migrated"
    assert first["auth"]["created_database"] is True
    assert (first["auth"]["from_revision"], first["auth"]["to_revision"]) == ("base", AUTH_HEAD[-1])
    assert tuple(first["auth"]["applied"]) == AUTH_HEAD
    assert first["rooms"]["event"] == "postgres.migrated"
    assert first["rooms"]["created_database"] is True
    assert tuple(first["rooms"]["applied"]) == ROOMS_HEAD
    assert first["messages"]["event"] == "messages.indexes_ensured"
    assert {event["service"] for event in first.values()} == {"migrate"}

    again = _by_store(_chat(["migrate", "--target", "rooms"], env))

    assert list(again) == ["rooms"]
    assert again["rooms"]["event"] == "postgres.already_at_head"
    assert again["rooms"]["revision"] == ROOMS_HEAD[-1]


def test_migrate_names_only_the_revisions_a_database_lacked(pg_database: str, tmp_path: Path) -> None:
    postgres.upgrade(pg_database, ROOMS_MIGRATIONS, "0002")

    events = _by_store(
        _chat(
            ["migrate", "--target", "rooms"], {"CHAT_DATA_DIR": str(tmp_path), "CHAT_ROOMS_DATABASE_URL": pg_database}
        )
    )

    assert events["rooms"]["event"] == "postgres.migrated"
    assert events["rooms"]["created_database"] is False
    assert (events["rooms"]["from_revision"], events["rooms"]["to_revision"]) == ("0002", "0004")
    assert events["rooms"]["applied"] == ["0003", "0004"]


def test_two_migrators_starting_at_once_migrate_a_fresh_database_once(
    postgres_url: str, fresh_databases: list[str]
) -> None:
    url = fresh_databases[0]

    async def both() -> list[postgres.Migration]:
        return list(
            await asyncio.gather(postgres.prepare(url, AUTH_MIGRATIONS), postgres.prepare(url, AUTH_MIGRATIONS))
        )

    for _ in range(3):  # each round on a database that does not exist yet: the creation races too
        _drop(postgres_url, [url])
        results = asyncio.run(both())

        assert sorted(result.created_database for result in results) == [False, True]
        migrated = [result for result in results if result.applied]
        at_head = [result for result in results if not result.applied]
        assert len(migrated) == 1
        assert migrated[0].applied == AUTH_HEAD
        assert len(at_head) == 1
        assert (at_head[0].from_revision, at_head[0].to_revision) == (AUTH_HEAD[-1], AUTH_HEAD[-1])
        assert alembic_version(url) == AUTH_HEAD[-1]
        with psycopg.connect(libpq_url(url)) as connection:
            assert connection.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        ours = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


def test_create_topics_logs_json_lines_when_told_to(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"test-{secrets.token_hex(4)}."
    env = {
        "CHAT_DATA_DIR": str(tmp_path),
        "CHAT_BUS": "kafka",
        "CHAT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CHAT_KAFKA_TOPIC_PREFIX": prefix,
    }
    try:
        first = _chat(["create-topics"], env)
        again = _chat(["create-topics"], env)
    finally:
        asyncio.run(_delete_topics(kafka_bootstrap, prefix))

    ready = [event for event in first if event["event"] == "topics.ready"]
    assert len(ready) == 1
    assert f"{prefix}chat.rooms.events" in ready[0]["created"]
    assert f"{prefix}chat.rooms.events.dlq" in ready[0]["created"]
    assert {event["service"] for event in first} == {"create-topics"}
    assert [event["created"] for event in again if event["event"] == "topics.ready"] == [[]]
