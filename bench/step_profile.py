"""Profiles of one step of the throughput benchmark (``BENCH_TP_PROFILE``): the CPU-time samplers of the product's
processes (bench/cpu_profile.py, started and stopped by signals), and py-spy recording every Python process of
the run (wall clock) unless ``BENCH_TP_WALL_PROFILE=0``. Each leaves its collapsed stacks, a flame graph and a
summary in the results."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from bench import flame

Recording = tuple[asyncio.subprocess.Process, Path]


async def start(
    pids: Mapping[str, int], sampled: Mapping[str, Path], *, results: Path, label: str, seconds: float, wall: bool
) -> list[Recording]:
    """Start the CPU-time samplers of the ``sampled`` processes, and py-spy on every one of ``pids`` for
    ``seconds`` when ``wall``."""
    await asyncio.to_thread(results.mkdir, parents=True, exist_ok=True)
    for name in sampled:
        os.kill(pids[name], signal.SIGUSR1)
    if not wall:
        return []
    uvx = shutil.which("uvx") or str(Path.home() / ".local" / "bin" / "uvx")
    started = []
    for name, pid in pids.items():
        out = results / f"profile-{label}-{name.replace(' ', '-')}.txt"
        command = [uvx, "py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250"]
        process = await asyncio.create_subprocess_exec(
            *command, "--format", "raw", "--output", str(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started.append((process, out))
    await asyncio.sleep(1.0)  # py-spy attaches before the load starts
    return started


async def finish(
    recordings: list[Recording],
    pids: Mapping[str, int],
    sampled: Mapping[str, Path],
    *,
    results: Path,
    label: str,
    title: str,
) -> None:
    """Wait for py-spy, stop the CPU-time samplers, and keep every profile's stacks and flame graph."""
    for process, _out in recordings:
        await process.wait()
    for _process, out in recordings:
        await asyncio.to_thread(_keep_recording, out, f"{title} (py-spy, wall clock): {out.stem}")
    for name in sampled:
        os.kill(pids[name], signal.SIGUSR2)
    for name, samples in sampled.items():
        out = results / f"cpu-{label}-{name.replace(' ', '-')}.txt"
        for _ in range(100):
            if await asyncio.to_thread(samples.exists):
                await asyncio.to_thread(
                    _keep_samples, samples, out, f"{title}, {name}: CPU time (bench/cpu_profile.py)"
                )
                break
            await asyncio.sleep(0.1)


def _keep_recording(out: Path, title: str) -> None:
    if out.exists():
        parsed = flame.parse(out.read_text().splitlines())
        # chat up and the services work on their event loop's thread; the Mongo-wire server in a thread per client
        # connection
        _keep(out, flame.busy_threads(parsed) if "mongo" in out.stem else flame.main_thread(parsed), title)


def _keep_samples(samples: Path, out: Path, title: str) -> None:
    text = samples.read_text()
    samples.unlink()  # a later step's stop writes it anew
    out.write_text(text)
    _keep(out, flame.parse(text.splitlines()), title)


def _keep(out: Path, stacks: list[tuple[list[str], int]], title: str) -> None:
    out.with_suffix(".svg").write_text(flame.svg(stacks, title))
    out.with_suffix(".summary.txt").write_text(flame.summary(stacks, top=40) + "\n")
