"""The messages service as a real OS process on the Kafka bus, which the crash and failover tests kill, and the
room events those tests (and the two-instance test) publish before commands flow."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from chat_contracts import rooms as rooms_ev
from chat_contracts.topics import ROOMS_EVENTS
from chat_runtime.bus.port import Bus

from .product import free_port


class ServiceProcess:
    """``python -m chat_app serve --target messages`` as a real OS process on the Kafka bus."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.spawned_at = datetime.now(UTC)
        """When the latest process was started (wall clock, to compare with the answers' ``occurred_at``)."""
        self.ready_after = 0.0
        """Seconds from the latest start to its first 200 from /readyz."""
        self.listening_after = 0.0
        """Seconds from the latest start to its "listening on" line: interpreter, imports and bootstrap."""

    async def start(self) -> None:
        self.spawned_at = datetime.now(UTC)
        self.listening_after = 0.0
        logged = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - a fork; readiness is then awaited over HTTP
                [sys.executable, "-m", "chat_app", "serve", "--target", "messages", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"the service exited: {self.log.read_text()[-2000:]}")
                if not self.listening_after and b"listening on" in self.log.read_bytes()[logged:]:
                    self.listening_after = (datetime.now(UTC) - self.spawned_at).total_seconds()
                try:
                    if (await http.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)).status_code == 200:
                        self.ready_after = (datetime.now(UTC) - self.spawned_at).total_seconds()
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"the service never became ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


async def publish_room(bus: Bus, room: uuid.UUID, members: Sequence[uuid.UUID]) -> int:
    """A public room created by the first of ``members`` and joined by each of them, as the rooms service
    publishes it; returns the room's version after the last join (what the gateway sends with a command)."""
    await bus.publish(
        ROOMS_EVENTS,
        rooms_ev.RoomCreated(
            room_id=room, room_version=1, kind="public", name="r", created_by=members[0], occurred_at=datetime.now(UTC)
        ),
        source="rooms",
    )
    for version, member in enumerate(members, start=2):
        await bus.publish(
            ROOMS_EVENTS,
            rooms_ev.MemberJoined(
                room_id=room, room_version=version, user_id=member, role="member", occurred_at=datetime.now(UTC)
            ),
            source="rooms",
        )
    return len(members) + 1
