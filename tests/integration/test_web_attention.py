"""What asks for attention in the web client, in headless Chromium against the whole product in one process: the
inviter sees that an invitation was sent; a reply's quote follows an edit and a deletion of the quoted message;
the unread count shows in the tab title; opt-in notifications come for a direct message and a mention while the
tab is hidden, and never for one's own messages or while the tab is shown; "jump to the first unread" brings the
first unread message into view; a hidden tab that reconnects is shown as away again, not online. It also takes
the README's screenshot (docs/screenshot.png) from the real client, showing people by their display names.

clients/web/e2e/attention.mjs drives the browsers; the accounts are made here (sign-up through the emailed code,
then a display name), so the browsers only sign in. Other screenshots land in tests/artifacts/web-attention/."""

from __future__ import annotations

import asyncio
import json

from .browser import ROOT, WEB, run_scenario
from .product import PASSWORD, Product, product
from .test_web_client import node

__all__ = ["node", "product"]  # the fixtures, imported for pytest

DRIVER = WEB / "e2e" / "attention.mjs"
ARTIFACTS = ROOT / "tests" / "artifacts" / "web-attention"
SCREENSHOT = ROOT / "docs" / "screenshot.png"
PEOPLE = [("ada", "Ada Lovelace"), ("bob", "Bob Kahn")]


async def with_display_name(product: Product, username: str, display_name: str) -> None:
    """An account with a display name, once the rooms service (which names people for the client) knows it."""
    tokens = await product.sign_up(username)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    changed = await product.http.patch("/api/auth/me", json={"display_name": display_name}, headers=auth)
    assert changed.status_code == 200, changed.text
    user_id = changed.json()["id"]

    async with asyncio.timeout(15):
        while True:
            answer = await product.http.get("/api/rooms/users", params={"ids": user_id}, headers=auth)
            if answer.status_code == 200 and display_name in answer.text:
                return
            await asyncio.sleep(0.05)


async def test_the_web_client_asks_for_attention_as_it_should_and_takes_the_readme_screenshot(
    node: str, product: Product
) -> None:
    assert PASSWORD == "correct horse battery staple"  # the driver signs in with it
    for username, display_name in PEOPLE:
        await with_display_name(product, username, display_name)
    before = SCREENSHOT.stat().st_mtime_ns if SCREENSHOT.exists() else 0
    shots = await run_scenario(
        node,
        DRIVER,
        product.base,
        str(ARTIFACTS),
        str(SCREENSHOT),
        json.dumps({"people": PEOPLE}),
        timeout=180,
    )
    assert SCREENSHOT in shots, shots
    assert SCREENSHOT.stat().st_mtime_ns > before
