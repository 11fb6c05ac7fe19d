"""What the messages scenario suite drives: commands and room events delivered as the bus would, the HTTP API,
and the events the service published."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from chat_contracts import messages_commands as cmd
from chat_contracts import rooms as rooms_ev
from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_contracts.users import UserRegistered
from chat_messages.bootstrap import MessagesModule
from chat_messages.entrypoints.bus import BusEntrypoints
from chat_messages.testing.fakes import FakeClock, RecordingPublisher
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.testing.tokens import TokenMint


@dataclass
class Person:
    id: uuid.UUID
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class MessagesHarness:
    http: httpx.AsyncClient
    module: MessagesModule
    publisher: RecordingPublisher
    clock: FakeClock
    mint: TokenMint
    _versions: dict[uuid.UUID, int] = field(default_factory=dict)

    @property
    def bus(self) -> BusEntrypoints:
        """Where the bus hands this service its records."""
        return BusEntrypoints(self.module.context, self.module.owner)

    @property
    def events(self) -> list[Envelope]:
        return self.publisher.events

    async def person(self, username: str) -> Person:
        user_id = uuid.uuid4()
        data = UserRegistered(
            user_id=user_id, username=username, display_name=username, email_verified=True, occurred_at=self.clock()
        )
        await self.bus.on_user_event(Envelope.wrap(data, source="auth", key=str(user_id)))
        return Person(id=user_id, username=username, token=self.mint.access_token(user_id, username))

    def version_of(self, room_id: uuid.UUID) -> int:
        """The version of the last room event delivered for ``room_id``."""
        return self._versions.get(room_id, 0)

    async def room_event(self, room_id: uuid.UUID, event_type: type[Contract], **fields: Any) -> None:
        """Deliver a chat.rooms.events event with the room's next version."""
        version = self._versions.get(room_id, 0) + 1
        self._versions[room_id] = version
        data = event_type.model_validate(
            {"room_id": room_id, "room_version": version, "occurred_at": self.clock(), **fields}
        )
        await self.bus.on_room_event(Envelope.wrap(data, source="rooms", key=str(room_id)))

    async def room(self, owner: Person, *members: Person, history: str = "shared", kind: str = "public") -> uuid.UUID:
        room_id = uuid.uuid4()
        await self.room_event(
            room_id, rooms_ev.RoomCreated, kind=kind, name="room", created_by=owner.id, history=history
        )
        await self.room_event(room_id, rooms_ev.MemberJoined, user_id=owner.id, role="owner")
        for member in members:
            await self.join(room_id, member)
        return room_id

    async def join(self, room_id: uuid.UUID, person: Person, role: str = "member") -> None:
        await self.room_event(room_id, rooms_ev.MemberJoined, user_id=person.id, role=role)

    async def command(self, data: Contract) -> Envelope:
        """Deliver a command as the bus would and return the answer published for its request_id."""
        envelope = Envelope.wrap(data, source="gateway", key=str(data.room_id))  # type: ignore[attr-defined]
        before = len(self.publisher.events)
        await self.bus.on_command(envelope)
        answers = [e for e in self.publisher.events[before:] if getattr(e.data, "request_id", None) == data.request_id]  # type: ignore[attr-defined]
        assert len(answers) == 1, answers
        return answers[0]

    async def send(
        self, person: Person, room_id: uuid.UUID, body: str = "hello", *, client_msg_id: str | None = None, **extra: Any
    ) -> Envelope:
        return await self.command(
            cmd.SendMessage(
                room_id=room_id,
                sender_id=person.id,
                client_msg_id=client_msg_id or uuid.uuid4().hex,
                body=body,
                request_id=uuid.uuid4().hex,
                **extra,
            )
        )

    async def history(self, person: Person, room_id: uuid.UUID, **params: Any) -> httpx.Response:
        return await self.http.get(f"/api/messages/rooms/{room_id}/messages", params=params, headers=person.headers)


@asynccontextmanager
async def serve(module: MessagesModule, mint: TokenMint) -> AsyncIterator[MessagesHarness]:
    publisher = module.context.publisher
    clock = module.context.clock
    if not isinstance(publisher, RecordingPublisher) or not isinstance(clock, FakeClock):
        raise TypeError("build the context with a RecordingPublisher and a FakeClock")
    app = build_app([module], bus=InProcessBus(InProcessBroker()), registry=CollectorRegistry())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://messages.test") as http:
            yield MessagesHarness(http=http, module=module, publisher=publisher, clock=clock, mint=mint)
