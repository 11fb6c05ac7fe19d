"""The peer watch: the members of a consumer group notice a dead peer process before the broker does.

The broker gives a crashed member's partitions to the others only when its session times out: a static member
(``KafkaConfig.group_instance_id``) that is killed and never comes back leaves its partitions, the messages
service's rooms, without an owner for the whole session timeout, and then for one rebalance.

A process with a ``KafkaConfig.peer_address`` listens there for TCP connections, which it accepts and closes (it
is alive; nothing is read or written), before any of its consumers joins a group, and each of them tells its
group the address in the user data of its subscription (``CardAssignor``). Every interval, the process's watch
describes each group it is a member of and connects to each other process's address in it. A process whose
address has refused or not answered for ``peer_eviction_ms`` in a row is removed from the group with LeaveGroup
v3 naming its members, as a graceful stop would have done: the group rebalances at once and the survivors take
its partitions. Its rooms then pause for about the eviction time and one rebalance, not the session timeout.

What it trades:
- A process restarted under its name within the eviction time (a container restarted in its pod) takes its
  partitions back as before, without a rebalance; one that takes longer is removed first, then joins again: two
  rebalances instead of none.
- A process that is alive but that its peers cannot reach (a network fault between pods that spares the broker)
  is removed once, and joins again as a new member; it is not removed again until a connection to it has
  succeeded, so such a fault costs one rebalance, not one per eviction time.
- Removing a member is safe even when wrong: a removed process's commits are refused and its next heartbeat makes
  it join again, and the messages service's unique indexes fence a stale owner's writes.
Members whose subscription carries no card (an older release, or a process without an address) are never removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from chat_runtime.bus.aiokafka_internals import DescribedMember, StaticMember, describe_group, remove_members
from chat_runtime.extras import missing_extra

try:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
except ImportError as missing:
    raise missing_extra("kafka", __name__, missing) from missing

log = structlog.get_logger("chat.bus.kafka")

CARD_PREFIX = b"chat-peer/1 "
"""What starts the user data of a member that carries a card (JSON follows)."""


@dataclass(frozen=True, slots=True)
class PeerCard:
    """What a member tells its group: where its process answers, and the member's lasting name (None for a
    dynamic member)."""

    address: str
    instance: str | None

    def encode(self) -> bytes:
        return CARD_PREFIX + json.dumps({"address": self.address, "instance": self.instance}).encode()

    @classmethod
    def decode(cls, user_data: bytes) -> PeerCard | None:
        """The card in a member's user data; None for anything else (no card, another client's data)."""
        if not user_data.startswith(CARD_PREFIX):
            return None
        try:
            fields = json.loads(user_data[len(CARD_PREFIX) :])
        except ValueError:
            return None
        if not isinstance(fields, dict):
            return None
        address, instance = fields.get("address"), fields.get("instance")
        if not isinstance(address, str) or not (instance is None or isinstance(instance, str)):
            return None
        return cls(address=address, instance=instance)


class CardAssignor(RoundRobinPartitionAssignor):  # type: ignore[misc]
    """aiokafka's round robin under its own name, so members with and without a card share the group's protocol
    (a rolling upgrade mixes them); this member's subscription carries its card."""

    def __init__(self, card: PeerCard) -> None:
        self._user_data = card.encode()

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(self.version, list(topics), self._user_data)


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (an IPv6 host in brackets) as a host and a port; ValueError for anything else."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not host:port: {address!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


class PeerListener:
    """Accepts TCP connections at this process's peer address and closes them: a peer that connects knows the
    process is alive."""

    def __init__(self, address: str) -> None:
        self._host, self._port = split_address(address)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(_hang_up, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            await server.wait_closed()


async def _hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def answers(address: str, *, timeout: float) -> bool:
    """Whether a TCP connection to ``address`` succeeds within ``timeout``."""
    try:
        host, port = split_address(address)
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class GroupLink(Protocol):
    """What the watch needs of one group: its members, and a way to remove some (one of this process's consumers
    in it, for Kafka)."""

    async def describe(self) -> Sequence[DescribedMember] | None: ...

    async def remove(self, members: Sequence[StaticMember]) -> str | None:
        """None when the broker removed every one of ``members``, else why not."""


@dataclass(frozen=True, slots=True)
class ConsumerLink:
    """A group as one of this process's consumers in it reaches it."""

    consumer: AIOKafkaConsumer
    timeout: float

    async def describe(self) -> Sequence[DescribedMember] | None:
        return await describe_group(self.consumer, timeout=self.timeout)

    async def remove(self, members: Sequence[StaticMember]) -> str | None:
        return await remove_members(self.consumer, members, timeout=self.timeout)


Probe = Callable[[str], Awaitable[bool]]


@dataclass(slots=True)
class _Peer:
    failing_since: float | None = None
    removed: set[str] = field(default_factory=set)
    """The groups this peer was removed from since a connection to it last succeeded."""


class PeerWatch:
    """Every ``interval`` seconds: each group's members with a card, a connection to each other process's address,
    and the removal of a process's members once its address has failed for ``eviction`` seconds in a row."""

    def __init__(
        self,
        *,
        own_address: str,
        eviction: float,
        interval: float,
        groups: Callable[[], Mapping[str, GroupLink]],
        probe: Probe | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._own = own_address
        self._eviction = eviction
        self._interval = interval
        self._groups = groups
        self._probe = probe or (lambda address: answers(address, timeout=interval))
        self._clock = clock
        self._peers: dict[str, _Peer] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="kafka:peer-watch")

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:  # the watch only speeds recovery up: a failed round is logged, the next one runs
                log.exception("bus.peer_watch_failed")

    async def check(self) -> None:
        """One round: describe, connect, remove what has been dead long enough."""
        described = {group: (link, await link.describe()) for group, link in self._groups().items()}
        members: dict[str, dict[str, list[StaticMember]]] = {}
        """Each other process's address → group → its members there."""
        for group, (_, found) in described.items():
            for member in found or ():
                card = PeerCard.decode(member.user_data)
                if card is not None and card.address != self._own:
                    members.setdefault(card.address, {}).setdefault(group, []).append(
                        StaticMember(group_id=group, member_id=member.member_id, group_instance_id=card.instance)
                    )
        addresses = sorted(members)
        alive = await asyncio.gather(*(self._probe(address) for address in addresses))
        now = self._clock()
        for address, up in zip(addresses, alive, strict=True):
            peer = self._peers.setdefault(address, _Peer())
            if up:
                peer.failing_since, peer.removed = None, set()
                continue
            if peer.failing_since is None:
                peer.failing_since = now
            if now - peer.failing_since < self._eviction:
                continue
            for group, its in members[address].items():
                if group in peer.removed:
                    continue
                failed = await described[group][0].remove(its)
                where = {
                    "group": group,
                    "peer": address,
                    "members": [member.group_instance_id or member.member_id for member in its],
                    "silent_seconds": round(now - peer.failing_since, 2),
                }
                if failed is None:
                    peer.removed.add(group)
                    log.warning("bus.peer_removed", **where)
                else:
                    log.warning("bus.peer_remove_failed", **where, error=failed)  # the next round tries again
        if all(found is not None for _, found in described.values()):
            self._forget(set(addresses))  # a group that could not be described hides no one

    def _forget(self, present: set[str]) -> None:
        """Drop what is known of addresses no longer in any group, except that they were removed: a process that
        joins again while still unreachable is not removed a second time."""
        for address in [a for a in self._peers if a not in present]:
            peer = self._peers[address]
            if peer.removed:
                peer.failing_since = None
            else:
                del self._peers[address]
