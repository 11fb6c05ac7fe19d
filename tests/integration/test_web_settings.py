"""Settings in the web client, in headless Chromium against the whole product in one process: the display name and
picture (shown in the header), the list of sessions with device names (ending the phone's signs the phone out), a
password change, two-factor set-up from the server's QR code with a confirmation code and the recovery codes shown
once (the phone then signs in with one), turning it off, logging out everywhere and deleting the account. Each
refusal shows the server's own problem+json message.

clients/web/e2e/settings.mjs drives the browsers; it asks this test for authenticator codes on stdout (with the
setup key it read from the page) and gets them on stdin. Screenshots land in tests/artifacts/web-settings/
(git-ignored). The fixtures (the product with default limits, the node binary and its checks) are
test_web_client.py's."""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import pyotp

from .browser import ROOT, WEB, run_scenario
from .product import PASSWORD, Product

# The fixtures, imported by name so pytest finds them here too (`x as x`: a deliberate re-export).
from .test_web_client import node as node
from .test_web_client import product as product

DRIVER = WEB / "e2e" / "settings.mjs"
ARTIFACTS = ROOT / "tests" / "artifacts" / "web-settings"


def codes_for(secret: str, *, next_step: bool) -> dict[str, str]:
    """The current code (or the next step's: the server takes one step either side, and a code works once, so a
    second code right after the first must be a later step's), and a six-digit code it cannot accept now."""
    totp = pyotp.TOTP(secret)
    now = time.time()
    allowed = {totp.at(now + drift) for drift in (-30, 0, 30)}
    wrong = next(f"{n:06d}" for n in range(0, 1_000_000, 111_111) if f"{n:06d}" not in allowed)
    return {"code": totp.at(now + 30 if next_step else now), "wrong": wrong}


async def test_settings_profile_sessions_security_and_deleting_the_account_in_the_browser(
    node: str, product: Product
) -> None:
    tokens = await product.sign_up("dee")
    # Signing up signed in here too: end that session, so the browsers' two are the account's only ones.
    ended = await product.http.post("/api/auth/logout", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert ended.status_code == 204, ended.text
    shutil.rmtree(ARTIFACTS, ignore_errors=True)

    async def totp_codes(line: dict[str, Any]) -> dict[str, Any] | None:
        if line["type"] != "need_totp":
            return None
        return codes_for(line["secret"], next_step=line.get("next", False))

    shots = await run_scenario(
        node,
        DRIVER,
        product.base,
        str(ARTIFACTS),
        json.dumps({"username": "dee", "password": PASSWORD}),
        timeout=180,
        answer=totp_codes,
    )
    assert len(shots) == 6
    # The account is gone: the API refuses its password too.
    refused = await product.http.post("/api/auth/login", json={"identifier": "dee", "password": PASSWORD})
    assert refused.status_code == 401, refused.text
