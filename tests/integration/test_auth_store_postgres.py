"""The PostgreSQL auth store passes the store contract; its schema, locks and housekeeping hold for real."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import cast, get_args

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Table, create_engine, func, make_url, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chat_auth.adapters.postgres import MIGRATIONS
from chat_auth.adapters.postgres import tables as t
from chat_auth.adapters.postgres.store import PostgresAuthStore
from chat_auth.domain.errors import Conflict
from chat_auth.domain.model import AuthMethod, CodePurpose, OidcState, RefreshToken, RevocationReason
from chat_auth.service.ports import AuthStore, Tx
from chat_auth.testing.store_contract import (
    T0,
    StoreContract,
    a_code,
    a_session,
    a_token,
    a_user,
    an_event,
    roll_back,
)
from chat_contracts.envelope import Envelope
from chat_contracts.topics import USERS_EVENTS
from chat_runtime import postgres
from chat_runtime.testing.postgres import alembic_version, outbox_envelopes, public_tables

ACCOUNT_TABLES = {
    "users",
    "avatars",
    "identities",
    "sessions",
    "refresh_tokens",
    "email_codes",
    "recovery_codes",
    "used_jtis",
    "signing_keys",
    "oidc_states",
    "throttle_hits",
    "throttle_failures",
}
LOCK_WAIT_TIMEOUT = 10.0


def _driver(url: str, driver: str) -> str:
    return make_url(url).set(drivername=driver).render_as_string(hide_password=False)


@pytest.fixture
async def engine(pg_database: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(postgres.upgrade, pg_database, MIGRATIONS)
    engine = postgres.async_engine(pg_database, pool_size=4)
    yield engine
    await engine.dispose()


class TestPostgresAuthStore(StoreContract):
    database: AsyncEngine

    @pytest.fixture
    def store(self, engine: AsyncEngine) -> AuthStore:
        self.database = engine
        return PostgresAuthStore(engine)

    async def emitted(self, store: AuthStore) -> list[Envelope]:
        return await outbox_envelopes(self.database)


# schema


def test_migration_0002_creates_the_account_tables_and_reverts_to_0001(pg_database: str) -> None:
    postgres.upgrade(pg_database, MIGRATIONS, "0002")
    assert alembic_version(pg_database) == "0002"
    assert public_tables(pg_database) == ACCOUNT_TABLES | {"outbox", "alembic_version"}

    postgres.downgrade(pg_database, MIGRATIONS, "0001")
    assert alembic_version(pg_database) == "0001"
    assert public_tables(pg_database) == {"outbox", "alembic_version"}

    postgres.upgrade(pg_database, MIGRATIONS)
    assert public_tables(pg_database) == ACCOUNT_TABLES | {"outbox", "alembic_version"}


def test_the_tables_module_matches_the_migrated_schema(pg_database: str) -> None:
    postgres.upgrade(pg_database, MIGRATIONS)
    engine = create_engine(_driver(pg_database, "postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), t.metadata)
    finally:
        engine.dispose()
    assert differences == []


async def test_the_schema_accepts_every_value_the_domain_defines(engine: AsyncEngine) -> None:
    store = PostgresAuthStore(engine)
    alice = a_user("alice")
    async with store.transaction() as tx:
        await tx.add_user(alice)
        for method in get_args(AuthMethod):
            await tx.add_session(a_session(alice, auth_method=method))
        for reason in get_args(RevocationReason):
            await tx.add_session(a_session(alice, revoked_at=T0, revoked_reason=reason))
        for purpose in get_args(CodePurpose):
            await tx.add_code(a_code(alice, purpose))
    async with store.transaction() as tx:
        assert len(await tx.sessions_of(alice.id)) == len(get_args(AuthMethod)) + len(get_args(RevocationReason))


async def test_check_constraints_refuse_values_the_domain_does_not_define(engine: AsyncEngine) -> None:
    store = PostgresAuthStore(engine)
    alice = a_user("alice")
    async with store.transaction() as tx:
        await tx.add_user(alice)
    refused: list[Callable[[], Awaitable[None]]] = []

    async def session_by_magic() -> None:
        async with store.transaction() as tx:
            await tx.add_session(a_session(alice, auth_method=cast(AuthMethod, "magic")))

    async def code_for_anything() -> None:
        async with store.transaction() as tx:
            await tx.add_code(a_code(alice, cast(CodePurpose, "anything")))

    async def negative_attempts() -> None:
        code = a_code(alice)
        async with store.transaction() as tx:
            await tx.add_code(code)
            await tx.update_code(replace(code, attempts=-1))

    async def totp_without_secret() -> None:
        async with store.transaction() as tx:
            await tx.update_user(replace(alice, totp_enabled_at=T0))

    refused += [session_by_magic, code_for_anything, negative_attempts, totp_without_secret]
    for attempt in refused:
        with pytest.raises(IntegrityError):
            await attempt()


async def test_a_naive_datetime_is_refused(engine: AsyncEngine) -> None:
    store = PostgresAuthStore(engine)
    with pytest.raises(StatementError, match="naive datetime"):
        await _add_user_created_at(store, datetime(2030, 1, 1))  # noqa: DTZ001


async def _add_user_created_at(store: AuthStore, at: datetime) -> None:
    async with store.transaction() as tx:
        await tx.add_user(a_user("alice", at=at))


async def test_times_read_back_in_utc_whatever_the_connection_time_zone(pg_database: str) -> None:
    await asyncio.to_thread(postgres.upgrade, pg_database, MIGRATIONS)
    engine = create_async_engine(
        _driver(pg_database, "postgresql+psycopg"), connect_args={"options": "-c TimeZone=Asia/Kolkata"}
    )
    try:
        store = PostgresAuthStore(engine)
        alice = a_user("alice")
        async with store.transaction() as tx:
            await tx.add_user(alice)
            found = await tx.user_by_id(alice.id)
    finally:
        await engine.dispose()
    assert found is not None
    assert found.created_at.tzinfo is UTC
    assert found.created_at == alice.created_at


# locking


async def _wait_until_a_transaction_waits_for_a_lock(engine: AsyncEngine) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    async with asyncio.timeout(LOCK_WAIT_TIMEOUT), engine.connect() as connection:
        while (await connection.execute(waiting)).scalar_one() == 0:
            await asyncio.sleep(0.02)
            await connection.rollback()  # a fresh snapshot of pg_stat_activity on the next read


async def test_two_transactions_on_one_refresh_token_take_turns(engine: AsyncEngine) -> None:
    store = PostgresAuthStore(engine)
    alice = a_user("alice")
    session = a_session(alice)
    token = a_token(session)
    async with store.transaction() as tx:
        await tx.add_user(alice)
        await tx.add_session(session)
        await tx.add_refresh_token(token)
    used_at = T0 + timedelta(minutes=1)
    first_holds_it, first_may_finish = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with store.transaction() as tx:
            found = await tx.refresh_token(token.token_hash)
            assert found == token
            first_holds_it.set()
            await first_may_finish.wait()
            await tx.mark_refresh_token_used(token.token_hash, used_at)

    async def second() -> RefreshToken | None:
        await first_holds_it.wait()
        async with store.transaction() as tx:
            return await tx.refresh_token(token.token_hash)

    async with asyncio.TaskGroup() as group:
        first_task = group.create_task(first())
        second_task = group.create_task(second())
        await first_holds_it.wait()
        await _wait_until_a_transaction_waits_for_a_lock(engine)
        assert not second_task.done()
        first_may_finish.set()
    assert first_task.done()
    assert second_task.result() == replace(token, used_at=used_at)


async def test_two_registrations_racing_for_one_email_end_in_one_account_and_one_conflict(
    engine: AsyncEngine,
) -> None:
    store = PostgresAuthStore(engine)
    alice = a_user("alice")
    rival = replace(a_user("mallory"), email_normalized=alice.email_normalized)
    first_inserted, first_may_commit = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with store.transaction() as tx:
            await tx.add_user(alice)
            first_inserted.set()
            await first_may_commit.wait()

    async def second() -> Conflict | None:
        await first_inserted.wait()
        try:
            async with store.transaction() as tx:
                await tx.add_user(rival)
        except Conflict as conflict:
            return conflict
        return None

    async with asyncio.TaskGroup() as group:
        group.create_task(first())
        second_task = group.create_task(second())
        await first_inserted.wait()
        await _wait_until_a_transaction_waits_for_a_lock(engine)
        first_may_commit.set()
    conflict = second_task.result()
    assert conflict is not None
    assert conflict.field == "email"
    async with store.transaction() as tx:
        assert await tx.user_by_email(alice.email_normalized) == alice
        assert await tx.user_by_id(rival.id) is None


# commit hook and events


async def test_on_commit_runs_after_each_commit_that_queued_events(engine: AsyncEngine) -> None:
    commits: list[int] = []
    store = PostgresAuthStore(engine, on_commit=lambda: commits.append(len(commits)))
    alice = a_user("alice")
    async with store.transaction() as tx:
        await tx.add_user(alice)
    assert commits == []
    async with store.transaction() as tx:
        await tx.emit(an_event(alice), topic=USERS_EVENTS.name)
        await tx.emit(an_event(alice), topic=USERS_EVENTS.name)
        assert commits == []
    assert commits == [0]

    async def emit(tx: Tx) -> None:
        await tx.emit(an_event(alice), topic=USERS_EVENTS.name)

    await roll_back(store, emit)
    assert commits == [0]
    assert len(await outbox_envelopes(engine)) == 2


# housekeeping and input bounds


async def _rows(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def test_stale_throttle_windows_used_jtis_and_abandoned_oidc_states_are_deleted(
    engine: AsyncEngine,
) -> None:
    store = PostgresAuthStore(engine)
    minute = timedelta(minutes=1)
    two_days_later = T0 + timedelta(days=2)

    def state(created_at: datetime) -> OidcState:
        return OidcState(
            state_hash=uuid.uuid4().bytes,
            browser_hash=b"b",
            nonce="n",
            code_verifier="v",
            return_to="/",
            created_at=created_at,
            expires_at=created_at + timedelta(minutes=10),
        )

    async with store.transaction() as tx:
        for n in range(5):
            await tx.hit(f"ip:{n}", window=minute, now=T0)
        await tx.consume_jti("old", T0 + timedelta(minutes=5))
        await tx.add_oidc_state(state(T0))
    async with store.transaction() as tx:
        await tx.hit("ip:0", window=minute, now=T0 + timedelta(hours=23))
        assert await tx.consume_jti("recent", T0 + timedelta(hours=23))
    assert await _rows(engine, t.throttle_hits) == 6
    assert await _rows(engine, t.used_jtis) == 2

    async with store.transaction() as tx:
        assert await tx.hit("ip:0", window=minute, now=two_days_later) == 1
        assert await tx.consume_jti("new", two_days_later)
        await tx.add_oidc_state(state(two_days_later))
    assert await _rows(engine, t.throttle_hits) == 1
    assert await _rows(engine, t.used_jtis) == 1
    assert await _rows(engine, t.oidc_states) == 1


async def test_hit_refuses_windows_it_would_prune_while_they_still_count(engine: AsyncEngine) -> None:
    store = PostgresAuthStore(engine)
    async with store.transaction() as tx:
        with pytest.raises(ValueError, match="window"):
            await tx.hit("k", window=timedelta(days=2), now=T0)
        with pytest.raises(ValueError, match="window"):
            await tx.hit("k", window=timedelta(0), now=T0)
        assert await tx.hit("k", window=timedelta(days=1), now=T0) == 1


async def test_an_overlong_user_agent_is_cut_to_fit_rather_than_failing_the_sign_in(
    engine: AsyncEngine,
) -> None:
    store = PostgresAuthStore(engine)
    alice = a_user("alice")
    session = replace(a_session(alice), user_agent="Mozilla/5.0 " + "x" * 5000, ip="f" * 100)
    async with store.transaction() as tx:
        await tx.add_user(alice)
        await tx.add_session(session)
    async with store.transaction() as tx:
        stored = await tx.session(session.id)
    assert stored == replace(session, user_agent=session.user_agent[:300], ip=session.ip[:64])
