"""Client events that are commands to the messages service: each is published on chat.messages.commands with a
request id, and its ack is built from the event that answers that request id (or from the rejection).

``COMMANDS`` is the table: per socket event, the command it becomes and the ack its answer gives.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import structlog

from chat_contracts import messages_commands as cmd
from chat_contracts import messages_events as mev
from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_contracts.ids import random_hex
from chat_contracts.topics import MESSAGES_COMMANDS
from chat_gateway.service.protocol import Ack, Delete, Edit, Marker, React, Send, fail, ok
from chat_runtime.bus.port import Bus

log = structlog.get_logger("chat.gateway")

SOURCE = "gateway"


@dataclass(frozen=True, slots=True)
class CommandEvent:
    """A socket event that is a command: ``build(payload, user, request_id, room_version)`` makes the command, and
    ``ack`` turns the event that answered it into the socket's ack."""

    build: Callable[[Any, uuid.UUID, str, int | None], Contract]
    ack: Callable[[Any], Ack]


def _send(p: Send, user: uuid.UUID, request_id: str, room_version: int | None) -> Contract:
    return cmd.SendMessage(
        room_id=p.room_id,
        sender_id=user,
        client_msg_id=p.client_msg_id,
        body=p.body,
        reply_to=p.reply_to,
        attachment_ids=tuple(p.attachment_ids),
        request_id=request_id,
        room_version=room_version,
    )


def _edit(p: Edit, user: uuid.UUID, request_id: str, room_version: int | None) -> Contract:
    return cmd.EditMessage(
        room_id=p.room_id,
        actor_id=user,
        message_id=p.message_id,
        body=p.body,
        request_id=request_id,
        room_version=room_version,
    )


def _delete(p: Delete, user: uuid.UUID, request_id: str, room_version: int | None) -> Contract:
    return cmd.DeleteMessage(
        room_id=p.room_id, actor_id=user, message_id=p.message_id, request_id=request_id, room_version=room_version
    )


def _react(p: React, user: uuid.UUID, request_id: str, room_version: int | None) -> Contract:
    return cmd.ReactToMessage(
        room_id=p.room_id,
        actor_id=user,
        message_id=p.message_id,
        emoji=p.emoji,
        action=p.action,
        request_id=request_id,
        room_version=room_version,
    )


def _read(p: Marker, user: uuid.UUID, request_id: str, room_version: int | None) -> Contract:
    return cmd.MarkRead(
        room_id=p.room_id, actor_id=user, up_to_seq=p.seq, request_id=request_id, room_version=room_version
    )


def _delivered(p: Marker, user: uuid.UUID, request_id: str, room_version: int | None) -> Contract:
    return cmd.AcknowledgeDelivery(
        room_id=p.room_id, actor_id=user, up_to_seq=p.seq, request_id=request_id, room_version=room_version
    )


def _versioned(d: Any) -> Ack:
    return ok(version=d.version)


def _marker(d: Any) -> Ack:
    return ok(seq=d.up_to_seq)


COMMANDS: Final[dict[str, CommandEvent]] = {
    "message:send": CommandEvent(_send, lambda d: ok(message_id=str(d.message_id), seq=d.seq, room_id=str(d.room_id))),
    "message:edit": CommandEvent(_edit, _versioned),
    "message:delete": CommandEvent(_delete, _versioned),
    "message:react": CommandEvent(_react, lambda d: ok(version=d.version, counts=d.counts)),
    "room:read": CommandEvent(_read, _marker),
    "room:delivered": CommandEvent(_delivered, _marker),
}
"""The payload models are ``protocol.CLIENT_EVENTS[event].payload``; the acks are documented there too."""


class Requests:
    """Commands in flight: each waits for the messages event that carries its request id."""

    def __init__(self, bus: Bus, *, timeout_seconds: float) -> None:
        self.bus = bus
        self.timeout_seconds = timeout_seconds
        self.pending: dict[str, asyncio.Future[Envelope]] = {}

    async def ask(self, event: str, payload: Any, user: uuid.UUID, room_version: int | None) -> Ack:
        """Publish the command ``event`` asks for (stamped with the room version at which this instance saw the
        user as a member) and answer with its ack, a rejection's, or a coded failure when the bus is unreachable
        or nothing answers in time."""
        route = COMMANDS[event]
        request_id = random_hex()
        future: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        command = route.build(payload, user, request_id, room_version)
        try:
            # One deadline for handing the command to the bus and hearing the answer.
            async with asyncio.timeout(self.timeout_seconds):
                try:
                    await self.bus.publish(MESSAGES_COMMANDS, command, source=SOURCE)
                except Exception as exc:  # the bus is unreachable: nothing was accepted, so say so at once
                    log.warning("gateway.command_not_published", error=type(exc).__name__)
                    return fail(
                        "unavailable", "Messages cannot be accepted right now; resend with the same id.", retry_after=1
                    )
                answer = (await future).data
        except TimeoutError:
            return fail("timeout", "No answer in time; resend with the same client_msg_id (it is safe).", retry_after=1)
        finally:
            self.pending.pop(request_id, None)
        if isinstance(answer, mev.MessageRejected):
            return fail(answer.code, answer.message, retry_after=answer.retry_after)
        return route.ack(answer)

    def answered(self, envelope: Envelope) -> None:
        """A messages event: if it answers a command of this instance, that command's wait is over."""
        request_id = getattr(envelope.data, "request_id", None)
        if isinstance(request_id, str):
            future = self.pending.get(request_id)
            if future is not None and not future.done():
                future.set_result(envelope)
