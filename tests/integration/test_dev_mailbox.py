"""`chat up` in dev mode, as someone trying the product meets it: the start-up output says where emails go, a
sign-up's code is printed as one line, and the mailbox page lists the email with its code, newest first.
(Outside dev mode the page is absent: apps/chat/tests/test_devmail.py, on the same all-in-one composition.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .chat_up import Up, own_infra_dir, running_up, up_environment
from .product import PASSWORD, until


@pytest.fixture
def up_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with own_infra_dir() as infra:
        yield up_environment(tmp_path, infra=infra)


async def test_chat_up_prints_each_code_on_one_line_and_lists_the_email_on_its_dev_mailbox_page(
    up_env: dict[str, str],
) -> None:
    async with running_up(up_env) as start:
        up: Up = await start()
        await up.ready()
        mailbox_url = f"{up.base}/dev/mailbox"
        assert up.said(f"listed at {mailbox_url}"), f"the start-up output names the mailbox:\n{up.output()}"
        async with httpx.AsyncClient(base_url=up.base, timeout=20) as http:
            empty = await http.get("/dev/mailbox")
            assert empty.status_code == 200
            assert "No email yet" in empty.text

            body = {"email": "alice@example.com", "username": "alice", "password": PASSWORD}
            assert (await http.post("/api/auth/register", json=body)).status_code == 202
            await until(lambda: up.code_for("alice@example.com"), 10)
            (line,) = [line for line in up.lines if line.startswith("code for alice@example.com: ")]
            assert re.fullmatch(r"code for alice@example\.com: \d{6}", line), line
            code = up.code_for("alice@example.com")

            page = await http.get("/dev/mailbox")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert "default-src 'none'" in page.headers["content-security-policy"]
            assert "alice@example.com" in page.text
            assert f'<dd class="code">{code}</dd>' in page.text
            assert f"Your chat verification code is {code}." in page.text

            verified = await http.post("/api/auth/email/verify", json={"email": "alice@example.com", "code": code})
            assert verified.status_code == 200, "the printed code is the one that works"

            again = {**body, "username": "alice2"}
            assert (await http.post("/api/auth/register", json=again)).status_code == 202
            await until(lambda: up.said("mail for alice@example.com: "), 10)
            newer = (await http.get("/dev/mailbox")).text
            notice, verification = newer.index("someone tried to register"), newer.index("your verification code is")
            assert notice < verification, "the newest email comes first"
        status = await up.interrupt()
        assert status == 0, up.output()
