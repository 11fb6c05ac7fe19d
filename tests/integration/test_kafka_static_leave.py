"""A consumer-group member that stops gracefully leaves its group at once, a static member too (LeaveGroup v3 from
chat_runtime.bus.aiokafka_internals; aiokafka leaves only as a dynamic member); one that crashes stays a member.

Two buses, each with a consumer of two topics in one group, as the messages service has, and a 30 s session
timeout: right after one bus stops, the broker's description of the group (DescribeGroups) no longer has its
members, which only an explicit leave explains, and the other bus's consumers then take every partition. Nothing
here measures how long that takes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from structlog.testing import capture_logs

from chat_contracts.envelope import Envelope
from chat_contracts.topics import ROOMS_EVENTS, USERS_EVENTS
from chat_runtime.bus.kafka import KafkaBus
from chat_runtime.bus.kafka_setup import KafkaConfig, ensure_topics

SESSION_TIMEOUT_MS = 30_000
"""Far longer than the test takes to look: a member gone at once has left, not timed out."""
GROUP = "leavers"
TOPICS = (USERS_EVENTS, ROOMS_EVENTS)
EVERY_PARTITION = frozenset((spec.name, p) for spec in TOPICS for p in range(spec.partitions))
SETTLE_SECONDS = 60
"""A guard against hanging while the group settles, not a measurement."""


@dataclass(frozen=True)
class Member:
    """What DescribeGroups says of one member. aiokafka's admin client asks for v3, which has no instance id, but
    a static member's id is its instance id, a dash and a UUID."""

    member_id: str
    client_id: str
    partitions: frozenset[tuple[str, int]]

    @property
    def bus(self) -> str:
        """Which bus the member belongs to: a consumer's client id is the bus's, a dash and the group."""
        return self.client_id.removesuffix(f"-{GROUP}")

    def is_instance_of(self, bus: str) -> bool:
        """Whether the member has one of ``bus``'s static member names (KafkaConfig.member_name)."""
        return any(self.member_id.startswith(f"{bus}.{spec.name}-") for spec in TOPICS)


@dataclass
class Group:
    prefix: str
    bootstrap: str

    async def join(self, bus_name: str, *, static: bool) -> KafkaBus:
        """A bus whose consumers of both topics are members of the group."""
        bus = KafkaBus(
            KafkaConfig(
                bootstrap=self.bootstrap,
                client_id=bus_name,
                topic_prefix=self.prefix,
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=1_000,
                poll_timeout_ms=100,
                group_instance_id=bus_name if static else None,
            )
        )

        async def ignore(envelope: Envelope) -> None:
            del envelope

        for spec in TOPICS:
            await bus.subscribe(spec, group=GROUP, handler=ignore)
        return bus

    async def members(self) -> tuple[str, list[Member]]:
        """The group's state and members as the broker describes them."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_consumer_groups([self.prefix + GROUP])
        finally:
            await admin.close()
        _, _, state, _, _, members = described.groups[0][:6]
        return state, [
            Member(member_id, client_id, self._partitions(assignment))
            for member_id, client_id, _, _, assignment in members
        ]

    async def settled(self, buses: list[str]) -> list[Member]:
        """The members once the group is stable with exactly these buses' consumers, holding every partition."""
        async with asyncio.timeout(SETTLE_SECONDS):
            while True:
                state, members = await self.members()
                held = [tp for member in members for tp in member.partitions]
                consumers = sorted(member.bus for member in members)
                if state == "Stable" and consumers == sorted(buses * len(TOPICS)) and len(held) == len(EVERY_PARTITION):
                    assert set(held) == EVERY_PARTITION
                    return members
                await asyncio.sleep(0.2)

    def _partitions(self, assignment: bytes) -> frozenset[tuple[str, int]]:
        if not assignment:
            return frozenset()
        decoded = ConsumerProtocolMemberAssignment.decode(assignment)
        return frozenset(
            (topic.removeprefix(self.prefix), p) for topic, partitions in decoded.assignment for p in partitions
        )


@pytest.fixture
async def group(kafka_bootstrap: str) -> AsyncIterator[Group]:
    found = Group(prefix=f"leave-{uuid.uuid4().hex[:8]}.", bootstrap=kafka_bootstrap)
    await ensure_topics(KafkaConfig(bootstrap=kafka_bootstrap, topic_prefix=found.prefix), TOPICS)
    yield found
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([found.prefix + name for spec in TOPICS for name in (spec.name, spec.dlq)])
    finally:
        await admin.close()


@pytest.mark.parametrize("static", [True, False], ids=["static members", "dynamic members"])
async def test_a_bus_that_stops_leaves_its_group_at_once_and_the_other_takes_every_partition(
    group: Group, static: bool
) -> None:
    first = await group.join("first", static=static)
    second = await group.join("second", static=static)
    try:
        before = await group.settled(["first", "second"])
        assert {member.bus for member in before if member.partitions} == {"first", "second"}, "partitions to hand over"
        if static:
            assert all(member.is_instance_of(member.bus) for member in before), before

        with capture_logs() as logs:
            await first.stop()

        _, members = await group.members()
        assert [member.bus for member in members] == ["second", "second"]
        assert not [member for member in members if member.is_instance_of("first")]
        left = [log for log in logs if log["event"] == "bus.group_left"]
        if static:
            (one_request,) = left
            assert sorted(one_request["members"]) == sorted(f"first.{spec.name}" for spec in TOPICS)
        else:
            assert left == [], "a dynamic member leaves the way aiokafka does"
        after = await group.settled(["second"])
        assert frozenset(tp for member in after for tp in member.partitions) == EVERY_PARTITION
    finally:
        await first.stop()
        await second.stop()


async def test_a_static_member_that_crashes_stays_in_the_group_until_its_session_ends(group: Group) -> None:
    first = await group.join("first", static=True)
    second = await group.join("second", static=True)
    try:
        await group.settled(["first", "second"])

        await first.abort()

        _, members = await group.members()
        assert sorted(member.bus for member in members) == ["first", "first", "second", "second"]
    finally:
        await second.stop()
