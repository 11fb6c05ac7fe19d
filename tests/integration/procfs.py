"""What a command started, read from Linux's /proc: its processes (those below it, and daemons that left its tree
but name its folder on their command line) and the TCP ports they listen on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_LISTEN = "0A"


@dataclass(frozen=True)
class Process:
    pid: int
    parent: int
    started: int
    """Clock ticks after boot (field 22 of stat): tells this process from a later one that reuses its pid."""
    command: str
    state: str


def processes() -> dict[int, Process]:
    """Every process visible now."""
    found: dict[int, Process] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (process := _read(int(entry.name))) is not None:
            found[process.pid] = process
    return found


def _read(pid: int) -> Process | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
        command = (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    # The name in parentheses may contain spaces; the fields after it start with the state (field 3).
    fields = stat.rsplit(")", 1)[1].split()
    return Process(pid=pid, parent=int(fields[1]), started=int(fields[19]), command=command, state=fields[0])


def started_by(root: int, *, marker: str) -> set[Process]:
    """``root`` and every process below it, plus those naming ``marker`` (a folder of its own) and theirs."""
    table = processes()
    tops = {root} | {p.pid for p in table.values() if marker in p.command}
    children: dict[int, list[int]] = {}
    for process in table.values():
        children.setdefault(process.parent, []).append(process.pid)
    found: set[Process] = set()
    pending = [pid for pid in tops if pid in table]
    while pending:
        pid = pending.pop()
        if table[pid] not in found:
            found.add(table[pid])
            pending.extend(children.get(pid, []))
    return found


def still_running(recorded: set[Process]) -> list[Process]:
    """Those of ``recorded`` that still run (the same process, not a zombie)."""
    left = []
    for process in recorded:
        now = _read(process.pid)
        if now is not None and now.started == process.started and now.state not in ("Z", "X"):
            left.append(now)
    return sorted(left, key=lambda p: p.pid)


def listening_ports(of: set[Process]) -> set[int]:
    """The TCP ports the given processes listen on."""
    inodes: set[str] = set()
    for process in of:
        fd_dir = _PROC / str(process.pid) / "fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(fd_dir / name)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return {port for port, inode in _listening() if inode in inodes}


def listening(ports: set[int]) -> set[int]:
    """Which of ``ports`` some process on this machine listens on."""
    return {port for port, _ in _listening()} & ports


def _listening() -> list[tuple[int, str]]:
    rows: list[tuple[int, str]] = []
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _LISTEN:
                rows.append((int(fields[1].rsplit(":", 1)[1], 16), fields[9]))
    return rows
