"""The unit of work both PostgreSQL stores (auth, rooms) share: one transaction per use case, events queued in it
land in the outbox in that same transaction, and the relay is woken once the transaction has committed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Generic, TypeVar

from chat_contracts.envelope import Envelope
from chat_runtime import pg_throttle
from chat_runtime.extras import missing_extra
from chat_runtime.outbox import enqueue

try:
    import psycopg.errors
    from sqlalchemy import ColumnElement, Executable, Select, Table
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
except ImportError as missing:
    raise missing_extra("postgres", __name__, missing) from missing

_T = TypeVar("_T")
TxT = TypeVar("TxT", bound="PgTx")


def unique_constraint(exc: IntegrityError) -> str | None:
    """The constraint a unique violation names, or ``None`` when ``exc`` is some other integrity error."""
    if not isinstance(exc.orig, psycopg.errors.UniqueViolation):
        return None
    return exc.orig.diag.constraint_name


class PgTx:
    """One connection inside an open transaction, with the helpers every store's ``Tx`` is written with.

    ``conflicts`` maps unique constraint names to the field a ``conflict`` error names; any other integrity error
    is raised as it is.
    """

    conflicts: ClassVar[Mapping[str, str]] = {}
    conflict: ClassVar[type[Exception]] = Exception

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection
        self.emitted = False

    async def emit(self, envelope: Envelope, *, topic: str) -> None:
        await enqueue(self._db, envelope, topic=topic)
        self.emitted = True

    async def _one(self, query: Select[Any], record: Callable[..., _T]) -> _T | None:
        row = (await self._db.execute(query)).first()
        return None if row is None else record(**row._mapping)

    async def _all(self, query: Select[Any], record: Callable[..., _T]) -> list[_T]:
        return [record(**row._mapping) for row in await self._db.execute(query)]

    async def _write_unique(self, statement: Executable) -> None:
        """Run ``statement`` in a savepoint: a taken key raises ``conflict``; the transaction stays usable."""
        try:
            async with self._db.begin_nested():
                await self._db.execute(statement)
        except IntegrityError as exc:
            field = self.conflicts.get(unique_constraint(exc) or "")
            if field is None:
                raise
            raise self.conflict(field) from exc

    async def _prune(self, table: Table, stale: ColumnElement[bool]) -> None:
        await pg_throttle.prune(self._db, table, stale)


class PgStore(Generic[TxT]):
    """Opens ``tx`` transactions on ``engine``; ``on_commit`` runs after each commit that queued events."""

    def __init__(
        self, engine: AsyncEngine, tx: Callable[[AsyncConnection], TxT], *, on_commit: Callable[[], None] | None
    ) -> None:
        self._engine = engine
        self._tx = tx
        self._on_commit = on_commit

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[TxT]:
        """A transaction that commits when the block ends normally and rolls back when it raises."""
        async with self._engine.begin() as connection:
            tx = self._tx(connection)
            yield tx
        if tx.emitted and self._on_commit is not None:
            self._on_commit()
