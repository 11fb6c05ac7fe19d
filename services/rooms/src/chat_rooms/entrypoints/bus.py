"""The rooms service's bus entrypoints: which event goes to which use case (a table, as in Cosmic Python's
messagebus), and the consumer that brings them.

A handler here unwraps the envelope: a use case takes the event, and the event's id, with which it is kept once
however often it is delivered. A type the table does not name is ignored; records that no contract of their topic
describes never get here (the bus dead-letters them).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from chat_contracts import users as uev
from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_contracts.topics import USERS_EVENTS
from chat_rooms.service.context import RoomsContext
from chat_rooms.service.users import forget_user, keep_profile
from chat_runtime.module import BusHandler

CONSUMER_GROUP = "rooms"


class UserEventUseCase(Protocol):
    async def __call__(self, ctx: RoomsContext, data: Any, /, *, event_id: uuid.UUID) -> None: ...


USER_EVENTS: Final[Mapping[type[Contract], UserEventUseCase]] = {
    uev.UserRegistered: keep_profile,
    uev.UserUpdated: keep_profile,
    uev.UserDeleted: forget_user,
}
"""chat.users.events: the profiles rooms show, and the accounts that leave (ended sessions are read by the token
check's own feed, not here)."""


@dataclass(frozen=True, slots=True)
class BusEntrypoints:
    """The handler the bus calls with envelopes: it finds the use case in the table and hands it the event."""

    ctx: RoomsContext

    async def on_user_event(self, envelope: Envelope) -> None:
        use_case = USER_EVENTS.get(type(envelope.data))
        if use_case is not None:
            await use_case(self.ctx, envelope.data, event_id=envelope.id)


def bus_handlers(ctx: RoomsContext) -> Sequence[BusHandler]:
    return (BusHandler(spec=USERS_EVENTS, group=CONSUMER_GROUP, handler=BusEntrypoints(ctx).on_user_event),)
