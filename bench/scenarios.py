"""Gateway benchmarks: memory per idle connection, and fan-out (deliveries per CPU-second of the gateway, latency
percentiles) against a plain python-socketio broadcast server. Prints tables, writes bench/results/*.json and
bench/results/latency.png.

    uv run python -m bench.scenarios [idle] [fanout]          # both when none is named

Sizes come from the environment (the defaults take about 8 minutes on 2 cores):

    BENCH_IDLE_SIZES=1000,5000      idle connections per run (each size a fresh server)
    BENCH_FANOUT_CONNECTIONS=1000   connections in the fan-out runs
    BENCH_ROOM_SIZES=20,200         members per room (the issue's figures: 20,1000; a 1,000-member room whose
                                    members all connect at once costs about 3 minutes of presence fan-out first)
    BENCH_LOADS=2000,5000,8000      offered deliveries per second (messages/s = load / room size)
    BENCH_SECONDS=4                 injection time per load step
    BENCH_WORKERS=2                 load generator processes
    BENCH_SETTLE=3                  seconds between the last idle connection and the memory reading
    BENCH_PROFILE=1                 one extra cProfile'd step per server and room size, and a tracemalloc'd
                                    idle run (neither is in the figures)
    BENCH_RESULTS=bench/results     where the JSON, profiles and the plot go
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.baseline_server import BaselineTarget
from bench.gateway_server import GatewayTarget
from bench.loadgen import LoadGen, ServerKind
from bench.serving import Seat, ServerProcess, Target, cpu_seconds

WARM_UP_CONNECTIONS = 50
"""Opened before the first memory reading, so one-off costs of the first sockets (lazy imports, buffers) are not
charged to the measured ones."""

TARGETS: dict[ServerKind, Callable[[], Target]] = {"gateway": GatewayTarget, "baseline": BaselineTarget}


def _ints(name: str, default: str) -> list[int]:
    return [int(x) for x in os.environ.get(name, default).split(",") if x.strip()]


@dataclass(frozen=True)
class Config:
    """The sizes of a run, read from the environment when it starts."""

    idle_sizes: list[int] = field(default_factory=lambda: _ints("BENCH_IDLE_SIZES", "1000,5000"))
    fanout_connections: int = field(default_factory=lambda: int(os.environ.get("BENCH_FANOUT_CONNECTIONS", "1000")))
    room_sizes: list[int] = field(default_factory=lambda: _ints("BENCH_ROOM_SIZES", "20,200"))
    loads: list[int] = field(default_factory=lambda: _ints("BENCH_LOADS", "2000,5000,8000"))
    seconds: float = field(default_factory=lambda: float(os.environ.get("BENCH_SECONDS", "4")))
    workers: int = field(default_factory=lambda: int(os.environ.get("BENCH_WORKERS", "2")))
    settle: float = field(default_factory=lambda: float(os.environ.get("BENCH_SETTLE", "3")))
    profile: bool = field(default_factory=lambda: os.environ.get("BENCH_PROFILE", "1") == "1")
    results: Path = field(default_factory=lambda: Path(os.environ.get("BENCH_RESULTS", "bench/results")))


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal:")))
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(total_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pinning() -> tuple[int | None, int | None]:
    """The server on core 0 and the load generator on core 1, when there are two cores to give."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return (cores[0], cores[1]) if len(cores) >= 2 else (None, None)


class Sources:
    """Fresh 127.0.x.y source addresses for each run: a bound source port stays taken for a minute after its
    socket closes (TIME_WAIT), so reusing one address across runs would exhaust its ports."""

    PER_ADDRESS = 5000

    def __init__(self) -> None:
        self.next = 256

    def take(self, connections: int, workers: int) -> list[str]:
        count = max(workers, math.ceil(connections / self.PER_ADDRESS))
        taken: list[str] = []
        while len(taken) < count:
            self.next += 1
            if 0 < self.next % 256 < 255:
                taken.append(f"127.0.{self.next // 256 % 256}.{self.next % 256}")
        return taken


@contextmanager
def running(kind: ServerKind, cpu: int | None) -> Iterator[ServerProcess]:
    server = ServerProcess.start(TARGETS[kind], cpu=cpu)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def connected(
    server: ServerProcess, seats: list[Seat], *, kind: ServerKind, workers: int, cpu: int | None, sources: Sources
) -> Iterator[tuple[LoadGen, dict[str, Any]]]:
    loadgen = LoadGen.start(
        server.url, seats, workers=workers, protocol=kind, cpu=cpu, sources=sources.take(len(seats), workers)
    )
    try:
        opened = loadgen.connect()
        if opened["failed"]:
            print(f"  {opened['failed']} of {len(seats)} connections failed, e.g. {opened['errors'][:2]}", flush=True)
        yield loadgen, opened
    finally:
        loadgen.close()


def quiesce(
    server: ServerProcess, loadgen: LoadGen, *, share: float = 0.05, window: float = 0.5, calm: int = 4
) -> dict[str, float]:
    """Wait until the server and every load generator process each use under ``share`` of a core: connecting
    users announce their presence to their rooms (a room of n members connecting at once is n² presence
    deliveries), and that wave must be over before anything is measured. ``calm`` quiet windows in a row count
    as over (a wave has lulls). Returns how long it took and the server CPU it cost."""
    pids = [server.pid, *loadgen.pids()]
    started = time.perf_counter()
    first = cpu_seconds(server.pid)
    deadline = started + 600
    quiet = 0
    while time.perf_counter() < deadline and quiet < calm:
        before = [cpu_seconds(pid) for pid in pids]
        time.sleep(window)
        after = [cpu_seconds(pid) for pid in pids]
        quiet = quiet + 1 if all(b - a < share * window for a, b in zip(before, after, strict=True)) else 0
    return {"seconds": round(time.perf_counter() - started, 2), "server_cpu": round(cpu_seconds(server.pid) - first, 2)}


# --- idle connections ------------------------------------------------------------------------------------------


def idle(config: Config, sources: Sources) -> list[dict[str, Any]]:
    server_cpu, client_cpu = pinning()
    rows = []
    for kind in ("gateway", "baseline"):
        for size in config.idle_sizes:
            with running(kind, server_cpu) as server:
                seats: list[Seat] = server.call("setup", users=WARM_UP_CONNECTIONS + size, room_size=20)
                with connected(
                    server, seats[:WARM_UP_CONNECTIONS], kind=kind, workers=1, cpu=client_cpu, sources=sources
                ) as (warm, _):
                    time.sleep(1)
                    quiesce(server, warm)
                    before = server.sample()
                    with connected(
                        server,
                        seats[WARM_UP_CONNECTIONS:],
                        kind=kind,
                        workers=config.workers,
                        cpu=client_cpu,
                        sources=sources,
                    ) as (loadgen, opened):
                        time.sleep(config.settle)
                        settled = quiesce(server, loadgen)
                        after = server.sample()
                        held = loadgen.connected()
                        row = {
                            "server": kind,
                            "connections": held,
                            "asked": size,
                            "rss_before_mib": round(before.rss_kib / 1024, 1),
                            "rss_after_mib": round(after.rss_kib / 1024, 1),
                            "bytes_per_connection": round((after.rss_kib - before.rss_kib) * 1024 / max(held, 1)),
                            "connect_seconds": round(opened["seconds"], 2),
                            "connects_per_second": round(held / opened["seconds"], 1),
                            "settle_seconds": settled["seconds"],
                            "load_average": load_average(),
                            "measured_at": _now(),
                        }
                        # All of them leave at once (a network blip, a deploy): how long until the server is
                        # quiet again, and what it costs it.
                        leaving = server.sample()
                        loadgen.close()
                        quiesce(server, loadgen)
                        row["disconnect_seconds"] = round(time.perf_counter() - leaving.at, 1)
                        row["disconnect_server_cpu"] = round(server.sample().cpu - leaving.cpu, 1)
            rows.append(row)
            print(
                f"  {kind:<9} {row['connections']:>6} connections: RSS {row['rss_before_mib']} → "
                f"{row['rss_after_mib']} MiB, {row['bytes_per_connection'] / 1024:.1f} KiB each"
                f"; all leaving at once: {row['disconnect_seconds']} s, {row['disconnect_server_cpu']} s server CPU "
                f"(load {row['load_average']})",
                flush=True,
            )
    return rows


def traced_idle(config: Config, sources: Sources) -> dict[str, Any]:
    """Where the memory of idle connections goes, by Python allocation site (tracemalloc, a run of its own:
    tracing costs memory and time)."""
    server_cpu, client_cpu = pinning()
    size = min(config.idle_sizes)
    found: dict[str, Any] = {}
    for kind in ("gateway", "baseline"):
        with running(kind, server_cpu) as server:
            seats: list[Seat] = server.call("setup", users=WARM_UP_CONNECTIONS + size, room_size=20)
            warm_fleet = connected(
                server, seats[:WARM_UP_CONNECTIONS], kind=kind, workers=1, cpu=client_cpu, sources=sources
            )
            with warm_fleet as (warm, _):
                quiesce(server, warm)
                server.call("trace_start")
                fleet = connected(
                    server,
                    seats[WARM_UP_CONNECTIONS:],
                    kind=kind,
                    workers=config.workers,
                    cpu=client_cpu,
                    sources=sources,
                )
                with fleet as (loadgen, _):
                    quiesce(server, loadgen)
                    traced = server.call("trace_stop", top=15)
                    traced["connections"] = loadgen.connected()
        found[kind] = traced
        per = traced["total_bytes"] / max(traced["connections"], 1)
        print(f"  {kind}: Python allocations per connection {per / 1024:.1f} KiB; by file:", flush=True)
        for name, size_diff, count_diff in traced["by_file"][:10]:
            short = "/".join(Path(name).parts[-3:])
            n = traced["connections"]
            print(f"    {size_diff / n:8.0f} B {count_diff / n:6.1f} blocks  {short}")
    return found


def idle_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| server | connections | RSS before (MiB) | RSS after (MiB) | per connection (KiB) | vs ≤ 25 KB | "
        "connects/s | all leaving: s (server CPU s) | load avg |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for r in rows:
        per = r["bytes_per_connection"]
        verdict = (
            ("met" if per <= 25_000 else f"missed by {(per - 25_000) / 1000:.1f} KB")
            if r["server"] == "gateway"
            else "–"
        )
        lines.append(
            f"| {r['server']} | {r['connections']} | {r['rss_before_mib']} | {r['rss_after_mib']} | "
            f"{per / 1024:.1f} | {verdict} | {r['connects_per_second']:.0f} | "
            f"{r['disconnect_seconds']} ({r['disconnect_server_cpu']}) | {' '.join(map(str, r['load_average']))} |"
        )
    return "\n".join(lines)


# --- fan-out ---------------------------------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def fanout(config: Config, sources: Sources) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    server_cpu, client_cpu = pinning()
    rows: list[dict[str, Any]] = []
    profiles: dict[str, dict[str, Any]] = {}
    for room_size in config.room_sizes:
        for kind in ("gateway", "baseline"):
            with running(kind, server_cpu) as server:
                seats = server.call("setup", users=config.fanout_connections, room_size=room_size)
                # Unpinned while connecting (and while the presence wave runs its course), pinned to the other core
                # for the measurements.
                fleet = connected(server, seats, kind=kind, workers=config.workers, cpu=None, sources=sources)
                with fleet as (loadgen, opened):
                    held = loadgen.connected()
                    settled = quiesce(server, loadgen)
                    loadgen.pin(client_cpu)
                    # What holding these connections costs with nothing to deliver (timers, heartbeats).
                    resting = server.sample()
                    time.sleep(3)
                    rested = server.sample()
                    settled["rest_cpu_share"] = round((rested.cpu - resting.cpu) / (rested.at - resting.at), 3)
                    print(
                        f"  {kind:<9} rooms of {room_size:<5} {held} connections in {opened['seconds']:.1f} s; "
                        f"presence wave over after {settled['seconds']} s more, {settled['server_cpu']} s server CPU; "
                        f"at rest {settled['rest_cpu_share']:.1%} of a core",
                        flush=True,
                    )
                    for load in config.loads:
                        row = _step(server, loadgen, kind=kind, room_size=room_size, load=load, config=config)
                        row["connections"] = held
                        row["connect_seconds"] = round(opened["seconds"], 2)
                        row["settle"] = settled
                        row["connected_after"] = loadgen.connected()
                        rows.append(row)
                        print(
                            f"  {kind:<9} rooms of {room_size:<5} offered {load:>6}/s: delivered "
                            f"{row['delivered_per_second']:>8.0f}/s, server CPU {row['server_cpu_share']:.0%}, "
                            f"{row['deliveries_per_cpu_second']:>8.0f} per CPU-s, p50 {row['p50_ms']:.1f} ms, "
                            f"p99 {row['p99_ms']:.1f} ms, lost {row['lost']} (load {row['load_average']})",
                            flush=True,
                        )
                    if config.profile:
                        profiles[f"{kind}-rooms-{room_size}"] = _profiled_step(
                            server, loadgen, kind=kind, room_size=room_size, load=max(config.loads), config=config
                        )
    return rows, profiles


def _step(
    server: ServerProcess, loadgen: LoadGen, *, kind: ServerKind, room_size: int, load: int, config: Config
) -> dict[str, Any]:
    rate = load / room_size
    start_deliveries, _ = loadgen.record(True)
    before = server.sample()
    injected = server.call("inject", rate=rate, seconds=config.seconds)
    expected = injected["sent"] * room_size
    loadgen.drain(start_deliveries + expected)
    after = server.sample()
    end_deliveries, latencies = loadgen.record(False)
    delivered = end_deliveries - start_deliveries
    cpu = after.cpu - before.cpu - injected["producer_cpu"]
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {
        "server": kind,
        "room_size": room_size,
        "offered_per_second": load,
        "messages_per_second": round(rate, 2),
        "messages": injected["sent"],
        "expected": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        "inject_seconds": round(injected["seconds"], 3),
        "window_seconds": round(after.at - before.at, 3),
        # Over the whole window, from the first injection to the last delivery: a server that falls behind
        # shows here as less than offered.
        "delivered_per_second": round(delivered / (after.at - before.at), 1),
        "server_cpu_seconds": round(cpu, 3),
        "producer_cpu_seconds": round(injected["producer_cpu"], 3),
        "server_cpu_share": round(cpu / (after.at - before.at), 3),
        "deliveries_per_cpu_second": round(delivered / cpu, 1) if cpu > 0 else None,
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p90_ms": round(percentile(ms, 0.90), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "p999_ms": round(percentile(ms, 0.999), 2),
        "max_ms": round(ms[-1], 2) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
        "load_average": load_average(),
        "measured_at": _now(),
    }


def _profiled_step(
    server: ServerProcess, loadgen: LoadGen, *, kind: ServerKind, room_size: int, load: int, config: Config
) -> dict[str, Any]:
    """One more step under cProfile (which slows the server several times over: not part of the figures)."""
    config.results.mkdir(parents=True, exist_ok=True)
    name = f"profile-{kind}-rooms-{room_size}"
    server.call("profile_start")
    row = _step(server, loadgen, kind=kind, room_size=room_size, load=load, config=config)
    found: dict[str, Any] = server.call("profile_stop", top=25, dump=str((config.results / f"{name}.pstats").resolve()))
    (config.results / f"{name}.txt").write_text(found["text"])
    return {"areas": found["areas"], "deliveries": row["delivered"], "text": found["text"]}


def profile_table(profiles: dict[str, dict[str, Any]]) -> str:
    """Own time per delivery (µs, under cProfile) by area, for each profiled run side by side."""
    names = list(profiles)
    areas: list[str] = []
    for found in profiles.values():
        areas += [a for a in found["areas"] if a not in areas]
    lines = ["| area | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for area in areas:
        cells = []
        for name in names:
            found = profiles[name]
            cells.append(f"{found['areas'].get(area, 0.0) * 1e6 / max(found['deliveries'], 1):.1f}")
        lines.append(f"| {area} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fanout_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| server | room size | offered/s | delivered/s | lost | server CPU | deliveries per CPU-s | "
        "CPU µs per delivery | p50 ms | p90 ms | p99 ms | max ms | load avg |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['server']} | {r['room_size']} | {r['offered_per_second']} | {r['delivered_per_second']:.0f} | "
            f"{r['lost']} | {r['server_cpu_share']:.0%} | {r['deliveries_per_cpu_second'] or 0:.0f} | "
            f"{1e6 / (r['deliveries_per_cpu_second'] or float('inf')):.1f} | "
            f"{r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} | "
            f"{' '.join(map(str, r['load_average']))} |"
        )
    return "\n".join(lines)


def wave_table(rows: list[dict[str, Any]]) -> str:
    """Per server and room size: connecting, the presence wave that follows, and the cost of holding at rest."""
    lines = [
        "| server | room size | connections | connect s | quiet after s | server CPU s meanwhile | at rest (core) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    seen = set()
    for r in rows:
        if (r["server"], r["room_size"]) in seen:
            continue
        seen.add((r["server"], r["room_size"]))
        w = r["settle"]
        lines.append(
            f"| {r['server']} | {r['room_size']} | {r['connections']} | {r['connect_seconds']} | {w['seconds']} | "
            f"{w['server_cpu']} | {w['rest_cpu_share']:.1%} |"
        )
    return "\n".join(lines)


def ratio_table(rows: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Ours / baseline in deliveries per CPU-second, at each room size and load."""
    by = {(r["server"], r["room_size"], r["offered_per_second"]): r for r in rows}
    ratios = []
    lines = [
        "| room size | offered/s | gateway per CPU-s | baseline per CPU-s | ours / baseline | vs ≥ 2× |",
        "| ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for (server, size, load), ours in by.items():
        base = by.get(("baseline", size, load))
        if server != "gateway" or base is None:
            continue
        a, b = ours["deliveries_per_cpu_second"], base["deliveries_per_cpu_second"]
        ratio = round(a / b, 2) if a and b else None
        ratios.append({"room_size": size, "offered_per_second": load, "gateway": a, "baseline": b, "ratio": ratio})
        verdict = "met" if ratio and ratio >= 2 else f"missed ({ratio}×)"
        lines.append(f"| {size} | {load} | {a:.0f} | {b:.0f} | {ratio} | {verdict} |")
    known = [r["ratio"] for r in ratios if r["ratio"]]
    if known:
        lines.append(f"\nMedian ours / baseline: {statistics.median(known):.2f}× (range {min(known)}–{max(known)}×).")
    return "\n".join(lines), ratios


def plot(rows: list[dict[str, Any]], out: Path) -> Path | None:
    """Latency percentiles against delivered load, per room size, ours and the baseline."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    sizes = sorted({r["room_size"] for r in rows})
    figure, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
    for axis, size in zip(axes[0], sizes, strict=True):
        for kind, colour in (("gateway", "tab:blue"), ("baseline", "tab:orange")):
            mine = sorted(
                (r for r in rows if r["server"] == kind and r["room_size"] == size),
                key=lambda r: r["offered_per_second"],
            )
            if not mine:
                continue
            x = [r["offered_per_second"] for r in mine]
            for key, style in (("p50_ms", "-"), ("p99_ms", "--"), ("max_ms", ":")):
                axis.plot(x, [r[key] for r in mine], style, color=colour, marker="o", label=f"{kind} {key[:-3]}")
        latency_axis(axis, f"rooms of {size}", "offered deliveries per second")
    return save_plot(figure, out / "latency.png")


def latency_axis(axis: Any, title: str, xlabel: str) -> None:
    """Titles, a log latency scale, a grid and the legend: the look every latency plot here shares."""
    axis.set_title(title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("send → receive latency (ms)")
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)


def save_plot(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def latency_ascii(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'server':<9} {'room':>5} {'deliv/s':>9} {'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>8}"]
    for r in sorted(rows, key=lambda r: (r["room_size"], r["server"], r["offered_per_second"])):
        lines.append(
            f"{r['server']:<9} {r['room_size']:>5} {r['delivered_per_second']:>9.0f} {r['p50_ms']:>8} "
            f"{r['p90_ms']:>8} {r['p99_ms']:>8} {r['p999_ms']:>8} {r['max_ms']:>8}"
        )
    return "\n".join(lines)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write(config: Config, name: str, payload: dict[str, Any]) -> Path:
    config.results.mkdir(parents=True, exist_ok=True)
    path = config.results / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def traced_table(traced: dict[str, Any], top: int = 8) -> str:
    """Python allocations per connection by file, the gateway beside the baseline."""
    lines = ["| file | " + " | ".join(f"{kind} B/conn" for kind in traced) + " |", "| --- |" + " ---: |" * len(traced)]
    files: list[str] = []
    for found in traced.values():
        files += ["/".join(Path(f).parts[-3:]) for f, _, _ in found["by_file"][:top]]
    for short in dict.fromkeys(files):
        cells = []
        for found in traced.values():
            size = sum(s for f, s, _ in found["by_file"] if "/".join(Path(f).parts[-3:]) == short)
            cells.append(f"{size / max(found['connections'], 1):.0f}")
        lines.append(f"| {short} | " + " | ".join(cells) + " |")
    totals = [f"{found['total_bytes'] / max(found['connections'], 1):.0f}" for found in traced.values()]
    lines.append("| **all Python allocations** | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    config = Config()
    chosen = set(argv) or {"idle", "fanout"}
    unknown = chosen - {"idle", "fanout"}
    if unknown:
        raise SystemExit(f"unknown scenario(s) {sorted(unknown)}; choose from idle, fanout")
    sources = Sources()
    about = {"machine": machine(), "config": {k: str(v) for k, v in asdict(config).items()}, "pinning": pinning()}
    summary = [
        f"Measured {_now()} on {about['machine']}; server on core {pinning()[0]}, load generator on core "
        f"{pinning()[1]}; load average at the start {load_average()}.",
    ]
    print(summary[0], flush=True)
    if "idle" in chosen:
        print("idle connections", flush=True)
        rows = idle(config, sources)
        summary += ["", "Idle connections", "", idle_table(rows)]
        traced = traced_idle(config, sources) if config.profile else {}
        if traced:
            summary += ["", "tracemalloc, live Python allocations per connection", "", traced_table(traced)]
        print(f"wrote {_write(config, 'idle.json', {**about, 'rows': rows, 'tracemalloc': traced})}")
    if "fanout" in chosen:
        print("fan-out", flush=True)
        rows, profiles = fanout(config, sources)
        table, ratios = ratio_table(rows)
        summary += [
            "",
            "Fan-out",
            "",
            wave_table(rows),
            "",
            fanout_table(rows),
            "",
            table,
            "",
            "```",
            latency_ascii(rows),
            "```",
        ]
        if profiles:
            summary += ["", "cProfile (CPU time), own time per delivery (µs) by area", "", profile_table(profiles)]
        kept = {name: {k: v for k, v in found.items() if k != "text"} for name, found in profiles.items()}
        print(f"wrote {_write(config, 'fanout.json', {**about, 'rows': rows, 'ratios': ratios, 'profiles': kept})}")
        path = plot(rows, config.results)
        print(f"wrote {path}" if path else "matplotlib is not installed: no plot (the tables have the figures)")
    summary.append(f"\nLoad average at the end: {load_average()}.")
    text = "\n".join(summary) + "\n"
    print(text)
    config.results.mkdir(parents=True, exist_ok=True)
    (config.results / "summary.md").write_text(text)
    print(f"wrote {config.results / 'summary.md'}")


if __name__ == "__main__":
    main(sys.argv[1:])
