"""The web client's message features in headless Chromium against the whole product in one process: message bodies
through the safe Markdown renderer (an XSS corpus runs nothing and leaves no element or attribute the renderer does
not make), one author's consecutive messages grouped, join/leave/kick/rename notices in the timeline, a room's
draft kept across a reload and cleared on send, @-mentions (autocomplete from the room's members, highlighted, the
room list's mention count), who reacted and the emoji picker, and message search opening the room at a result.

clients/web/e2e/messages.mjs drives the browsers; the accounts are made here. It reuses the browser test's
fixtures (tests/integration/test_web_client.py): ``node`` fails, never skips, when Chromium, the npm packages or
the build are missing, and ``product`` serves the product with the default rate limits. Screenshots land in
tests/artifacts/web-messages/ (git-ignored)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .product import PASSWORD, Product
from .test_web_client import CHROMIUM, WEB, node, product  # noqa: F401 (fixtures)

DRIVER = WEB / "e2e" / "messages.mjs"
ARTIFACTS = Path(__file__).resolve().parents[2] / "tests" / "artifacts" / "web-messages"


async def test_message_features_render_safely_group_notify_keep_drafts_mention_react_and_search(
    node: str,  # noqa: F811
    product: Product,  # noqa: F811
) -> None:
    await asyncio.gather(product.sign_up("ann"), product.sign_up("ben"))
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    process = await asyncio.create_subprocess_exec(
        node,
        str(DRIVER),
        product.base,
        str(ARTIFACTS),
        json.dumps({"owner": "ann", "guest": "ben", "password": PASSWORD}),
        cwd=WEB,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CHROMIUM": str(CHROMIUM)},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    lines: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(180):
            async for raw in process.stdout:
                lines.append(json.loads(raw))
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
    assert len(shots) == 5
    assert all(shot.stat().st_size > 10_000 for shot in shots), shots
