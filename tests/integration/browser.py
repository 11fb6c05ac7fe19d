"""Running a Chromium scenario of the web client (clients/web/e2e/*.mjs) from a test: the script prints one JSON
object per line (steps, screenshots, page errors, questions) and may be answered on stdin."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "clients" / "web"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))

Answer = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]
"""Given a line the script printed, what to write back to it (None: nothing)."""


async def run_scenario(node: str, driver: Path, *args: str, timeout: float, answer: Answer | None = None) -> list[Path]:
    """Run ``driver`` to its end and check that it finished without a page error; returns its screenshots, each
    checked to hold a picture."""
    process = await asyncio.create_subprocess_exec(
        node,
        str(driver),
        *args,
        cwd=WEB,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CHROMIUM": str(CHROMIUM)},
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    lines: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            async for raw in process.stdout:
                line: dict[str, Any] = json.loads(raw)
                lines.append(line)
                reply = await answer(line) if answer is not None else None
                if reply is not None:
                    process.stdin.write(json.dumps(reply).encode() + b"\n")
                    await process.stdin.drain()
            stderr = (await process.stderr.read()).decode(errors="replace")
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    printed = "\n".join(json.dumps(line) for line in lines)
    print(printed)  # the steps with their times, shown with -s or when the test fails
    assert status == 0, f"the browser scenario failed (exit {status}):\n{printed}\n{stderr[-4000:]}"
    assert lines[-1]["type"] == "done", printed
    assert not [line for line in lines if line["type"] == "pageerror"], printed
    shots = [Path(line["path"]) for line in lines if line["type"] == "screenshot"]
    assert all(shot.stat().st_size > 10_000 for shot in shots), shots
    return shots
