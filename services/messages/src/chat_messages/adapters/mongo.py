"""The messages service's own MongoDB database: the client, and the write concern its writes wait for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pymongo import AsyncMongoClient, monitoring
from pymongo.write_concern import WriteConcern

from chat_messages.settings import WriteConcernChoice
from chat_runtime.store_metrics import StoreMetrics

JOURNALED: Final = WriteConcern(w=1, j=True)
"""Acknowledged once the primary has the write in its journal on disk: survives that server crashing or
losing power, not the loss of its disk, and on a replica set not a failover before the write replicated."""
MAJORITY: Final = WriteConcern(w="majority", j=True)
"""Acknowledged once a majority of the replica set's data-bearing members have it in their journals: survives
a failover too."""

MAX_IDLE_MS: Final = 60_000
"""Connections idle this long leave the pool instead of being reused."""


def client(url: str, **overrides: Any) -> AsyncMongoClient[dict[str, Any]]:
    """A MongoDB client with journaled writes (``MessagesModule.start`` settles the service's write concern, see
    ``choose_write_concern``), timezone-aware datetimes and UUIDs stored as standard BSON binary (subtype 4).

    Retryable writes are off: every write of the service is idempotent on its own (a unique ``(room_id, seq)``
    index and message ids derived from the client_msg_id, request ids remembered in the message, ``$max`` markers),
    and a failed write fails the handler, whose command the bus redelivers. The Mongo-wire server used in
    development keeps a record of every retryable write for 30 minutes and scans them all on each write
    (docs/benchmarks.md).
    """
    options: dict[str, Any] = {
        "w": JOURNALED.document["w"],
        "journal": JOURNALED.document["j"],
        "retryWrites": False,
        # The Mongo-wire server closes a connection idle for 5 minutes, and without retryable writes the first write
        # on such a connection would fail; the pool drops idle connections well before that (so would a firewall).
        "maxIdleTimeMS": MAX_IDLE_MS,
        "tz_aware": True,
        "serverSelectionTimeoutMS": 5000,
        "uuidRepresentation": "standard",
    }
    return AsyncMongoClient(url, **(options | overrides))


class CommandTimer(monitoring.CommandListener):
    """Observes each MongoDB command's duration, as the driver measured it, as ``store="mongo"`` and the command
    name (``insert``, ``find``…): one histogram observation per command, failed ones too."""

    def __init__(self, metrics: StoreMetrics) -> None:
        self._metrics = metrics

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        return None

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._metrics.observe("mongo", event.command_name, event.duration_micros / 1_000_000)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._metrics.observe("mongo", event.command_name, event.duration_micros / 1_000_000)


def replicated(hello: Mapping[str, Any]) -> bool:
    """Whether the server that answered ``hello`` keeps each write on more than one data-bearing member: a replica
    set listing several members (``hosts`` are the electable ones, ``passives`` the priority-0 ones; arbiters hold
    no data), or a mongos in front of shards. A single-member replica set (what a MongoDB started for change
    streams on one machine is, and SecantusDB without ``--standalone``) is one node."""
    if hello.get("msg") == "isdbgrid":
        return True
    if not hello.get("setName"):
        return False
    members = {*hello.get("hosts", ()), *hello.get("passives", ())}
    return len(members) > 1


def write_concern_for(choice: WriteConcernChoice, hello: Mapping[str, Any]) -> WriteConcern:
    """The write concern ``choice`` means on the server that answered ``hello``."""
    if choice == "journaled":
        return JOURNALED
    if choice == "majority":
        return MAJORITY
    return MAJORITY if replicated(hello) else JOURNALED


async def choose_write_concern(mongo: AsyncMongoClient[dict[str, Any]], choice: WriteConcernChoice) -> WriteConcern:
    """The write concern for ``choice``, asking the server what it is only for ``auto``."""
    hello = await mongo.admin.command("hello") if choice == "auto" else {}
    return write_concern_for(choice, hello)


async def ping(mongo: AsyncMongoClient[dict[str, Any]]) -> None:
    """Raise unless the server answers ``ping``."""
    await mongo.admin.command("ping")
