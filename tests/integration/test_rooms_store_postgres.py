"""The PostgreSQL rooms store passes the store contract; its schema, indexes, locks and housekeeping hold for real."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast, get_args

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, Select, Table, create_engine, func, make_url, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chat_contracts.envelope import Envelope
from chat_contracts.topics import ROOMS_EVENTS
from chat_rooms.adapters.postgres import MIGRATIONS
from chat_rooms.adapters.postgres import tables as t
from chat_rooms.adapters.postgres.store import PostgresRoomsStore, directory_query
from chat_rooms.domain.errors import Conflict
from chat_rooms.domain.model import Ban, Contact, History, Role, Room, RoomKind, UserProfile
from chat_rooms.domain.rules import dm_key, search_key
from chat_rooms.service.ports import RoomsStore, Tx
from chat_rooms.testing.store_contract import StoreContract
from chat_rooms.testing.store_contract.builders import (
    HOUR,
    T0,
    a_contact,
    a_direct_room,
    a_membership,
    a_profile,
    a_room,
    an_event,
    roll_back,
    users,
)
from chat_runtime import postgres
from chat_runtime.testing.postgres import alembic_version, libpq_url, outbox_envelopes, public_tables

ROOMS_TABLES = {
    "rooms",
    "memberships",
    "invitations",
    "bans",
    "users",
    "contacts",
    "blocks",
    "throttle_hits",
    "throttle_failures",
    "processed_events",
}
LOCK_WAIT_TIMEOUT = 10.0
DIRECTORY_ROWS = 20_000
"""Enough listed rooms that the planner prefers an index to reading the table."""


def _driver(url: str, driver: str) -> str:
    return make_url(url).set(drivername=driver).render_as_string(hide_password=False)


@pytest.fixture
async def engine(pg_database: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(postgres.upgrade, pg_database, MIGRATIONS)
    engine = postgres.async_engine(pg_database, pool_size=4)
    yield engine
    await engine.dispose()


class TestPostgresRoomsStore(StoreContract):
    database: AsyncEngine

    @pytest.fixture
    def store(self, engine: AsyncEngine) -> RoomsStore:
        self.database = engine
        return PostgresRoomsStore(engine)

    async def emitted(self, store: RoomsStore) -> list[Envelope]:
        return await outbox_envelopes(self.database)


# schema


def _has_pg_trgm(url: str) -> bool:
    with psycopg.connect(libpq_url(url)) as connection:
        return connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone() is not None


def test_migration_0002_creates_the_rooms_tables_and_reverts_to_0001(pg_database: str) -> None:
    postgres.upgrade(pg_database, MIGRATIONS, "0002")
    assert alembic_version(pg_database) == "0002"
    assert public_tables(pg_database) == ROOMS_TABLES | {"outbox", "alembic_version"}
    assert _has_pg_trgm(pg_database)

    postgres.downgrade(pg_database, MIGRATIONS, "0001")
    assert alembic_version(pg_database) == "0001"
    assert public_tables(pg_database) == {"outbox", "alembic_version"}

    postgres.upgrade(pg_database, MIGRATIONS)  # to head: 0003 and 0004 add columns, no table
    assert alembic_version(pg_database) == "0004"
    assert public_tables(pg_database) == ROOMS_TABLES | {"outbox", "alembic_version"}
    postgres.downgrade(pg_database, MIGRATIONS, "0002")
    assert alembic_version(pg_database) == "0002"


async def _outbox(url: str) -> list[Envelope]:
    engine = postgres.async_engine(url)
    try:
        return await outbox_envelopes(engine)
    finally:
        await engine.dispose()


def test_migration_0004_closes_the_direct_rooms_of_pairs_already_blocked_and_announces_it(pg_database: str) -> None:
    postgres.upgrade(pg_database, MIGRATIONS, "0003")
    alice, bob, carol = sorted(users(3))
    with psycopg.connect(libpq_url(pg_database)) as connection:
        for low, high in ((alice, bob), (alice, carol)):
            connection.execute(
                "INSERT INTO rooms (id, kind, name_key, history, created_by, created_at, updated_at, version, "
                "dm_key, member_count) VALUES (%s, 'direct', '', 'shared', %s, now(), now(), 3, %s, 2)",
                (uuid.uuid5(low, str(high)), low, dm_key(low, high)),
            )
        # bob blocked alice (the higher id blocked the lower one); carol blocked nobody
        connection.execute("INSERT INTO blocks VALUES (%s, %s, now())", (bob, alice))
        connection.commit()
    postgres.upgrade(pg_database, MIGRATIONS, "0004")
    with psycopg.connect(libpq_url(pg_database)) as connection:
        rows = connection.execute("SELECT dm_key, blocked, version FROM rooms ORDER BY dm_key").fetchall()
    assert sorted(rows) == sorted([(dm_key(alice, bob), True, 4), (dm_key(alice, carol), False, 3)])
    queued = asyncio.run(_outbox(pg_database))
    assert [(e.type, e.key, e.data.room_version) for e in queued] == [  # type: ignore[attr-defined]
        ("room.blocked", str(uuid.uuid5(alice, str(bob))), 4)
    ]
    postgres.downgrade(pg_database, MIGRATIONS, "0003")
    assert alembic_version(pg_database) == "0003"


def test_the_tables_module_matches_the_migrated_schema(pg_database: str) -> None:
    postgres.upgrade(pg_database, MIGRATIONS)
    engine = create_engine(_driver(pg_database, "postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), t.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_the_tables_module_declares_the_migrated_check_constraints(pg_database: str) -> None:
    # compare_metadata does not compare CHECK constraints either.
    postgres.upgrade(pg_database, MIGRATIONS)
    with psycopg.connect(libpq_url(pg_database)) as connection:
        rows = connection.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace"
        ).fetchall()
    declared = {
        str(constraint.name)
        for table in t.metadata.tables.values()
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    assert {row[0] for row in rows} == declared


def test_the_indexes_are_the_ones_the_queries_need(pg_database: str) -> None:
    # compare_metadata does not compare index methods, operator classes or predicates; this does.
    postgres.upgrade(pg_database, MIGRATIONS)
    with psycopg.connect(libpq_url(pg_database)) as connection:
        rows = connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'rooms'"
        ).fetchall()
    definitions = {str(name): str(definition) for name, definition in rows}
    trigram = definitions["rooms_directory_name_trgm"]
    assert "USING gin (name_key gin_trgm_ops)" in trigram
    assert "WHERE ((archived_at IS NULL) AND ((kind)::text = ANY" in trigram
    assert "'public'" in trigram
    assert "'password'" in trigram
    order = definitions["rooms_directory_order"]
    assert "USING btree (name_key, id) WHERE ((archived_at IS NULL)" in order


async def test_the_schema_accepts_every_value_the_domain_defines(engine: AsyncEngine) -> None:
    store = PostgresRoomsStore(engine)
    alice, bob = users(2)
    kinds = [kind for kind in get_args(RoomKind) if kind != "direct"]
    async with store.transaction() as tx:
        for kind in kinds:
            for history in get_args(History):
                room = replace(a_room(f"{kind} {history}", kind=kind), history=history)
                await tx.add_room(room)
                for role in get_args(Role):
                    await tx.add_membership(a_membership(room, uuid.uuid4(), role))
        await tx.add_room(a_direct_room(alice, bob))
    async with store.transaction() as tx:
        assert await tx.room_by_dm_key(dm_key(alice, bob)) is not None
        assert len(await tx.directory(query=None, after=None, limit=100)) == 2 * len(get_args(History))


async def test_check_constraints_refuse_values_the_domain_does_not_define(engine: AsyncEngine) -> None:
    store = PostgresRoomsStore(engine)
    alice, bob = users(2)
    room = a_room("general")
    async with store.transaction() as tx:
        await tx.add_room(room)

    def add_room(bad: Room) -> Callable[[Tx], Awaitable[None]]:
        async def attempt(tx: Tx) -> None:
            await tx.add_room(bad)

        return attempt

    def update_room(bad: Room) -> Callable[[Tx], Awaitable[None]]:
        async def attempt(tx: Tx) -> None:
            await tx.update_room(bad)

        return attempt

    async def bad_role(tx: Tx) -> None:
        await tx.add_membership(a_membership(room, alice, cast(Role, "moderator")))

    async def backwards_contact(tx: Tx) -> None:
        high, low = sorted((alice, bob), reverse=True)
        await tx.put_contact(Contact(user_low=high, user_high=low, requested_by=high, created_at=T0))

    async def contact_with_oneself(tx: Tx) -> None:
        await tx.put_contact(Contact(user_low=alice, user_high=alice, requested_by=alice, created_at=T0))

    async def contact_requested_by_a_stranger(tx: Tx) -> None:
        await tx.put_contact(replace(a_contact(alice, bob), requested_by=uuid.uuid4()))

    async def membership_of_no_room(tx: Tx) -> None:
        await tx.add_membership(a_membership(a_room("nowhere"), alice))

    async def ban_in_no_room(tx: Tx) -> None:
        await tx.put_ban(Ban(uuid.uuid4(), alice, banned_by=bob, reason=None, created_at=T0))

    attempts: list[Callable[[Tx], Awaitable[None]]] = [
        add_room(a_room("secret", kind=cast(RoomKind, "secret"))),
        add_room(replace(a_room("history"), history=cast(History, "forever"))),
        add_room(replace(a_room("version"), version=0)),
        add_room(replace(a_room("count"), member_count=-1)),
        add_room(replace(a_direct_room(alice, bob), dm_key=None)),
        add_room(replace(a_room("public with a dm key"), dm_key=dm_key(alice, bob))),
        add_room(replace(a_room("group with a dm key", kind="group_dm"), dm_key=dm_key(alice, bob))),
        add_room(replace(a_room("locked", kind="password"), password_hash=None)),
        add_room(replace(a_room("a blocked public room"), blocked=True)),
        update_room(replace(room, kind="password")),
        update_room(replace(room, version=-3)),
        bad_role,
        backwards_contact,
        contact_with_oneself,
        contact_requested_by_a_stranger,
        membership_of_no_room,
        ban_in_no_room,
    ]
    for attempt in attempts:
        with pytest.raises(IntegrityError):
            async with store.transaction() as tx:
                await attempt(tx)
    async with store.transaction() as tx:
        assert await tx.room(room.id) == room


async def test_a_naive_datetime_is_refused(engine: AsyncEngine) -> None:
    store = PostgresRoomsStore(engine)
    with pytest.raises(StatementError, match="naive datetime"):
        async with store.transaction() as tx:
            await tx.add_room(a_room("general", at=datetime(2030, 1, 1)))  # noqa: DTZ001


async def test_times_read_back_in_utc_whatever_the_connection_time_zone(pg_database: str) -> None:
    await asyncio.to_thread(postgres.upgrade, pg_database, MIGRATIONS)
    engine = create_async_engine(
        _driver(pg_database, "postgresql+psycopg"), connect_args={"options": "-c TimeZone=Asia/Kolkata"}
    )
    try:
        store = PostgresRoomsStore(engine)
        room = a_room("general")
        async with store.transaction() as tx:
            await tx.add_room(room)
            found = await tx.room(room.id)
    finally:
        await engine.dispose()
    assert found is not None
    assert found.created_at.tzinfo is UTC
    assert found == room


async def test_a_name_whose_search_key_is_huge_is_stored_and_found(engine: AsyncEngine) -> None:
    # U+FDFA expands to eighteen characters under NFKC; the stored key is cut to fit a btree entry.
    store = PostgresRoomsStore(engine)
    room = a_room("\ufdfa" * 80)
    assert len(search_key(room.name or "")) > t.NAME_KEY_MAX
    async with store.transaction() as tx:
        await tx.add_room(room)
        await tx.add_room(a_room("zzz"))
    async with store.transaction() as tx:
        assert list(await tx.directory(query="\ufdfa", after=None, limit=10)) == [room]
        assert [r.name for r in await tx.directory(query=None, after=None, limit=10)] == ["zzz", room.name]
        assert list(await tx.directory(query=None, after=(search_key(room.name or ""), room.id), limit=10)) == []


# the directory's indexes


async def _fill_directory(engine: AsyncEngine) -> None:
    """Many listed rooms named "room <n> <word>", plus a few unlisted ones, then fresh planner statistics."""
    words = "'{alpha,bravo,charlie,delta,echo,foxtrot,golf,hotel,india,juliett,kilo,lima,mike}'::text[]"
    fill = f"""
        INSERT INTO rooms (id, kind, name, name_key, history, created_by, created_at, updated_at, version,
                           password_hash, archived_at, member_count)
        SELECT gen_random_uuid(), kind, name, lower(name), 'shared', gen_random_uuid(), now(), now(), 1,
               CASE WHEN kind = 'password' THEN 'hash' END, CASE WHEN n % 50 = 0 THEN now() END, 0
        FROM (
            SELECT n, 'Room ' || n || ' ' || ({words})[1 + n % 13] AS name,
                   (ARRAY['public', 'public', 'password', 'private'])[1 + n % 4] AS kind
            FROM generate_series(1, {DIRECTORY_ROWS}) AS n
        ) AS generated
    """  # noqa: S608 - no outside input
    async with engine.begin() as connection:
        await connection.execute(text(fill))
        await connection.execute(text("ANALYZE rooms"))


async def _plan(engine: AsyncEngine, query: Select[Any]) -> str:
    compiled = query.compile(dialect=engine.dialect)
    async with engine.connect() as connection:
        rows = (await connection.exec_driver_sql("EXPLAIN " + compiled.string, compiled.params)).all()
    return "\n".join(row[0] for row in rows)


async def test_directory_search_by_substring_uses_the_trigram_index(engine: AsyncEngine) -> None:
    await _fill_directory(engine)
    needle = a_room("The Needle Haystack")
    async with PostgresRoomsStore(engine).transaction() as tx:
        await tx.add_room(needle)
    for query in ("needle", "NEEDLE HAY", "dle hays", "room 1234 "):
        plan = await _plan(engine, directory_query(query=query, after=None, limit=50))
        assert "rooms_directory_name_trgm" in plan, plan
        assert "Seq Scan" not in plan, plan
    async with PostgresRoomsStore(engine).transaction() as tx:
        assert list(await tx.directory(query="needle hay", after=None, limit=50)) == [needle]
        found = await tx.directory(query="ROOM 1234 ", after=None, limit=50)
    assert [room.name for room in found] == ["Room 1234 mike"]  # 1234 % 13 == 12


async def test_directory_pages_walk_the_ordered_index(engine: AsyncEngine) -> None:
    await _fill_directory(engine)
    after = ("room 5", uuid.UUID(int=0))
    for query in (None, "room"):
        plan = await _plan(engine, directory_query(query=query, after=after, limit=50))
        assert "rooms_directory_order" in plan, plan
        assert "Seq Scan" not in plan, plan
        assert "Sort" not in plan, plan
    async with PostgresRoomsStore(engine).transaction() as tx:
        page = await tx.directory(query=None, after=after, limit=3)
    assert [search_key(room.name or "") for room in page] == sorted(search_key(room.name or "") for room in page)
    assert all(search_key(room.name or "") > "room 5" for room in page)


async def test_a_directory_search_run_often_is_still_planned_for_its_own_string(pg_database: str) -> None:
    # psycopg prepares a statement after a few runs on one connection; PostgreSQL would then switch to a
    # generic plan (the ordered walk, filtering every listed room) even for a rare string.
    await asyncio.to_thread(postgres.upgrade, pg_database, MIGRATIONS)
    engine = postgres.async_engine(pg_database, pool_size=1)
    try:
        await _fill_directory(engine)
        store = PostgresRoomsStore(engine)
        for _ in range(20):
            async with store.transaction() as tx:
                assert list(await tx.directory(query="needle", after=None, limit=50)) == []
        plans = text(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%name_key LIKE%'"
        )
        async with engine.connect() as connection:
            generic, custom = (await connection.execute(plans)).one()
    finally:
        await engine.dispose()
    assert generic == 0
    assert custom >= 10


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


async def test_two_transactions_locking_one_room_take_turns(engine: AsyncEngine) -> None:
    store = PostgresRoomsStore(engine)
    room = a_room("general")
    async with store.transaction() as tx:
        await tx.add_room(room)
    first_holds_it, first_may_finish = asyncio.Event(), asyncio.Event()
    changed = replace(room, topic="Changed", version=2)

    async def first() -> None:
        async with store.transaction() as tx:
            assert await tx.room(room.id, for_update=True) == room
            first_holds_it.set()
            await first_may_finish.wait()
            await tx.update_room(changed)

    async def second() -> Room | None:
        await first_holds_it.wait()
        async with store.transaction() as tx:
            found = await tx.room(room.id, for_update=True)
            assert found is not None
            await tx.update_room(replace(found, version=found.version + 1))
            return found

    async with asyncio.TaskGroup() as group:
        first_task = group.create_task(first())
        second_task = group.create_task(second())
        await first_holds_it.wait()
        await _wait_until_a_transaction_waits_for_a_lock(engine)
        assert not second_task.done()
        first_may_finish.set()
    assert first_task.done()
    assert second_task.result() == changed
    async with store.transaction() as tx:
        assert await tx.room(room.id) == replace(changed, version=3)


async def test_a_locked_room_still_takes_new_members_invitations_and_bans(engine: AsyncEngine) -> None:
    # room(for_update=True) takes FOR NO KEY UPDATE, which the foreign keys' KEY SHARE locks do not wait for.
    store = PostgresRoomsStore(engine)
    alice, bob, carol = users(3)
    room = a_room("general")
    async with store.transaction() as tx:
        await tx.add_room(room)
    locked, may_release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with store.transaction() as tx:
            await tx.room(room.id, for_update=True)
            locked.set()
            await may_release.wait()

    async with asyncio.TaskGroup() as group:
        group.create_task(hold())
        await locked.wait()
        async with asyncio.timeout(LOCK_WAIT_TIMEOUT), store.transaction() as tx:
            await tx.add_membership(a_membership(room, alice))
            await tx.put_ban(Ban(room.id, bob, banned_by=alice, reason=None, created_at=T0))
        may_release.set()
    async with store.transaction() as tx:
        assert [m.user_id for m in await tx.members(room.id)] == [alice]
        assert await tx.ban(room.id, bob) is not None
        assert await tx.ban(room.id, carol) is None


async def _race(
    engine: AsyncEngine, first: Callable[[Tx], Awaitable[None]], second: Callable[[Tx], Awaitable[None]]
) -> BaseException | None:
    """Run ``first`` and, while its transaction is open, ``second`` (which must wait on it); what ``second`` raised."""
    store = PostgresRoomsStore(engine)
    first_wrote, first_may_commit = asyncio.Event(), asyncio.Event()

    async def run_first() -> None:
        async with store.transaction() as tx:
            await first(tx)
            first_wrote.set()
            await first_may_commit.wait()

    async def run_second() -> BaseException | None:
        await first_wrote.wait()
        try:
            async with store.transaction() as tx:
                await second(tx)
        except Exception as exc:
            return exc
        return None

    async with asyncio.TaskGroup() as group:
        group.create_task(run_first())
        second_task = group.create_task(run_second())
        await first_wrote.wait()
        await _wait_until_a_transaction_waits_for_a_lock(engine)
        first_may_commit.set()
    return second_task.result()


async def test_two_joins_racing_for_one_membership_end_in_one_membership_and_one_conflict(
    engine: AsyncEngine,
) -> None:
    (alice,) = users(1)
    room = a_room("general")
    async with PostgresRoomsStore(engine).transaction() as tx:
        await tx.add_room(room)
    winner, loser = a_membership(room, alice, "owner"), a_membership(room, alice, "member", at=T0 + HOUR)

    async def join(tx: Tx) -> None:
        await tx.add_membership(winner)

    async def join_again(tx: Tx) -> None:
        await tx.add_membership(loser)

    raised = await _race(engine, join, join_again)
    assert isinstance(raised, Conflict)
    assert raised.field == "membership"
    async with PostgresRoomsStore(engine).transaction() as tx:
        assert list(await tx.members(room.id)) == [winner]


async def test_two_direct_rooms_racing_for_one_pair_end_in_one_room_and_one_conflict(engine: AsyncEngine) -> None:
    alice, bob = users(2)
    winner, loser = a_direct_room(alice, bob), a_direct_room(bob, alice)

    async def create(tx: Tx) -> None:
        await tx.add_room(winner)

    async def create_again(tx: Tx) -> None:
        await tx.add_room(loser)

    raised = await _race(engine, create, create_again)
    assert isinstance(raised, Conflict)
    assert raised.field == "dm_key"
    async with PostgresRoomsStore(engine).transaction() as tx:
        assert await tx.room_by_dm_key(dm_key(alice, bob)) == winner
        assert await tx.room(loser.id) is None


async def test_two_transactions_about_one_pair_take_turns_whichever_order_the_ids_come_in(
    engine: AsyncEngine,
) -> None:
    alice, bob = users(2)

    async def block(tx: Tx) -> None:
        await tx.lock_pair(alice, bob)

    async def open_direct(tx: Tx) -> None:
        await tx.lock_pair(bob, alice)  # waits: _race fails unless the second transaction waits for a lock

    assert await _race(engine, block, open_direct) is None


async def test_two_users_racing_for_one_username_both_commit_and_the_later_holds_it(engine: AsyncEngine) -> None:
    first_profile = a_profile("Sam")
    second_profile = a_profile("sam", at=T0 + HOUR)

    async def put_first(tx: Tx) -> None:
        await tx.put_user(first_profile)

    async def put_second(tx: Tx) -> None:
        await tx.put_user(second_profile)

    assert await _race(engine, put_first, put_second) is None
    async with PostgresRoomsStore(engine).transaction() as tx:
        assert await tx.user_by_username("SAM") == second_profile
        assert await tx.user(first_profile.user_id) == first_profile  # kept, no longer found by the username


async def test_two_consumers_racing_for_one_event_process_it_once(engine: AsyncEngine) -> None:
    event = uuid.uuid4()
    outcomes: list[bool] = []

    async def consume(tx: Tx) -> None:
        outcomes.append(await tx.mark_processed(event, at=T0))

    assert await _race(engine, consume, consume) is None
    assert outcomes == [True, False]


# commit hook and events


async def test_on_commit_runs_after_each_commit_that_queued_events(engine: AsyncEngine) -> None:
    commits: list[int] = []
    store = PostgresRoomsStore(engine, on_commit=lambda: commits.append(len(commits)))
    room = a_room("general")
    async with store.transaction() as tx:
        await tx.add_room(room)
    assert commits == []
    async with store.transaction() as tx:
        await tx.emit(an_event(room), topic=ROOMS_EVENTS.name)
        await tx.emit(an_event(room), topic=ROOMS_EVENTS.name)
        assert commits == []
    assert commits == [0]

    async def emit(tx: Tx) -> None:
        await tx.emit(an_event(room), topic=ROOMS_EVENTS.name)

    await roll_back(store, emit)
    assert commits == [0]
    assert len(await outbox_envelopes(engine)) == 2


# housekeeping and input bounds


async def _rows(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def test_processed_events_are_forgotten_after_thirty_days(engine: AsyncEngine) -> None:
    store = PostgresRoomsStore(engine)
    old = [uuid.uuid4() for _ in range(3)]
    recent = uuid.uuid4()
    async with store.transaction() as tx:
        for event in old:
            assert await tx.mark_processed(event, at=T0)
        assert await tx.mark_processed(recent, at=T0 + timedelta(days=20))
    async with store.transaction() as tx:
        assert await tx.mark_processed(uuid.uuid4(), at=T0 + timedelta(days=29))
    assert await _rows(engine, t.processed_events) == 5

    async with store.transaction() as tx:
        assert await tx.mark_processed(uuid.uuid4(), at=T0 + timedelta(days=30, seconds=1))
        assert await tx.mark_processed(recent, at=T0 + timedelta(days=30, seconds=1)) is False
    assert await _rows(engine, t.processed_events) == 3


async def test_stale_throttle_windows_are_deleted(engine: AsyncEngine) -> None:
    store = PostgresRoomsStore(engine)
    minute = timedelta(minutes=1)
    async with store.transaction() as tx:
        for n in range(5):
            await tx.hit(f"ip:{n}", window=minute, now=T0)
    async with store.transaction() as tx:
        await tx.hit("ip:0", window=minute, now=T0 + timedelta(hours=23))
    assert await _rows(engine, t.throttle_hits) == 6
    async with store.transaction() as tx:
        assert await tx.hit("ip:0", window=minute, now=T0 + timedelta(days=2)) == 1
    assert await _rows(engine, t.throttle_hits) == 1


async def test_hit_refuses_windows_it_would_prune_while_they_still_count(engine: AsyncEngine) -> None:
    store = PostgresRoomsStore(engine)
    async with store.transaction() as tx:
        with pytest.raises(ValueError, match="window"):
            await tx.hit("k", window=timedelta(days=2), now=T0)
        with pytest.raises(ValueError, match="window"):
            await tx.hit("k", window=timedelta(0), now=T0)
        assert await tx.hit("k", window=timedelta(days=1), now=T0) == 1


async def test_a_username_is_found_again_after_its_holder_is_deleted(engine: AsyncEngine) -> None:
    store = PostgresRoomsStore(engine)
    sam = a_profile("sam")
    async with store.transaction() as tx:
        await tx.put_user(sam)
        await tx.delete_user(sam.user_id)
        newcomer = UserProfile(user_id=uuid.uuid4(), username="Sam", display_name="New Sam", updated_at=T0 + HOUR)
        await tx.put_user(newcomer)
    async with store.transaction() as tx:
        assert await tx.user_by_username("sam") == newcomer
        assert await tx.user(sam.user_id) is None
