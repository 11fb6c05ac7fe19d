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
import shutil
from pathlib import Path

from .browser import WEB, run_scenario
from .product import PASSWORD, Product
from .test_web_client import node, product  # noqa: F401 (fixtures)

DRIVER = WEB / "e2e" / "messages.mjs"
ARTIFACTS = Path(__file__).resolve().parents[2] / "tests" / "artifacts" / "web-messages"


async def test_message_features_render_safely_group_notify_keep_drafts_mention_react_and_search(
    node: str,  # noqa: F811
    product: Product,  # noqa: F811
) -> None:
    await asyncio.gather(product.sign_up("ann"), product.sign_up("ben"))
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    shots = await run_scenario(
        node,
        DRIVER,
        product.base,
        str(ARTIFACTS),
        json.dumps({"owner": "ann", "guest": "ben", "password": PASSWORD}),
        timeout=180,
    )
    assert len(shots) == 5
