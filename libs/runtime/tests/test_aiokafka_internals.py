"""chat_runtime.bus.aiokafka_internals without a broker: the LeaveGroup v3 wire format, what a failed leave does,
and the aiokafka internals it relies on (a new aiokafka that moves them fails here, not in production).
tests/integration/test_kafka_static_leave.py leaves a real broker's group."""

from __future__ import annotations

import asyncio
import inspect
import struct
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.client import AIOKafkaClient, ConnectionGroup
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from aiokafka.errors import IncompatibleBrokerVersion, RequestTimedOutError
from aiokafka.protocol.admin import DescribeGroupsResponse_v0
from structlog.testing import capture_logs

from chat_runtime.bus.aiokafka_internals import (
    DescribedMember,
    LeaveGroupRequestV3,
    LeaveGroupResponseV3,
    StaticLeaveGroup,
    StaticMember,
    described_members,
    leave_group,
    static_member,
)

MEMBER = StaticMember(group_id="t.messages", member_id="m-1", group_instance_id="messages-0.chat.rooms.events")
COORDINATOR = 7
FENCED_INSTANCE_ID = 82
UNKNOWN_MEMBER_ID = 25


def _string(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">h", len(data)) + data


@pytest.fixture(autouse=True)
def _default_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def test_the_v3_request_is_the_group_then_an_array_of_member_id_and_instance_id() -> None:
    members = [StaticMember("t.messages", "m-1", "messages-0.a"), StaticMember("t.messages", "m-2", "messages-0.b")]

    built = StaticLeaveGroup("t.messages", members).prepare({13: (0, 5)})

    assert isinstance(built, LeaveGroupRequestV3)
    assert built.encode() == (
        _string("t.messages")
        + struct.pack(">i", 2)
        + _string("m-1")
        + _string("messages-0.a")
        + _string("m-2")
        + _string("messages-0.b")
    )
    header = built.build_request_header(correlation_id=9, client_id="chat-messages")
    assert header.encode() == struct.pack(">hhi", 13, 3, 9) + _string("chat-messages")


def test_a_broker_without_leave_group_v3_gets_nothing_sent() -> None:
    request = StaticLeaveGroup("g", [StaticMember("g", "m", "i")])

    with pytest.raises(NotImplementedError):
        request.prepare({13: (0, 2)})
    with pytest.raises(IncompatibleBrokerVersion):
        request.prepare({})


def test_the_v3_response_decodes_each_members_error() -> None:
    wire = (
        struct.pack(">ih", 0, 0)
        + struct.pack(">i", 1)
        + _string("m-1")
        + _string("messages-0.x")
        + struct.pack(">h", FENCED_INSTANCE_ID)
    )

    response = LeaveGroupResponseV3.decode(wire)

    assert (response.throttle_time_ms, response.error_code) == (0, 0)
    assert response.members == [("m-1", "messages-0.x", FENCED_INSTANCE_ID)]


class FakeClient:
    """Answers LeaveGroup as the coordinator would, records what was sent; ``answer`` None never answers."""

    def __init__(self, answer: LeaveGroupResponseV3 | Exception | None) -> None:
        self.answer = answer
        self.sent: list[tuple[int, Any, ConnectionGroup]] = []

    async def send(self, node_id: int, request: Any, *, group: ConnectionGroup) -> LeaveGroupResponseV3:
        self.sent.append((node_id, request, group))
        if self.answer is None:
            await asyncio.Event().wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        assert self.answer is not None
        return self.answer


def _response(error_code: int = 0, member_error: int = 0) -> LeaveGroupResponseV3:
    return LeaveGroupResponseV3(0, error_code, [(MEMBER.member_id, MEMBER.group_instance_id, member_error)])


async def test_a_static_member_leaves_through_the_groups_coordinator() -> None:
    client = FakeClient(_response())

    with capture_logs() as logs:
        left = await leave_group(client, COORDINATOR, MEMBER.group_id, [MEMBER], timeout=5)

    assert left
    ((node, request, group),) = client.sent
    assert (node, group) == (COORDINATOR, ConnectionGroup.COORDINATION)
    assert request.prepare({13: (0, 5)}).members == [(MEMBER.member_id, MEMBER.group_instance_id)]
    assert [(log["event"], log["log_level"]) for log in logs] == [("bus.group_left", "info")]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_response(member_error=FENCED_INSTANCE_ID), f"{MEMBER.group_instance_id}: error {FENCED_INSTANCE_ID}"),
        (_response(error_code=UNKNOWN_MEMBER_ID), "UnknownMemberIdError"),
        (RequestTimedOutError(), "RequestTimedOutError"),
        (None, "TimeoutError"),
    ],
    ids=["member refused", "request refused", "request failed", "no answer"],
)
async def test_a_failed_leave_is_a_warning_and_the_stop_goes_on(answer: Any, reason: str) -> None:
    client = FakeClient(answer)

    with capture_logs() as logs:
        left = await leave_group(client, COORDINATOR, MEMBER.group_id, [MEMBER], timeout=0.05)

    assert not left
    (warning,) = logs
    assert (warning["event"], warning["log_level"]) == ("bus.group_leave_failed", "warning")
    assert reason in warning["error"]
    assert (warning["group"], warning["members"]) == (MEMBER.group_id, [MEMBER.group_instance_id])


async def test_without_a_known_coordinator_nothing_is_sent() -> None:
    client = FakeClient(_response())

    with capture_logs() as logs:
        left = await leave_group(client, None, MEMBER.group_id, [MEMBER], timeout=5)

    assert not left
    assert client.sent == []
    assert [log["event"] for log in logs] == ["bus.group_leave_failed"]


async def test_a_consumer_that_has_not_joined_has_no_membership_to_leave() -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers="k:9092", group_id="g", group_instance_id="i")
    try:
        assert static_member(consumer) is None
    finally:
        await consumer.stop()


def test_the_aiokafka_internals_used_still_exist() -> None:
    # What aiokafka_internals reads and calls; the integration test uses them against a broker.
    assert inspect.iscoroutinefunction(AIOKafkaClient._wait_on_metadata)
    assert "group" in inspect.signature(AIOKafkaClient.send).parameters
    assert ConnectionGroup.COORDINATION
    assert "group_instance_id" in inspect.signature(GroupCoordinator.__init__).parameters
    assert inspect.iscoroutinefunction(GroupCoordinator.close)
    source = inspect.getsource(GroupCoordinator)
    for attribute in (
        "self._group_instance_id",
        "self.generation",
        "self.member_id",
        "self.coordinator_id",
        "self.group_id",
    ):
        assert attribute in source, attribute
    consumer_source = inspect.getsource(AIOKafkaConsumer)
    assert "self._coordinator" in consumer_source
    assert "self._client" in consumer_source


def test_a_described_group_gives_each_members_subscription_user_data() -> None:
    subscription = ConsumerProtocolMemberMetadata(0, ["t.messages.commands"], b"card").encode()
    members = [("m-1", "c", "/10.0.0.2", subscription, b""), ("m-2", "c", "/10.0.0.3", b"\x00", b"")]
    wire = DescribeGroupsResponse_v0([(0, "t.messages", "Stable", "consumer", "roundrobin", members)]).encode()

    found = described_members(DescribeGroupsResponse_v0.decode(wire), "t.messages")

    assert found == [DescribedMember("m-1", b"card"), DescribedMember("m-2", b"")]


def test_a_refused_describe_gives_no_members() -> None:
    response = DescribeGroupsResponse_v0([(16, "t.messages", "", "", "", [])])  # NOT_COORDINATOR

    assert described_members(response, "t.messages") is None
