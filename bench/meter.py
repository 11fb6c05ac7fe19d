"""CPU seconds of processes (and their descendants) and of the whole machine, read from /proc."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from bench.serving import cpu_seconds


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


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class Meter:
    """CPU seconds of named process trees, read together; ``_busy``/``_total`` are the machine's jiffies."""

    def __init__(self, pids: Callable[[], Mapping[str, int]]) -> None:
        self._pids = pids

    def read(self) -> dict[str, float]:
        tree = children_of()
        found = {name: tree_cpu(pid, tree) for name, pid in self._pids().items() if pid}
        busy, total = machine_busy()
        found["_busy"], found["_total"] = busy, total
        return found

    async def settle(self, *, share: float = 0.05, calm: int = 3, limit: float = 600.0) -> float:
        """Wait until every process uses under ``share`` of a core, ``calm`` seconds in a row; returns the wait."""
        began = time.perf_counter()
        quiet = 0
        before = self.read()
        while quiet < calm and time.perf_counter() - began < limit:
            await asyncio.sleep(1.0)
            after = self.read()
            busy = [after[n] - before.get(n, 0.0) for n in after if not n.startswith("_")]
            quiet = quiet + 1 if max(busy, default=0.0) < share else 0
            before = after
        return round(time.perf_counter() - began, 1)


def spent(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds each process spent between two reads."""
    return {name: after[name] - before.get(name, 0.0) for name in after if not name.startswith("_")}


def machine_share(before: Mapping[str, float], after: Mapping[str, float]) -> float:
    """Percent of the machine's cores that were busy between two reads."""
    return round((after["_busy"] - before["_busy"]) / max(1.0, after["_total"] - before["_total"]) * 100, 1)
