"""Flame graphs from py-spy's collapsed stacks (``py-spy record --format raw``), and what they add up to.

py-spy on this machine cannot tell an idle thread from a busy one, so a raw profile of a server is mostly worker
threads waiting on their queues (starlette's and asyncio's thread pools). ``main_thread`` keeps the event loop's
stacks only, which is where a server of this project spends its CPU.

    uv run python -m bench.flame profile.txt [out.svg] [title]   # prints self time by function and by area
"""

from __future__ import annotations

import html
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MAIN_THREAD_MARKERS = ("run_forever", "_run_module_as_main", "<module>")
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("chat gateway", ("chat_gateway",)),
    ("chat messages", ("chat_messages",)),
    ("chat auth + rooms", ("chat_auth", "chat_rooms")),
    ("chat runtime + contracts", ("chat_runtime", "chat_contracts")),
    ("pydantic", ("pydantic",)),
    ("python-socketio", ("socketio/",)),
    ("python-engineio", ("engineio/",)),
    ("uvicorn", ("uvicorn/",)),
    ("websocket framing", ("wsproto/", "websockets/")),
    ("pymongo + bson", ("pymongo/", "bson/")),
    ("aiokafka", ("aiokafka/", "kafka/")),
    ("sqlalchemy + psycopg", ("sqlalchemy/", "psycopg/")),
    ("structlog + logging", ("structlog/", "logging/")),
    ("asyncio", ("asyncio/", "uvloop", "selectors.py")),
    ("json", ("json/", "orjson")),
)


@dataclass
class Node:
    name: str
    count: int = 0
    children: dict[str, Node] = field(default_factory=dict)


def parse(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    stacks = []
    for line in lines:
        line = line.rstrip("\n")
        if not line or " " not in line:
            continue
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def main_thread(stacks: list[tuple[list[str], int]]) -> list[tuple[list[str], int]]:
    """The stacks of the thread that runs the event loop (or the main module)."""
    return [(frames, n) for frames, n in stacks if any(m in f for f in frames[:12] for m in MAIN_THREAD_MARKERS)]


WAITING: tuple[str, ...] = ("Condition.wait", "Event.wait", "_readable", "_recv_exactly", "select", "accept")
"""Leaf frames of a thread that is waiting, not working (a threaded server's idle workers and pollers)."""


def busy_threads(stacks: list[tuple[list[str], int]]) -> list[tuple[list[str], int]]:
    """Every thread's stacks except those waiting: for a threaded server such as the Mongo-wire one, whose main
    thread only waits and whose work happens in one thread per client connection."""
    return [(frames, n) for frames, n in stacks if not any(w in frames[-1].split(" (")[0] for w in WAITING)]


def self_time(stacks: list[tuple[list[str], int]]) -> Counter[str]:
    found: Counter[str] = Counter()
    for frames, n in stacks:
        found[frames[-1]] += n
    return found


def area_of(frame: str) -> str:
    for name, marks in AREAS:
        if any(mark in frame for mark in marks):
            return name
    return "other"


def by_area(stacks: list[tuple[list[str], int]]) -> Counter[str]:
    found: Counter[str] = Counter()
    for frames, n in stacks:
        found[area_of(frames[-1])] += n
    return found


def summary(stacks: list[tuple[list[str], int]], top: int = 30) -> str:
    total = sum(n for _, n in stacks) or 1
    lines = [f"{total} samples (the threads shown)", "", "self time by function:"]
    for frame, n in self_time(stacks).most_common(top):
        lines.append(f"  {n / total * 100:5.1f}%  {frame[:140]}")
    lines += ["", "self time by area:"]
    for name, n in by_area(stacks).most_common():
        lines.append(f"  {n / total * 100:5.1f}%  {name}")
    return "\n".join(lines)


def _tree(stacks: list[tuple[list[str], int]]) -> Node:
    root = Node("all")
    for frames, n in stacks:
        root.count += n
        node = root
        for frame in frames:
            node = node.children.setdefault(frame, Node(frame))
            node.count += n
    return root


def _color(name: str) -> str:
    digest = sum(ord(c) for c in name)
    hue = {"chat": 30, "pymongo": 120, "asyncio": 200, "pydantic": 280}.get(
        next((k for k in ("chat", "pymongo", "asyncio", "pydantic") if k in name), ""), 10
    )
    return f"hsl({(hue + digest % 30) % 360},70%,{60 + digest % 15}%)"


def svg(stacks: list[tuple[list[str], int]], title: str, width: int = 1400, row: int = 16) -> str:
    """An icicle flame graph (root at the top), each frame's width its share of the samples."""
    root = _tree(stacks)
    total = root.count or 1
    rects: list[str] = []
    depth_max = 0

    def place(node: Node, x: float, depth: int) -> None:
        nonlocal depth_max
        depth_max = max(depth_max, depth)
        w = node.count / total * width
        if w < 0.3:
            return
        label = html.escape(node.name)
        share = node.count / total * 100
        y = 30 + depth * row
        text = html.escape(re.sub(r" \(.*", "", node.name))[: max(0, int(w / 7))]
        rects.append(
            f"<g><title>{label} ({node.count} samples, {share:.2f}%)</title>"
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{row - 1}" fill="{_color(node.name)}"/>'
            f'<text x="{x + 2:.2f}" y="{y + row - 4}" font-size="11">{text}</text></g>'
        )
        offset = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            place(child, offset, depth + 1)
            offset += child.count / total * width

    place(root, 0.0, 0)
    height = 40 + (depth_max + 1) * row
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace">'
        f'<text x="4" y="18" font-size="14">{html.escape(title)}</text>' + "".join(rects) + "</svg>\n"
    )


def main(argv: list[str]) -> None:
    source = Path(argv[0])
    stacks = main_thread(parse(source.read_text().splitlines()))
    print(summary(stacks))
    if len(argv) > 1:
        Path(argv[1]).write_text(svg(stacks, argv[2] if len(argv) > 2 else source.stem))


if __name__ == "__main__":
    main(sys.argv[1:])
