"""The web client in headless Chromium against the whole product in one process: someone with TOTP signs in
through the second-factor step (a recovery code) on a page that offers Google sign-in; two people sign up through
emailed codes, one creates a public room and the other finds it in the directory and joins, they chat (typing,
read receipts, a reaction, a reply, an edit, a deletion, an image), one goes offline, misses messages and writes
one of their own, and on coming back sees what they missed while their queued message goes out; an unread badge
and the "new messages" divider; a reload restores the session from the refresh cookie; sixty messages typed as fast
as possible, under the server's default rate limits and through a lost connection, are stored in the order typed
(the history API says so) and the page shows the rate limit as one; and with short-lived tokens the page answers
``auth:expiring`` by refreshing over HTTP and sending ``auth:refresh``.

clients/web/e2e/two-users.mjs drives the browsers (playwright-core with Debian's chromium); it asks this test for
each email code on stdout and gets it on stdin. Screenshots land in tests/artifacts/web/ (git-ignored)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from chat_gateway.settings import GatewaySettings
from chat_localinfra.smtp import SmtpInbox
from chat_messages.settings import MessagesSettings

from .browser import CHROMIUM, ROOT, WEB, run_scenario
from .product import Product, free_port, product_env, serving_product

DRIVER = WEB / "e2e" / "two-users.mjs"
ARTIFACTS = ROOT / "tests" / "artifacts" / "web"


@pytest.fixture
def node() -> str:
    """The node binary, once Chromium, the npm packages and the build are there; fails (never skips) with the
    command that fixes whatever is missing, before any server starts."""
    found = shutil.which("node")
    if found is None:
        pytest.fail("node not found: install Node.js 20+ with npm (the web client and its browser test need it)")
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: run `make browser-deps` (apt-get install chromium)")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        pytest.fail("clients/web/node_modules is missing: run `make web` (npm ci + vite build in clients/web)")
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("clients/web/dist is missing: run `make web` to build the web client")
    return found


async def email_code(product: Product, email: str) -> str:
    async with asyncio.timeout(10):
        while True:
            for message in product.inbox.to(email):
                found = re.search(r"\b(\d{6})\b", str(message["Subject"]))
                if found:
                    return found.group(1)
            await asyncio.sleep(0.05)


def default_rate_limits() -> dict[str, str]:
    """The per-user limits a real deployment has (the shared ``product`` fixture raises them): the gateway's budget
    for all events and the messages service's send budget."""
    gateway, messages = GatewaySettings.model_fields, MessagesSettings.model_fields
    return {
        "CHAT_GATEWAY_EVENTS_PER_SECOND": str(gateway["events_per_second"].default),
        "CHAT_GATEWAY_EVENTS_BURST": str(gateway["events_burst"].default),
        "CHAT_MESSAGES_SEND_PER_SECOND": str(messages["send_per_second"].default),
        "CHAT_MESSAGES_SEND_BURST": str(messages["send_burst"].default),
    }


@pytest.fixture
async def product(
    tmp_path: Path,
    postgres_url: str,
    mongo_url: str,
    mongo_database_name: str,
    smtp_server: tuple[str, int, SmtpInbox],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Product]:
    """The whole product in one process, as tests/integration/product.py serves it, with these differences.

    - The default per-user rate limits, so fast typing meets them as a user would.
    - Access tokens of 60 s, with the expiry warning 85 s before the socket would end (60 s + 30 s leeway): every
      socket gets ``auth:expiring`` about 5 s after each token is issued. The page refreshes over HTTP and sends
      ``auth:refresh`` several times during the scenario.
    - An OIDC client id, so the sign-in page offers the provider. The provider itself is never contacted here;
      tests/integration/test_auth_oidc.py drives that flow."""
    port = free_port()
    suffix = uuid.uuid4().hex[:8]
    env = product_env(
        base=f"http://127.0.0.1:{port}",
        data_dir=tmp_path,
        postgres_url=postgres_url,
        databases=(f"e2e_auth_{suffix}", f"e2e_rooms_{suffix}"),
        mongo_url=mongo_url,
        smtp_server=smtp_server,
        CHAT_MESSAGES_MONGO_DATABASE=mongo_database_name,
        CHAT_GATEWAY_TYPING_TTL_SECONDS="1.5",
        CHAT_GATEWAY_TYPING_THROTTLE_SECONDS="0.5",
        CHAT_GATEWAY_PRESENCE_GRACE_SECONDS="1.5",
        CHAT_GATEWAY_HEARTBEAT_SECONDS="0.5",
        CHAT_GATEWAY_RECOVERY_LIMIT="50",
        CHAT_AUTH_ACCESS_TOKEN_TTL_SECONDS="60",
        CHAT_GATEWAY_TOKEN_WARNING_SECONDS="85",
        CHAT_AUTH_OIDC_CLIENT_ID="chat-web-test",
        CHAT_AUTH_OIDC_CLIENT_SECRET="chat-web-test-secret",
        **default_rate_limits(),
    )
    async with serving_product(port, env, smtp_server[2], monkeypatch) as running:
        yield running


async def with_two_factor(product: Product, name: str) -> str:
    """An account with TOTP turned on; returns one of its recovery codes."""
    tokens = await product.sign_up(name)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    setup = await product.http.post("/api/auth/totp/setup", headers=auth)
    assert setup.status_code == 200, setup.text
    code = pyotp.TOTP(setup.json()["secret"]).now()
    confirmed = await product.http.post("/api/auth/totp/confirm", json={"code": code}, headers=auth)
    assert confirmed.status_code == 200, confirmed.text
    return str(confirmed.json()["recovery_codes"][0])


async def test_two_people_chat_in_the_browser_recover_what_they_missed_and_keep_the_order_they_typed(
    node: str, product: Product
) -> None:
    recovery_code = await with_two_factor(product, "cyd")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)

    async def emailed_code(line: dict[str, Any]) -> dict[str, Any] | None:
        if line["type"] != "need_code":
            return None
        return {"code": await email_code(product, line["email"])}

    # ~90 s normally, most of it the sixty messages at the default send rate; room for a loaded machine
    shots = await run_scenario(
        node,
        DRIVER,
        product.base,
        str(ARTIFACTS),
        json.dumps({"two_factor_user": "cyd", "recovery_code": recovery_code}),
        timeout=240,
        answer=emailed_code,
    )
    assert len(shots) == 9
