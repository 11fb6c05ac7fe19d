"""CPU seconds of processes (and their descendants) and of the whole machine, read from /proc; the wait until they
are quiet before a measurement."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from bench.serving import cpu_seconds, stat_cpu_seconds


def children_of() -> dict[int, list[int]]:
    """Parent pid → child pids, for every process of the machine."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def tree_cpu(pid: int, tree: dict[int, list[int]]) -> float:
    """CPU seconds of a process and every descendant still running (PostgreSQL's backends, for one)."""
    total = 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            total += cpu_seconds(current)
        except (OSError, IndexError, ValueError):
            continue
        stack.extend(tree.get(current, []))
    return total


def compiler_cpu(pid: int, proc: Path = Path("/proc")) -> float:
    """CPU seconds of a JVM's JIT compiler threads (``C1 CompilerThre…``, ``C2 CompilerThre…``) still running."""
    total = 0.0
    for task in (proc / str(pid) / "task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        if "CompilerThre" in stat[stat.index("(") + 1 : stat.rindex(")")]:
            total += stat_cpu_seconds(stat)
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


QUIET_SHARE = 0.05
"""Share of a core under which a process counts as quiet, unless its resting share raises its floor."""
REST_MARGIN = 1.5
REST_SLACK = 0.01
"""A floor raised by a resting share: half as much again plus 1 % of a core, room for the second-to-second
spread of a server at rest."""


def quiet_under(share: float, resting: float) -> float:
    """The share of a core under which a process counts as quiet: ``share``, or, for a process that was already
    busier than that at rest (a shared Kafka broker with other work's topics), a margin over its resting share."""
    return max(share, resting * REST_MARGIN + REST_SLACK)


def raised_floors(resting: Mapping[str, float], share: float = QUIET_SHARE) -> dict[str, float]:
    """The processes whose resting share raises their floor above ``share``, with the floor."""
    return {name: quiet_under(share, rest) for name, rest in resting.items() if quiet_under(share, rest) > share}


def shares(before: Mapping[str, float], after: Mapping[str, float], seconds: float) -> dict[str, float]:
    """Share of a core each process used between two reads ``seconds`` apart."""
    return {name: used / seconds for name, used in spent(before, after).items()}


Read = Callable[[], Mapping[str, float]]
Sleep = Callable[[float], Awaitable[None]]


async def settle(
    read: Read,
    *,
    resting: Mapping[str, float] | None = None,
    share: float = QUIET_SHARE,
    calm: int = 3,
    limit: float = 600.0,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Wait until every process of ``read`` is quiet (``quiet_under`` its resting share, if given) ``calm``
    seconds in a row, or ``limit`` seconds passed; returns the wait."""
    floors = {name: quiet_under(share, rest) for name, rest in (resting or {}).items()}
    began = then = clock()
    quiet = 0
    before = read()
    while quiet < calm and clock() - began < limit:
        await sleep(1.0)
        after, now = read(), clock()
        used = shares(before, after, max(now - then, 1e-3))
        quiet = quiet + 1 if all(s < floors.get(name, share) for name, s in used.items()) else 0
        before, then = after, now
    return round(clock() - began, 1)


async def at_rest(
    read: Read, seconds: int, *, sleep: Sleep = asyncio.sleep, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """Share of a core each process of ``read`` uses at rest: the median of ``seconds`` one-second samples, so a
    broker's periodic housekeeping (a second at 20 % every half minute) does not raise it."""
    samples: dict[str, list[float]] = {}
    before, then = read(), clock()
    for _ in range(seconds):
        await sleep(1.0)
        after, now = read(), clock()
        for name, share in shares(before, after, max(now - then, 1e-3)).items():
            samples.setdefault(name, []).append(share)
        before, then = after, now
    return {name: statistics.median(values) for name, values in samples.items()}


class Meter:
    """CPU seconds of named process trees, read together; ``_busy``/``_total`` are the machine's jiffies.

    ``resting`` is the share of a core each server the bench shares with other work uses while the deployment
    is up and idle: ``settle`` takes it as that server's floor, the figures still count all its CPU."""

    def __init__(self, pids: Callable[[], Mapping[str, int]], *, resting: Mapping[str, float] | None = None) -> None:
        self._pids = pids
        self.resting = dict(resting or {})

    def read(self) -> dict[str, float]:
        tree = children_of()
        found = {name: tree_cpu(pid, tree) for name, pid in self._pids().items() if pid}
        busy, total = machine_busy()
        found["_busy"], found["_total"] = busy, total
        return found

    async def settle(self, *, share: float = QUIET_SHARE, calm: int = 3, limit: float = 600.0) -> float:
        """Wait until every process is quiet ``calm`` seconds in a row (see ``settle``); returns the wait."""
        return await settle(self.read, resting=self.resting, share=share, calm=calm, limit=limit)


def spent(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds each process spent between two reads."""
    return {name: after[name] - before.get(name, 0.0) for name in after if not name.startswith("_")}


def machine_share(before: Mapping[str, float], after: Mapping[str, float]) -> float:
    """Percent of the machine's cores that were busy between two reads."""
    return round((after["_busy"] - before["_busy"]) / max(1.0, after["_total"] - before["_total"]) * 100, 1)
