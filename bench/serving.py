"""A server under test in its own process, driven over a pipe: the part the gateway and the baseline share.

The orchestrator starts the server with ``ServerProcess.start`` and asks it, one request at a time, to prepare
users and rooms (``setup``), to inject room events at a fixed rate (``inject``) and to profile itself. The server
side (``serve``) runs uvicorn on loopback and answers those requests on its own event loop, so everything it does
for a request shows in its own CPU time (read from ``/proc/<pid>/stat`` by the orchestrator).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import multiprocessing
import os
import pstats
import socket
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import uvicorn

from chat_runtime.serving import server_config

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAD = "x" * 96
"""A message body of about 120 characters: the send timestamp, then padding."""


def pin_to(cpu: int | None) -> None:
    """Keep this process on one core when asked (and when the machine lets it)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})


def raise_fd_limit() -> None:
    """Every connection is a file descriptor: take the hard limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stamped_body(now: float) -> str:
    """The message body the load generator reads the send time from."""
    return f"{now:.6f} {PAD}"


def sent_at(body: str) -> float:
    return float(body.split(" ", 1)[0])


@dataclass(frozen=True)
class Seat:
    """One connection to open: its access token (None for the baseline), the room it subscribes to, and the
    server it connects to when not the load generator's own URL (the pipeline spreads seats over two gateways)."""

    token: str | None
    room: str
    url: str | None = None


class Target(Protocol):
    """What a server under test does besides serving Socket.IO."""

    app: Any

    async def setup(self, users: int, room_size: int) -> list[Seat]: ...

    async def inject_one(self, index: int) -> float:
        """Publish one room event (rooms in turn); return the CPU seconds spent making it, which are the
        producer's, not the server's."""
        ...

    async def stop(self) -> None: ...


# --- inside the server process ---------------------------------------------------------------------------------


def serve(control: Connection, make: Callable[[], Target], cpu: int | None) -> None:
    """Entry point of a server process."""
    pin_to(cpu)
    raise_fd_limit()
    asyncio.run(_serve(control, make))


async def _serve(control: Connection, make: Callable[[], Target]) -> None:
    target = make()
    port = free_port()
    config = server_config(target.app, host="127.0.0.1", port=port, backlog=4096)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.02)
    control.send({"url": f"http://127.0.0.1:{port}", "pid": os.getpid()})
    profiler: cProfile.Profile | None = None
    loop = asyncio.get_running_loop()
    handlers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {}

    async def setup(request: dict[str, Any]) -> Any:
        return await target.setup(int(request["users"]), int(request["room_size"]))

    async def inject(request: dict[str, Any]) -> Any:
        return await _inject(target, float(request["rate"]), float(request["seconds"]))

    async def profile_start(_request: dict[str, Any]) -> Any:
        nonlocal profiler
        profiler = cProfile.Profile(time.process_time)  # CPU time: other processes on the core do not count
        profiler.enable()
        return None

    async def profile_stop(request: dict[str, Any]) -> Any:
        nonlocal profiler
        if profiler is None:
            return ""
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        areas = cost_by_area(stats)  # before strip_dirs, which drops the paths the areas are told by
        if request.get("dump"):
            stats.dump_stats(str(Path(request["dump"])))
        stats.strip_dirs().sort_stats("tottime").print_stats(int(request.get("top", 30)))
        stats.sort_stats("cumulative").print_stats(int(request.get("top", 30)))
        profiler = None
        return {"text": out.getvalue(), "areas": areas}

    baseline: list[tracemalloc.Snapshot] = []

    async def trace_start(_request: dict[str, Any]) -> Any:
        tracemalloc.start(int(_request.get("frames", 1)))
        baseline[:] = [tracemalloc.take_snapshot()]
        return None

    async def trace_stop(request: dict[str, Any]) -> Any:
        """Python allocations still live since ``trace_start``, grouped by file and by line."""
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib*")]
        after, before = after.filter_traces(ignore), baseline[0].filter_traces(ignore)
        top = int(request.get("top", 15))
        by_file = after.compare_to(before, "filename")
        by_line = after.compare_to(before, "lineno")
        return {
            "total_bytes": sum(d.size_diff for d in by_file),
            "blocks": sum(d.count_diff for d in by_file),
            "by_file": [(str(d.traceback[0].filename), d.size_diff, d.count_diff) for d in by_file[:top]],
            "by_line": [
                (f"{d.traceback[0].filename}:{d.traceback[0].lineno}", d.size_diff, d.count_diff) for d in by_line[:top]
            ],
        }

    handlers.update(
        setup=setup,
        inject=inject,
        profile_start=profile_start,
        profile_stop=profile_stop,
        trace_start=trace_start,
        trace_stop=trace_stop,
    )
    try:
        while True:
            request: dict[str, Any] = await loop.run_in_executor(None, control.recv)
            if request["op"] == "stop":
                break
            try:
                control.send({"ok": True, "result": await handlers[request["op"]](request)})
            except Exception as exc:
                control.send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        server.should_exit = True
        await serving
        await target.stop()
        control.send({"ok": True, "result": None})


async def _inject(target: Target, rate: float, seconds: float) -> dict[str, float]:
    """Room events at ``rate`` per second for ``seconds``, on an absolute schedule (a late tick is caught up,
    not dropped), so the offered load does not sag when the server is busy."""
    count = max(1, round(rate * seconds))
    producer_cpu = 0.0
    started = time.perf_counter()
    for index in range(count):
        due = started + index / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        producer_cpu += await target.inject_one(index)
    return {"sent": count, "seconds": time.perf_counter() - started, "producer_cpu": producer_cpu}


AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gateway (chat_gateway)", ("chat_gateway",)),
    ("bus, contracts, runtime", ("chat_runtime", "chat_contracts")),
    ("pydantic", ("pydantic",)),
    ("python-socketio", ("/socketio/",)),
    ("python-engineio", ("/engineio/",)),
    ("uvicorn + wsproto (websocket frames)", ("/uvicorn/", "/wsproto/", "/h11/")),
    ("asyncio (tasks, queues, callbacks)", ("/asyncio/",)),
    ("json", ("/json/",)),
)


def cost_by_area(stats: pstats.Stats) -> dict[str, float]:
    """Own time (tottime) summed by where the code lives; waiting in epoll is idle time, listed apart."""
    totals: dict[str, float] = {}
    entries: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, own, *_rest) in entries.items():
        if "select.epoll" in function:
            area = "idle: waiting in epoll"
        elif "_socket.socket" in function or "socket' objects" in function:
            area = "socket send/recv system calls"
        elif filename == "~":
            area = "other built-ins (C)"
        else:
            area = next((name for name, marks in AREAS if any(m in filename for m in marks)), "other Python")
        totals[area] = totals.get(area, 0.0) + own
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


# --- in the orchestrator ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A server process's CPU seconds (user + system) and resident memory at one moment."""

    cpu: float
    rss_kib: int
    at: float


class ServerProcess:
    """A server under test started in a process of its own (spawned, so it shares nothing with this one)."""

    def __init__(self, process: multiprocessing.process.BaseProcess, control: Connection, url: str, pid: int):
        self.process = process
        self.control = control
        self.url = url
        self.pid = pid

    @classmethod
    def start(cls, make: Callable[[], Target], *, cpu: int | None) -> ServerProcess:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=serve, args=(theirs, make, cpu), daemon=True)
        process.start()
        if not ours.poll(60):
            process.kill()
            raise RuntimeError("the server process did not start in 60 s")
        hello = ours.recv()
        return cls(process, ours, str(hello["url"]), int(hello["pid"]))

    def call(self, op: str, timeout: float = 600, **request: Any) -> Any:
        self.control.send({"op": op, **request})
        if not self.control.poll(timeout):
            raise TimeoutError(f"the server did not answer {op} in {timeout} s")
        answer = self.control.recv()
        if not answer["ok"]:
            raise RuntimeError(f"{op}: {answer['error']}")
        return answer["result"]

    def sample(self) -> Sample:
        return Sample(cpu=cpu_seconds(self.pid), rss_kib=rss_kib(self.pid), at=time.perf_counter())

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError, TimeoutError, RuntimeError):
            self.call("stop", timeout=30)
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def stat_cpu_seconds(stat: str) -> float:
    """utime + stime from the text of a /proc stat file (a process's, or one thread's under task/)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")
