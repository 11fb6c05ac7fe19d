"""The bus's only uses of aiokafka's private API, written for aiokafka 0.14 (the ``>=0.14,<0.15`` bound of the
``kafka`` extra in libs/runtime/pyproject.toml); libs/runtime/tests/test_aiokafka_internals.py fails when a new
aiokafka moves what is used here.

- Waiting for a topic's metadata before joining a group (what ``AIOKafkaConsumer.start()`` itself awaits for a
  topic given to the constructor).
- Describing a consumer group and removing members of it, for the peer watch (``chat_runtime.bus.kafka_peers``):
  DescribeGroups through the consumer's connection to the group's coordinator, and LeaveGroup v3 naming the
  members of a dead peer process.
- Leaving a consumer group as a static member (KIP-345) on a graceful stop. aiokafka sends LeaveGroup only for a
  dynamic member, and its LeaveGroupRequest has only v0 and v1, which name a member by its id alone. Staying a
  member is right after a crash: a restart under the same name takes the partitions back without a rebalance.
  After a graceful stop (a scale-down, or a rolling update whose new pod has a new name) it left them idle for a
  session timeout. So a static member's stop closes aiokafka's coordinator (no more heartbeats, which could
  otherwise rejoin the group after the leave), sends LeaveGroup v3 with the member's id and instance id (one
  request for a process's members of one group, so the group rebalances once), then stops the consumer as usual.
  A failed or slow leave is logged and holds the stop up for ``LEAVE_TIMEOUT_SECONDS`` at most: the member then
  times out as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from struct import error as struct_error
from typing import Any

import structlog

from chat_runtime.extras import missing_extra

try:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.client import AIOKafkaClient, ConnectionGroup
    from aiokafka.consumer.group_coordinator import GroupCoordinator
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
    from aiokafka.errors import KafkaError, for_code
    from aiokafka.protocol.admin import DescribeGroupsRequest
    from aiokafka.protocol.api import Request, RequestStruct, Response
    from aiokafka.protocol.types import Array, Int16, Int32, Schema, String
except ImportError as missing:
    raise missing_extra("kafka", __name__, missing) from missing

log = structlog.get_logger("chat.bus.kafka")

LEAVE_TIMEOUT_SECONDS = 5.0
"""The longest a graceful stop waits for the broker to answer the leave (Kubernetes allows the whole stop 40 s)."""

LEAVE_GROUP = 13
"""LeaveGroup's API key."""


class LeaveGroupResponseV3(Response):  # type: ignore[misc]
    API_KEY = LEAVE_GROUP
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        (
            "members",
            Array(("member_id", String("utf-8")), ("group_instance_id", String("utf-8")), ("error_code", Int16)),
        ),
    )


class LeaveGroupRequestV3(RequestStruct):  # type: ignore[misc]
    """LeaveGroup v3 (Kafka 2.4, KIP-345): a batch of members, each named by its id and its instance id."""

    API_KEY = LEAVE_GROUP
    API_VERSION = 3
    RESPONSE_TYPE = LeaveGroupResponseV3
    SCHEMA = Schema(
        ("group_id", String("utf-8")),
        ("members", Array(("member_id", String("utf-8")), ("group_instance_id", String("utf-8")))),
    )


@dataclass(frozen=True, slots=True)
class StaticMember:
    """Who leaves: the group as the broker names it, the member id the broker gave, and the lasting name (None
    only for a dynamic member that the peer watch removes)."""

    group_id: str
    member_id: str
    group_instance_id: str | None


@dataclass(frozen=True, slots=True)
class DescribedMember:
    """A group member as DescribeGroups tells it: its id, and the user data of its subscription."""

    member_id: str
    user_data: bytes


class StaticLeaveGroup(Request[LeaveGroupRequestV3]):  # type: ignore[misc]
    """The request ``AIOKafkaClient.send`` takes: it builds v3 when the broker supports it, and raises
    ``NotImplementedError`` (or ``IncompatibleBrokerVersion``) before sending anything when it does not."""

    API_KEY = LEAVE_GROUP

    def __init__(self, group_id: str, members: Sequence[StaticMember]) -> None:
        self._group_id = group_id
        self._members = [(member.member_id, member.group_instance_id) for member in members]

    def build(self, request_struct_class: type[Any]) -> Any:
        return request_struct_class(self._group_id, self._members)


async def wait_for_topic_metadata(consumer: AIOKafkaConsumer, topic: str) -> None:
    """Until ``consumer``'s client knows the topic's partitions (aiokafka's own wait in ``start()``)."""
    await consumer._client._wait_on_metadata(topic)


def static_member(consumer: AIOKafkaConsumer) -> StaticMember | None:
    """The static group membership ``consumer`` holds now; None for a dynamic member, an assigned reader, or a
    member that has not joined yet."""
    coordinator = consumer._coordinator
    if not isinstance(coordinator, GroupCoordinator):
        return None
    instance: str | None = coordinator._group_instance_id
    if instance is None or coordinator.generation <= 0 or not coordinator.member_id:
        return None
    return StaticMember(group_id=coordinator.group_id, member_id=coordinator.member_id, group_instance_id=instance)


async def describe_group(consumer: AIOKafkaConsumer, *, timeout: float) -> list[DescribedMember] | None:
    """The members of ``consumer``'s group, asked of the group's coordinator over the consumer's connection; None
    while the consumer knows no coordinator (it is joining) or the broker does not answer in time."""
    coordinator = consumer._coordinator
    if not isinstance(coordinator, GroupCoordinator) or coordinator.coordinator_id is None:
        return None
    try:
        async with asyncio.timeout(timeout):
            response = await consumer._client.send(
                coordinator.coordinator_id,
                DescribeGroupsRequest([coordinator.group_id]),
                group=ConnectionGroup.COORDINATION,
            )
    except (KafkaError, TimeoutError) as exc:
        log.debug("bus.group_describe_failed", group=coordinator.group_id, error=f"{type(exc).__name__}: {exc}")
        return None
    return described_members(response, coordinator.group_id)


def described_members(response: Any, group_id: str) -> list[DescribedMember] | None:
    """The members in a DescribeGroups response for one group (any version); None if the broker refused."""
    error_code, _group, _state, _protocol_type, _protocol, members, *_ = response.groups[0]
    if error_code:
        log.debug("bus.group_describe_failed", group=group_id, error=_error(error_code))
        return None
    return [
        DescribedMember(member_id=member_id, user_data=_user_data(metadata))
        for member_id, _client_id, _host, metadata, _assignment in members
    ]


def _user_data(metadata: bytes | None) -> bytes:
    if not metadata:
        return b""
    try:
        decoded = ConsumerProtocolMemberMetadata.decode(metadata)
    except (ValueError, struct_error, UnicodeDecodeError):
        return b""  # another protocol than a consumer's subscription: nothing of ours in it
    return decoded.user_data or b""


async def remove_members(consumer: AIOKafkaConsumer, members: Sequence[StaticMember], *, timeout: float) -> str | None:
    """Remove ``members`` (another process's) from ``consumer``'s group, as if they had left; None when the broker
    removed every one, else why not."""
    coordinator = consumer._coordinator
    if not isinstance(coordinator, GroupCoordinator):
        return "the consumer is in no group"
    return await send_leave(
        consumer._client, coordinator.coordinator_id, coordinator.group_id, members, timeout=timeout
    )


async def stop_leaving_groups(consumers: Sequence[AIOKafkaConsumer], *, timeout: float = LEAVE_TIMEOUT_SECONDS) -> None:
    """Stop ``consumers``; their static members leave their groups first, one request per group, so a process's
    consumers of one group leave together and the group rebalances once. Call it after the last commit: the
    broker refuses a commit from a member that left."""
    leaving: dict[str, list[tuple[AIOKafkaConsumer, StaticMember]]] = {}
    for consumer in consumers:
        member = static_member(consumer)
        if member is not None:
            leaving.setdefault(member.group_id, []).append((consumer, member))
    for members in leaving.values():
        for consumer, _ in members:
            await consumer._coordinator.close()  # what consumer.stop() does first; a second close() does nothing
    await asyncio.gather(*(_leave_together(group_id, members, timeout) for group_id, members in leaving.items()))
    for consumer in consumers:
        await consumer.stop()


async def _leave_together(
    group_id: str, members: Sequence[tuple[AIOKafkaConsumer, StaticMember]], timeout: float
) -> None:
    consumer = members[0][0]  # any of them: each has a connection to the group's coordinator
    coordinator_id = consumer._coordinator.coordinator_id
    await leave_group(consumer._client, coordinator_id, group_id, [member for _, member in members], timeout=timeout)


async def leave_group(
    client: AIOKafkaClient,
    coordinator_id: int | None,
    group_id: str,
    members: Sequence[StaticMember],
    *,
    timeout: float,
) -> bool:
    """Send LeaveGroup v3 for ``members`` of ``group_id`` to the group's coordinator; whether the broker removed
    every one. Failures are logged, never raised: a member that did not leave does when its session times out."""
    where = {"group": group_id, "members": [member.group_instance_id for member in members]}
    failed = await send_leave(client, coordinator_id, group_id, members, timeout=timeout)
    if failed is not None:
        log.warning("bus.group_leave_failed", **where, error=failed)
        return False
    log.info("bus.group_left", **where)
    return True


async def send_leave(
    client: AIOKafkaClient,
    coordinator_id: int | None,
    group_id: str,
    members: Sequence[StaticMember],
    *,
    timeout: float,
) -> str | None:
    """LeaveGroup v3 for ``members`` of ``group_id``, sent to the group's coordinator; None when the broker removed
    every one, else why not (never raised)."""
    if coordinator_id is None:
        return "the group's coordinator is not known"
    try:
        async with asyncio.timeout(timeout):
            response = await client.send(
                coordinator_id, StaticLeaveGroup(group_id, members), group=ConnectionGroup.COORDINATION
            )
    except (KafkaError, NotImplementedError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    refused = _refusals(response)
    return ", ".join(refused) if refused else None


def _refusals(response: Any) -> list[str]:
    """What a LeaveGroup response refused. Kafka's error codes are given by number too: aiokafka 0.14 does not
    know 82, FENCED_INSTANCE_ID (a newer process has taken the member's name)."""
    found = [_error(response.error_code)] if response.error_code else []
    return found + [f"{instance}: {_error(code)}" for _, instance, code in response.members if code]


def _error(code: int) -> str:
    return f"error {code} ({for_code(code).__name__})"
