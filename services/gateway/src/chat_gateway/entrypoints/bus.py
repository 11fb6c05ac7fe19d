"""The gateway's bus entrypoints: which topic feeds which part, from where, as one table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chat_contracts.topics import EPHEMERAL, MESSAGES_EVENTS, ROOMS_EVENTS, USERS_EVENTS
from chat_gateway.service.hub import Hub
from chat_runtime.bus.port import Bus, Subscription
from chat_runtime.module import BusHandler


@dataclass(frozen=True, slots=True)
class ThenListening(BusHandler):
    """The chat.ephemeral consumer: once it reads from the topic's end, ``listening`` lets the instance introduce
    itself (docs/decisions/0007: the others answer its first heartbeat, and it must be there to hear them)."""

    listening: Callable[[], None] = field(default=lambda: None)

    async def subscribe(self, bus: Bus) -> Subscription:
        subscription = await BusHandler.subscribe(self, bus)
        self.listening()
        return subscription


def bus_handlers(hub: Hub, instance_id: str) -> Sequence[BusHandler]:
    own = f"gateway-{instance_id}"
    delivery, presence = hub.delivery, hub.presence
    return (
        # Every instance needs every membership change from its start on; what came before it the rooms service
        # answers when asked (a bounded start: the keep-forever topic is never replayed; docs/decisions/0014).
        BusHandler(
            spec=ROOMS_EVENTS, group=f"{own}-rooms", handler=delivery.on_room_event, start="latest", broadcast=True
        ),
        # Fan-out, acks and session ends only matter from now on, too.
        BusHandler(
            spec=MESSAGES_EVENTS,
            group=f"{own}-messages",
            handler=delivery.on_message_event,
            batch=delivery.on_message_events,
            start="latest",
            broadcast=True,
        ),
        BusHandler(
            spec=USERS_EVENTS, group=f"{own}-users", handler=delivery.on_user_event, start="latest", broadcast=True
        ),
        ThenListening(
            spec=EPHEMERAL,
            group=f"{own}-ephemeral",
            handler=presence.on_event,
            start="latest",
            broadcast=True,
            listening=presence.listening,
        ),
    )
