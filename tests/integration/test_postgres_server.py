"""The PostgreSQL the fixtures hand out is a real PostgreSQL 18, and per-test databases are isolated."""

from urllib.parse import urlsplit

import psycopg


def test_the_session_server_is_postgresql_18(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT version(), current_setting('server_version_num')::int").fetchone()
    assert row is not None
    version, version_num = row
    assert version.startswith("PostgreSQL 18")
    assert 180000 <= version_num < 190000


def test_pg_database_is_a_fresh_empty_database_of_its_own(pg_database: str, postgres_url: str) -> None:
    expected_name = urlsplit(pg_database).path.lstrip("/")
    assert expected_name != urlsplit(postgres_url).path.lstrip("/")
    with psycopg.connect(pg_database) as conn:
        current = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert current == (expected_name,)
    assert tables == (0,)


async def test_pg_database_accepts_async_connections_and_keeps_what_is_written(pg_database: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_database) as conn:
        await conn.execute("CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL)")
        await conn.execute("INSERT INTO notes VALUES (1, 'héllo wörld')")
        await conn.commit()
        cursor = await conn.execute("SELECT body FROM notes WHERE id = 1")
        assert await cursor.fetchone() == ("héllo wörld",)
