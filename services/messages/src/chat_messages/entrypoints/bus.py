"""The messages service's bus entrypoints: which command or event goes to which use case (one table per topic, as
in Cosmic Python's messagebus), and the consumers that bring them.

A handler here unwraps the envelope: a use case takes the command or event, and only the metadata it uses (a
command's correlation id, which its answer carries on). A type no table names is ignored; records that no
contract of their topic describes never get here (the bus dead-letters them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Final, TypeVar

from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError

from chat_contracts import messages_commands as cmd
from chat_contracts import rooms as rev
from chat_contracts import users as uev
from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_contracts.topics import MESSAGES_COMMANDS, ROOMS_EVENTS, USERS_EVENTS
from chat_messages.service.commands import handle_commands
from chat_messages.service.context import MessagesContext
from chat_messages.service.owner import RoomOwner
from chat_messages.service.projection import apply_room_event, forget_username, keep_username, note_room_event
from chat_runtime.bus.port import Pace, RetryableError
from chat_runtime.module import BusHandler

CONSUMER_GROUP = "messages"
STORE_DOWN = (AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError)
"""What pymongo raises when MongoDB cannot be reached."""

CommandsUseCase = Callable[[MessagesContext, RoomOwner, Sequence[tuple[Any, str]]], Awaitable[None]]
"""Takes commands with their correlation ids, a batch at a time."""
RoomEventUseCase = Callable[[MessagesContext, RoomOwner, Any], Awaitable[None]]
RoomNewsUseCase = Callable[[RoomOwner, Any], None]
UserEventUseCase = Callable[[MessagesContext, Any], Awaitable[None]]

COMMANDS: Final[Mapping[type[Contract], CommandsUseCase]] = {
    cmd.SendMessage: handle_commands,
    cmd.EditMessage: handle_commands,
    cmd.DeleteMessage: handle_commands,
    cmd.ReactToMessage: handle_commands,
    cmd.MarkRead: handle_commands,
    cmd.AcknowledgeDelivery: handle_commands,
}
"""chat.messages.commands. Consecutive commands with one use case go to it together and in order: a change may
name a message sent earlier in the same batch (service/commands.py)."""

ROOM_EVENTS: Final[Mapping[type[Contract], RoomEventUseCase]] = {
    rev.RoomCreated: apply_room_event,
    rev.RoomUpdated: apply_room_event,
    rev.RoomArchived: apply_room_event,
    rev.RoomUnarchived: apply_room_event,
    rev.RoomBlocked: apply_room_event,
    rev.RoomUnblocked: apply_room_event,
    rev.RoomDeleted: apply_room_event,
    rev.MemberJoined: apply_room_event,
    rev.MemberLeft: apply_room_event,
    rev.MemberInvited: apply_room_event,
    rev.MemberKicked: apply_room_event,
    rev.MemberBanned: apply_room_event,
    rev.MemberUnbanned: apply_room_event,
    rev.MemberRoleChanged: apply_room_event,
}
"""chat.rooms.events into the projection (every event advances the room's version, even one it keeps nothing of)."""

ROOM_NEWS: Final[Mapping[type[Contract], RoomNewsUseCase]] = dict.fromkeys(ROOM_EVENTS, note_room_event)
"""chat.rooms.events as every instance hears them: what the projection applies makes this instance's ledgers of
the room stale."""

USER_EVENTS: Final[Mapping[type[Contract], UserEventUseCase]] = {
    uev.UserRegistered: keep_username,
    uev.UserUpdated: keep_username,
    uev.UserDeleted: forget_username,
}
"""chat.users.events: the usernames mentions are resolved against (ended sessions are read by the token check's
own feed, not here)."""

T = TypeVar("T")


def retry_while_store_is_down(handler: Callable[[T], Awaitable[None]]) -> Callable[[T], Awaitable[None]]:
    """MongoDB unreachable is an outage, not a bad record: retry (the offset stays uncommitted), never dead-letter."""

    async def wrapped(delivered: T) -> None:
        try:
            await handler(delivered)
        except STORE_DOWN as exc:
            raise RetryableError(f"message store unavailable: {exc}") from exc

    return wrapped


def _command_use_case(envelope: Envelope) -> CommandsUseCase | None:
    return COMMANDS.get(type(envelope.data))


@dataclass(frozen=True, slots=True)
class BusEntrypoints:
    """The handlers the bus calls with envelopes: each finds its use case in a table and hands it the contract."""

    ctx: MessagesContext
    owner: RoomOwner

    async def on_commands(self, envelopes: Sequence[Envelope]) -> None:
        for use_case, run in groupby(envelopes, key=_command_use_case):
            if use_case is not None:
                await use_case(self.ctx, self.owner, [(e.data, e.correlation_id) for e in run])

    async def on_command(self, envelope: Envelope) -> None:
        """One command on its own: the bus's fallback when a batch fails."""
        await self.on_commands((envelope,))

    async def on_room_event(self, envelope: Envelope) -> None:
        use_case = ROOM_EVENTS.get(type(envelope.data))
        if use_case is not None:
            await use_case(self.ctx, self.owner, envelope.data)

    async def on_room_news(self, envelope: Envelope) -> None:
        use_case = ROOM_NEWS.get(type(envelope.data))
        if use_case is not None:
            use_case(self.owner, envelope.data)

    async def on_user_event(self, envelope: Envelope) -> None:
        use_case = USER_EVENTS.get(type(envelope.data))
        if use_case is not None:
            await use_case(self.ctx, envelope.data)


def bus_handlers(
    ctx: MessagesContext, owner: RoomOwner, *, instance_id: str, pace: Pace | None = None
) -> Sequence[BusHandler]:
    """The service's consumers; ``pace``, the store's pace of inserts, lets a busy room's partition bring the
    commands that arrive while the store would not write yet to its next batch (chat_runtime.bus.port.Pace)."""
    entry = BusEntrypoints(ctx, owner)
    return (
        BusHandler(spec=ROOMS_EVENTS, group=CONSUMER_GROUP, handler=retry_while_store_is_down(entry.on_room_event)),
        BusHandler(spec=USERS_EVENTS, group=CONSUMER_GROUP, handler=retry_while_store_is_down(entry.on_user_event)),
        BusHandler(
            spec=MESSAGES_COMMANDS,
            group=CONSUMER_GROUP,
            handler=retry_while_store_is_down(entry.on_command),
            batch=retry_while_store_is_down(entry.on_commands),
            pace=pace,
        ),
        # What this instance keeps in memory of its rooms is dropped when any instance's projection changes.
        BusHandler(
            spec=ROOMS_EVENTS,
            group=f"{CONSUMER_GROUP}-{instance_id}-rooms",
            handler=entry.on_room_news,
            start="latest",
            broadcast=True,
        ),
    )
