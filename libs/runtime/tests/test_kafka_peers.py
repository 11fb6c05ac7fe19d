"""The peer watch without a broker: the card a member carries, the assignor that carries it, the listener, and
when the watch removes a peer's members. tests/integration/test_messages_failover.py kills a real process."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence

import pytest
import structlog
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from structlog.testing import capture_logs

from chat_runtime.bus.aiokafka_internals import DescribedMember, StaticMember
from chat_runtime.bus.kafka_peers import CardAssignor, PeerCard, PeerListener, PeerWatch, answers, split_address
from chat_runtime.bus.kafka_setup import KafkaConfig, consumer_options

OWN = "10.0.0.1:9095"
PEER = "10.0.0.2:9095"
OTHER = "10.0.0.3:9095"


@pytest.fixture(autouse=True)
def _default_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def _member(member_id: str, address: str | None, instance: str | None = None) -> DescribedMember:
    card = PeerCard(address=address, instance=instance).encode() if address is not None else b""
    return DescribedMember(member_id=member_id, user_data=card)


class FakeGroup:
    def __init__(self, members: Sequence[DescribedMember], *, removes: bool = True) -> None:
        self.members: Sequence[DescribedMember] | None = list(members)
        self.removes = removes
        self.removed: list[list[StaticMember]] = []

    async def describe(self) -> Sequence[DescribedMember] | None:
        return self.members

    async def remove(self, members: Sequence[StaticMember]) -> str | None:
        self.removed.append(list(members))
        if not self.removes:
            return "error 25 (UnknownMemberIdError)"
        if self.members is not None:
            gone = {member.member_id for member in members}
            self.members = [member for member in self.members if member.member_id not in gone]
        return None


class Scene:
    """A watch over fake groups, with a clock and peers' answers the test sets."""

    def __init__(self, groups: dict[str, FakeGroup], *, eviction: float = 3.0) -> None:
        self.now = 100.0
        self.up: dict[str, bool] = {}
        self.probed: list[str] = []
        self.watch = PeerWatch(
            own_address=OWN,
            eviction=eviction,
            interval=0.5,
            groups=lambda: groups,
            probe=self._probe,
            clock=lambda: self.now,
        )

    async def _probe(self, address: str) -> bool:
        self.probed.append(address)
        return self.up.get(address, True)

    async def round_at(self, now: float) -> None:
        self.now = now
        await self.watch.check()


def test_a_card_survives_the_trip_through_user_data() -> None:
    card = PeerCard(address="[fd00::7]:9095", instance="messages-7.chat.messages.commands")

    assert PeerCard.decode(card.encode()) == card
    assert PeerCard.decode(PeerCard(address=PEER, instance=None).encode()) == PeerCard(address=PEER, instance=None)


@pytest.mark.parametrize(
    "user_data",
    [b"", b"something else", b"chat-peer/1 not json", b"chat-peer/1 []", b'chat-peer/1 {"address": 7}'],
)
def test_user_data_without_a_card_reads_as_none(user_data: bytes) -> None:
    assert PeerCard.decode(user_data) is None


def test_the_assignor_is_round_robin_under_its_name_and_carries_the_card() -> None:
    card = PeerCard(address=PEER, instance="messages-1.chat.messages.commands")
    assignor = CardAssignor(card)

    metadata = ConsumerProtocolMemberMetadata.decode(assignor.metadata(["t"]).encode())

    assert assignor.name == RoundRobinPartitionAssignor.name
    assert metadata.subscription == ["t"]
    assert PeerCard.decode(metadata.user_data) == card
    cluster = ClusterMetadata()
    members = {"a": metadata, "b": ConsumerProtocolMemberMetadata(0, ["t"], b"")}
    assert assignor.assign(cluster, members) == RoundRobinPartitionAssignor.assign(cluster, members)


def test_a_member_carries_its_process_address_and_its_own_name() -> None:
    config = KafkaConfig(bootstrap="k:9092", group_instance_id="messages-1", peer_address=PEER)

    (assignor,) = consumer_options(
        config, topic="chat.rooms.events", group="messages", start="earliest", broadcast=False
    )["partition_assignment_strategy"]

    card = PeerCard.decode(assignor.metadata(["x"]).user_data)
    assert card == PeerCard(address=PEER, instance="messages-1.chat.rooms.events")


def test_without_an_address_or_as_a_broadcast_reader_no_card_is_carried() -> None:
    plain = KafkaConfig(bootstrap="k:9092")
    addressed = KafkaConfig(bootstrap="k:9092", peer_address=PEER)

    for config, broadcast in ((plain, False), (addressed, True)):
        options = consumer_options(config, topic="t", group="g", start="latest", broadcast=broadcast)
        assert "partition_assignment_strategy" not in options


def test_the_watch_runs_only_when_eviction_comes_before_the_session_timeout() -> None:
    assert KafkaConfig(bootstrap="k", peer_address=PEER, session_timeout_ms=10_000).watches_peers
    assert not KafkaConfig(bootstrap="k", peer_address=PEER, session_timeout_ms=3_000).watches_peers
    assert not KafkaConfig(bootstrap="k", session_timeout_ms=10_000).watches_peers


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.1.2.3:9095", ("10.1.2.3", 9095)),
        ("[fd00::1]:80", ("fd00::1", 80)),
        ("fd00::1:80", ("fd00::1", 80)),
        ("pod.ns.svc:1", ("pod.ns.svc", 1)),
    ],
)
def test_addresses_are_host_and_port(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize("address", ["10.1.2.3", ":80", "host:", "host:0", "host:65536", "host:http"])
def test_anything_else_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        split_address(address)


async def test_the_listener_answers_while_it_runs_and_refuses_after() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    address = f"127.0.0.1:{port}"
    listener = PeerListener(address)

    await listener.start()
    try:
        assert await answers(address, timeout=5)
        assert await answers(address, timeout=5), "each connection is closed and the next one accepted"
    finally:
        await listener.stop()
    assert not await answers(address, timeout=5)


async def test_a_peer_silent_for_the_eviction_time_loses_all_its_members_in_one_request() -> None:
    group = FakeGroup(
        [
            _member("own-1", OWN, "messages-0.a"),
            _member("peer-1", PEER, "messages-1.a"),
            _member("peer-2", PEER, "messages-1.b"),
            _member("other-1", OTHER, "messages-2.a"),
        ]
    )
    scene = Scene({"messages": group})
    scene.up[PEER] = False

    await scene.round_at(100.0)
    await scene.round_at(102.9)
    assert group.removed == [], "silent for less than the eviction time"
    await scene.round_at(103.0)

    assert group.removed == [
        [
            StaticMember(group_id="messages", member_id="peer-1", group_instance_id="messages-1.a"),
            StaticMember(group_id="messages", member_id="peer-2", group_instance_id="messages-1.b"),
        ]
    ]
    assert OWN not in scene.probed, "a process never probes itself"


async def test_an_answer_starts_the_count_again() -> None:
    group = FakeGroup([_member("peer-1", PEER, "messages-1.a")])
    scene = Scene({"messages": group})

    scene.up[PEER] = False
    await scene.round_at(100.0)
    scene.up[PEER] = True
    await scene.round_at(102.0)
    scene.up[PEER] = False
    await scene.round_at(104.0)
    await scene.round_at(106.9)

    assert group.removed == []
    await scene.round_at(107.0)
    assert len(group.removed) == 1


async def test_members_without_a_card_are_never_probed_or_removed() -> None:
    group = FakeGroup([_member("old-release", None)])
    scene = Scene({"messages": group})

    for now in (100.0, 110.0, 120.0):
        await scene.round_at(now)

    assert scene.probed == []
    assert group.removed == []


async def test_a_removed_peer_that_joins_again_unreachable_is_not_removed_twice() -> None:
    group = FakeGroup([_member("peer-1", PEER, "messages-1.a")])
    scene = Scene({"messages": group})
    scene.up[PEER] = False
    await scene.round_at(100.0)
    await scene.round_at(103.0)
    assert len(group.removed) == 1
    await scene.round_at(103.5)  # gone from the group

    group.members = [_member("peer-1-again", PEER, "messages-1.a")]  # alive, heartbeating, but unreachable from here
    for now in (104.0, 110.0, 120.0):
        await scene.round_at(now)
    assert len(group.removed) == 1, "one rebalance for a fault between peers, not one per eviction time"

    scene.up[PEER] = True
    await scene.round_at(121.0)
    scene.up[PEER] = False  # reachable once, then dead for real
    await scene.round_at(122.0)
    await scene.round_at(125.0)
    assert [[m.member_id for m in removed] for removed in group.removed] == [["peer-1"], ["peer-1-again"]]


async def test_a_removal_the_broker_refused_is_tried_again() -> None:
    group = FakeGroup([_member("peer-1", PEER, "messages-1.a")], removes=False)
    scene = Scene({"messages": group})
    scene.up[PEER] = False

    with capture_logs() as logs:
        for now in (100.0, 103.0, 103.5):
            await scene.round_at(now)

    assert len(group.removed) == 2
    failures = [entry for entry in logs if entry["event"] == "bus.peer_remove_failed"]
    assert [entry["error"] for entry in failures] == ["error 25 (UnknownMemberIdError)"] * 2
    assert failures[0]["peer"] == PEER


async def test_a_group_that_cannot_be_described_does_not_restart_the_count() -> None:
    group = FakeGroup([_member("peer-1", PEER, "messages-1.a")])
    scene = Scene({"messages": group})
    scene.up[PEER] = False

    await scene.round_at(100.0)
    known = group.members
    group.members = None  # the coordinator moved, say
    await scene.round_at(101.5)
    group.members = known
    await scene.round_at(103.0)

    assert len(group.removed) == 1


async def test_each_group_of_a_peer_is_cleared_in_its_own_request() -> None:
    messages = FakeGroup([_member("peer-1", PEER, "messages-1.a")])
    projection = FakeGroup([_member("peer-9", PEER, "messages-1.b")])
    scene = Scene({"messages": messages, "projection": projection})
    scene.up[PEER] = False

    await scene.round_at(100.0)
    await scene.round_at(103.0)

    assert [[m.member_id for m in r] for r in messages.removed] == [["peer-1"]]
    assert [[m.group_id for m in r] for r in projection.removed] == [["projection"]]
    assert scene.probed.count(PEER) == 2, "one connection per peer and round, whatever the number of groups"
