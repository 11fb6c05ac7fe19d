"""The gateway under test: the real gateway module on uvicorn, on the in-process bus, with a test token mint and
in-memory history and rooms answers (as services/gateway/tests/harness.py composes it), in a process of its own.

``setup`` mints one access token per user and publishes their joins on ``chat.rooms.events``; ``inject_one``
publishes a ``message.created`` on ``chat.messages.events`` as the messages service would, with the send time in
the body. The gateway consumes it, validates it and fans it out exactly as in production.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bench.serving import Seat, stamped_body
from chat_contracts import messages_events as mev
from chat_contracts import rooms as rev
from chat_contracts.envelope import Envelope, encode
from chat_contracts.topics import MESSAGES_EVENTS, ROOMS_EVENTS
from chat_gateway.bootstrap import GatewayModule, bootstrap
from chat_gateway.service.ports import Membership
from chat_gateway.settings import GatewaySettings
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.logging import configure_logging
from chat_runtime.settings import load_settings
from chat_runtime.testing.tokens import TokenMint

ISSUER = "http://gateway.bench/api/auth"
AUDIENCE = "chat"


class MemoryHistory:
    """Nothing to recover: subscriptions come without ``last_seq`` and only ask for the current seq."""

    def __init__(self) -> None:
        self.seqs: dict[uuid.UUID, int] = {}

    async def after(self, room_id: uuid.UUID, after_seq: int, limit: int, *, token: str) -> list[dict[str, Any]]:
        return []

    async def last_seq(self, room_id: uuid.UUID, *, token: str) -> int:
        return self.seqs.get(room_id, 0)

    async def aclose(self) -> None:
        return None


class NoRooms:
    """Memberships arrive on the rooms topic before anyone connects, so the rooms service is never asked."""

    async def membership(self, room_id: uuid.UUID, *, token: str) -> Membership | None:
        return None

    async def rooms_of(self, *, token: str) -> dict[uuid.UUID, Membership]:
        return {}

    async def aclose(self) -> None:
        return None


class GatewayTarget:
    def __init__(self) -> None:
        configure_logging(level="warning", fmt="json")
        self.data_dir = Path(tempfile.mkdtemp(prefix="chat-bench-gateway-"))
        self.broker = InProcessBroker()
        self.bus = InProcessBus(self.broker)
        self.mint = TokenMint(issuer=ISSUER, audience=AUDIENCE, clock=lambda: datetime.now(UTC))
        self.history = MemoryHistory()
        settings = load_settings(
            GatewaySettings,
            data_dir=self.data_dir,
            instance_id="bench",
            auth_issuer=ISSUER,
            auth_audience=AUDIENCE,
            web_dir=self.data_dir / "no-web",
        )
        self.module: GatewayModule = bootstrap(
            settings, bus=self.bus, jwks=self.mint.jwks, history=self.history, rooms=NoRooms()
        )
        self.app = self.module.wrap(build_app([self.module], bus=self.bus, registry=CollectorRegistry()))
        self.rooms: list[tuple[uuid.UUID, uuid.UUID]] = []
        """(room, a member who is the sender of injected messages)"""
        self.version = itertools.count(1)

    async def setup(self, users: int, room_size: int) -> list[Seat]:
        seats: list[Seat] = []
        publisher = InProcessBus(self.broker)
        ttl = timedelta(hours=2)
        last: tuple[uuid.UUID, uuid.UUID] | None = None
        for first in range(0, users, room_size):
            room = uuid.uuid4()
            members = [uuid.uuid4() for _ in range(min(room_size, users - first))]
            self.rooms.append((room, members[0]))
            for user in members:
                joined = rev.MemberJoined(
                    room_id=room,
                    room_version=next(self.version),
                    user_id=user,
                    role="member",
                    occurred_at=datetime.now(UTC),
                )
                await publisher.publish(ROOMS_EVENTS, joined, source="rooms")
                seats.append(Seat(token=self.mint.access_token(user, f"u{user.hex[:8]}", ttl=ttl), room=str(room)))
                last = (room, user)
        memberships = self.module.hub.memberships
        for _ in range(2400):  # the gateway consumes the joins on its own task; at most 2 minutes
            if last is None or memberships.role(*last) is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise TimeoutError("the gateway did not take in the joins")
        gc.collect()
        return seats

    async def inject_one(self, index: int) -> float:
        started = time.process_time()
        room, sender = self.rooms[index % len(self.rooms)]
        seq = self.history.seqs.get(room, 0) + 1
        self.history.seqs[room] = seq
        now = datetime.now(UTC)
        created = mev.MessageCreated(
            message_id=uuid.uuid4(),
            room_id=room,
            seq=seq,
            sender_id=sender,
            client_msg_id=f"bench-{index}",
            body=stamped_body(time.time()),
            created_at=now,
        )
        record = encode(Envelope.wrap(created, source="messages", key=str(room)), topic=MESSAGES_EVENTS.name)
        spent = time.process_time() - started
        await self.bus.publish_record(record)
        return spent

    async def stop(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
