"""A load generator of real Socket.IO connections: python-socketio ``AsyncClient`` over websocket, spread over
worker processes (each with its own event loop), each connection bound to one of several 127.0.0.x source
addresses so that many connections and repeated runs do not run out of ephemeral ports.

Every connection authenticates (the gateway: an access token in the ``auth`` payload; the baseline: none),
subscribes to its room (``room:subscribe``; the baseline's ``join``) and then counts the ``message:new`` events it
receives; while recording, it also keeps each one's latency: receive time minus the send time in the body (the
same machine, so the same clock).

    lg = LoadGen.start(url, seats, workers=2, protocol="gateway", cpu=1, sources=["127.0.0.2"])
    lg.connect(); lg.record(True); ...; deliveries, latencies = lg.record(False); lg.close()

The pipeline benchmark also sends through it: ``lg.send(rate, seconds)`` has every worker emit ``message:send``
from its own connections in turn, at its share of the rate on an absolute schedule, and waits for the acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, Literal

import aiohttp
import socketio

from bench.serving import Seat, pin_to, raise_fd_limit, sent_at, stamped_body

ServerKind = Literal["gateway", "baseline"]


@dataclass(frozen=True)
class WorkerPlan:
    url: str
    seats: Sequence[Seat]
    sources: Sequence[str]
    protocol: ServerKind
    cpu: int | None
    concurrency: int = 50
    """Connections opened at once by one worker."""


@dataclass
class Recorder:
    deliveries: int = 0
    recording: bool = False
    latencies: array[float] = field(default_factory=lambda: array("d"))
    upstream: array[float] = field(default_factory=lambda: array("d"))
    """Per delivery, the part of its latency before the message was stored: its ``created_at`` (the messages
    service's clock, the same machine's) minus the send time."""

    def on_message(self, data: dict[str, Any]) -> None:
        self.deliveries += 1
        if self.recording:
            sent = sent_at(data["body"])
            self.latencies.append(time.time() - sent)
            self.upstream.append(datetime.fromisoformat(data["created_at"]).timestamp() - sent)


def _worker(control: Connection, plan: WorkerPlan) -> None:
    pin_to(plan.cpu)
    raise_fd_limit()
    asyncio.run(_work(control, plan))


async def _work(control: Connection, plan: WorkerPlan) -> None:
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    # One HTTP session per source address, shared by the connections bound to it (a session per socket would
    # cost the load generator memory and the measurement nothing).
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0), limit=0))
        for source in plan.sources
    ]
    clients: list[socketio.AsyncClient] = []
    seated: list[tuple[socketio.AsyncClient, Seat]] = []
    try:
        while True:
            request: dict[str, Any] = await loop.run_in_executor(None, control.recv)
            op = request["op"]
            if op == "connect":
                control.send(await _connect(plan, sessions, recorder, clients, seated))
            elif op == "send":
                control.send(await _send(seated, float(request["rate"]), float(request["seconds"])))
            elif op == "count":
                control.send({"deliveries": recorder.deliveries, "connected": sum(c.connected for c in clients)})
            elif op == "record":
                if request["on"]:
                    recorder.latencies = array("d")
                    recorder.upstream = array("d")
                    recorder.recording = True
                    control.send({"deliveries": recorder.deliveries})
                else:
                    recorder.recording = False
                    control.send(
                        {
                            "deliveries": recorder.deliveries,
                            "latencies": recorder.latencies.tobytes(),
                            "upstream": recorder.upstream.tobytes(),
                        }
                    )
            elif op == "close":
                await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
                control.send({"closed": len(clients)})
                break
    finally:
        for session in sessions:
            await session.close()


async def _connect(
    plan: WorkerPlan,
    sessions: list[aiohttp.ClientSession],
    recorder: Recorder,
    clients: list[socketio.AsyncClient],
    seated: list[tuple[socketio.AsyncClient, Seat]],
) -> dict[str, Any]:
    gate = asyncio.Semaphore(plan.concurrency)
    errors: list[str] = []
    started = time.perf_counter()

    async def open_one(index: int, seat: Seat) -> None:
        async with gate:
            client = socketio.AsyncClient(
                reconnection=False, http_session=sessions[index % len(sessions)], handle_sigint=False
            )
            client.on("message:new", recorder.on_message)
            try:
                if plan.protocol == "gateway":
                    await client.connect(
                        seat.url or plan.url, auth={"token": seat.token}, transports=["websocket"], wait_timeout=60
                    )
                    ack = await client.call("room:subscribe", {"room_id": seat.room}, timeout=60)
                else:
                    await client.connect(plan.url, transports=["websocket"], wait_timeout=60)
                    ack = await client.call("join", {"room": seat.room}, timeout=60)
                if not (isinstance(ack, dict) and ack.get("ok")):
                    raise RuntimeError(f"subscribe refused: {ack}")
                clients.append(client)
                seated.append((client, seat))
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(Exception):
                    await client.disconnect()

    await asyncio.gather(*(open_one(i, seat) for i, seat in enumerate(plan.seats)))
    return {
        "connected": len(clients),
        "failed": len(errors),
        "errors": errors[:5],
        "seconds": time.perf_counter() - started,
    }


async def _send(seated: list[tuple[socketio.AsyncClient, Seat]], rate: float, seconds: float) -> dict[str, Any]:
    """``message:send`` at ``rate`` per second for ``seconds`` from this worker's connections in turn, each with
    a fresh client_msg_id and the send time in the body; waits for every ack (at most 60 s after the last send)
    and returns the ack latencies and the refusals by code."""
    count = max(1, round(rate * seconds))
    acks = array("d")
    refused: Counter[str] = Counter()
    pending: set[asyncio.Task[None]] = set()

    async def one(client: socketio.AsyncClient, seat: Seat) -> None:
        sent = time.time()
        request = {"room_id": seat.room, "client_msg_id": uuid.uuid4().hex, "body": stamped_body(sent)}
        try:
            answer = await client.call("message:send", request, timeout=60)
        except Exception as exc:
            refused[type(exc).__name__] += 1
            return
        if not isinstance(answer, dict):
            refused["malformed"] += 1
        elif answer.get("ok"):
            acks.append(time.time() - sent)
        else:
            refused[str(answer.get("error", {}).get("code", "malformed"))] += 1

    started = time.perf_counter()
    for index in range(count):
        wait = started + index / rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        client, seat = seated[index % len(seated)]
        task = asyncio.create_task(one(client, seat))
        pending.add(task)
        task.add_done_callback(pending.discard)
    sending = time.perf_counter() - started
    if pending:
        await asyncio.wait(list(pending), timeout=60)
    return {"sent": count, "seconds": sending, "acks": acks.tobytes(), "refused": dict(refused)}


class LoadGen:
    """Worker processes holding the connections; every call goes to all of them at once."""

    def __init__(self, workers: list[tuple[multiprocessing.process.BaseProcess, Connection]]) -> None:
        self.workers = workers
        self.upstream: list[float] = []
        """After ``record(False)``: the stored-at minus sent-at part of each recorded delivery's latency."""

    @classmethod
    def start(
        cls,
        url: str,
        seats: Sequence[Seat],
        *,
        workers: int,
        protocol: ServerKind,
        cpu: int | None,
        sources: Sequence[str],
    ) -> LoadGen:
        """Seats are dealt round-robin to the workers, and each worker's connections to its source addresses."""
        context = multiprocessing.get_context("spawn")
        started: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
        for w in range(workers):
            mine = list(sources[w::workers]) or [sources[w % len(sources)]]
            plan = WorkerPlan(url=url, seats=list(seats[w::workers]), sources=mine, protocol=protocol, cpu=cpu)
            ours, theirs = context.Pipe()
            process = context.Process(target=_worker, args=(theirs, plan), daemon=True)
            process.start()
            started.append((process, ours))
        return cls(started)

    def pin(self, cpu: int | None) -> None:
        """Move every worker to one core (they may start on all of them, to open connections faster)."""
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            for pid in self.pids():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(pid, {cpu})

    def pids(self) -> list[int]:
        return [process.pid for process, _ in self.workers if process.pid is not None]

    def _all(self, request: dict[str, Any], timeout: float = 600) -> list[dict[str, Any]]:
        for _, control in self.workers:
            control.send(request)
        answers = []
        for process, control in self.workers:
            if not control.poll(timeout):
                raise TimeoutError(f"load generator worker {process.pid} did not answer {request['op']}")
            answers.append(control.recv())
        return answers

    def connect(self) -> dict[str, Any]:
        answers = self._all({"op": "connect"})
        return {
            "connected": sum(a["connected"] for a in answers),
            "failed": sum(a["failed"] for a in answers),
            "errors": [e for a in answers for e in a["errors"]][:5],
            "seconds": max(a["seconds"] for a in answers),
        }

    def deliveries(self) -> int:
        return sum(a["deliveries"] for a in self._all({"op": "count"}))

    def drain(self, target: int, *, quiet: float = 1.0, limit: float = 30.0) -> None:
        """Wait until ``target`` deliveries in all arrived, or none arrived for ``quiet`` seconds."""
        deadline = time.monotonic() + limit
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = self.deliveries()
            if now >= target:
                return
            if now != seen:
                seen, since = now, time.monotonic()
            elif time.monotonic() - since > quiet:
                return
            time.sleep(0.05)

    def connected(self) -> int:
        return sum(a["connected"] for a in self._all({"op": "count"}))

    def record(self, on: bool) -> tuple[int, list[float]]:
        """Start (on) or stop recording latencies; returns the deliveries so far and, on stopping, the latencies
        in seconds recorded since the start."""
        answers = self._all({"op": "record", "on": on})
        latencies: list[float] = []
        upstream: list[float] = []
        for answer in answers:
            if "latencies" in answer:
                recorded = array("d")
                recorded.frombytes(answer["latencies"])
                latencies.extend(recorded)
                before = array("d")
                before.frombytes(answer["upstream"])
                upstream.extend(before)
        if not on:
            self.upstream = upstream
        return sum(a["deliveries"] for a in answers), latencies

    def send(self, rate: float, seconds: float) -> dict[str, Any]:
        """Every worker sends its share of ``rate`` messages per second for ``seconds``; returns what was sent,
        the ack latencies (seconds) and the refusals by code."""
        answers = self._all({"op": "send", "rate": rate / len(self.workers), "seconds": seconds})
        acks: list[float] = []
        refused: Counter[str] = Counter()
        for answer in answers:
            recorded = array("d")
            recorded.frombytes(answer["acks"])
            acks.extend(recorded)
            refused.update(answer["refused"])
        return {
            "sent": sum(a["sent"] for a in answers),
            "seconds": max(a["seconds"] for a in answers),
            "acks": acks,
            "refused": dict(refused),
        }

    def close(self) -> None:
        """Disconnect every client and end the workers (again: nothing to do)."""
        if not self.workers:
            return
        with contextlib.suppress(OSError, EOFError, TimeoutError):
            self._all({"op": "close"}, timeout=300)
        for process, _ in self.workers:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
        self.workers = []
