"""Dev mode's mail: one printed line per email, and a mailbox page that exists in dev mode only."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from chat_app.compose import build, build_asgi, dev_mailbox_enabled
from chat_app.devmail import KEPT, MAILBOX_PATH, PAGE_HEADERS, Delivered, DevMailbox, DevMailer, one_line, render
from chat_auth.bootstrap import AuthModule
from chat_auth.service import mail
from chat_auth.service.ports import Email
from chat_auth.testing.fakes import RecordingMailer
from chat_runtime.settings import ChatSettings, load_settings

STRONG = "x7Kq2mVt9LwP4sZr8NcB3hYd6FjG5aQe1UoI0pRk"
PROD_ENV = {
    "CHAT_MODE": "prod",
    "CHAT_AUTH_SEALING_SECRET": STRONG,
    "CHAT_AUTH_CODE_PEPPER": STRONG[::-1],
    "CHAT_AUTH_EMAIL_TRANSPORT": "smtp",
    "CHAT_GATEWAY_ALLOWED_ORIGINS": '["https://chat.example.com"]',
}


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHAT_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def built_web_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A web client build whose index.html would answer every unknown path (the single-page app's fallback)."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>web client</title>")
    monkeypatch.setenv("CHAT_GATEWAY_WEB_DIR", str(dist))


def _email(to: str = "ada@example.com", subject: str = "hello", text: str = "body\n") -> Email:
    return Email(to=to, subject=subject, text=text, html="<p>body</p>")


def _delivered(email: Email) -> Delivered:
    return Delivered(at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), email=email)


async def test_a_code_email_is_printed_as_one_line_naming_the_address_and_the_code() -> None:
    printed: list[str] = []
    mailer = DevMailer(DevMailbox(), say=printed.append)
    await mailer.send(mail.verification_email("chat", "alice@example.com", "123456", 10))
    await mailer.send(mail.reset_email("chat", "bob@example.com", "654321", 10))
    assert printed == ["code for alice@example.com: 123456", "code for bob@example.com: 654321"]


async def test_an_email_without_a_code_is_printed_with_its_subject() -> None:
    printed: list[str] = []
    await DevMailer(DevMailbox(), say=printed.append).send(mail.password_changed_email("chat", "ada@example.com"))
    assert printed == ["mail for ada@example.com: chat: your password was changed"]


def test_control_characters_in_an_address_never_reach_the_terminal() -> None:
    line = one_line(Email(to="\x1b[2J\x07evil@example.com", subject="s", text="t", html="h", code="123456"))
    assert line == "code for \\x1b[2J\\x07evil@example.com: 123456"
    assert all(ch.isprintable() for ch in line)


async def test_the_mailbox_lists_the_newest_first_and_keeps_only_the_last_hundred() -> None:
    mailbox = DevMailbox()
    mailer = DevMailer(mailbox, say=lambda _line: None)
    for n in range(KEPT + 5):
        await mailer.send(_email(subject=f"mail {n}"))
    subjects = [d.email.subject for d in mailbox.newest_first()]
    assert KEPT == 100
    assert subjects == [f"mail {n}" for n in reversed(range(5, KEPT + 5))]


async def test_with_smtp_configured_the_dev_mailer_still_sends_the_email_and_keeps_a_copy() -> None:
    relay = RecordingMailer()
    mailbox = DevMailbox()
    email = mail.verification_email("chat", "ada@example.com", "111222", 10)
    await DevMailer(mailbox, relay=relay, say=lambda _line: None).send(email)
    assert relay.sent == [email]
    assert [d.email for d in mailbox.newest_first()] == [email]


def test_the_page_escapes_every_value_of_an_email() -> None:
    hostile = Email(
        to='"><script>alert(1)</script>@example.com',
        subject="<img src=x onerror=alert(2)>",
        text="</pre><script>alert(3)</script>&amp;",
        html="<script>alert(4)</script>",
        code="<b>1</b>",
    )
    page = render([_delivered(hostile)])
    assert "<script" not in page
    assert "<img" not in page
    assert "<b>1" not in page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;&amp;amp;" in page
    assert "&quot;&gt;&lt;script&gt;" in page
    assert "alert(4)" not in page, "the HTML part is never shown"


def test_the_page_shows_time_address_subject_code_and_text() -> None:
    page = render([_delivered(mail.verification_email("chat", "ada@example.com", "123456", 10))])
    assert '<time datetime="2030-01-02T03:04:05+00:00">' in page
    assert "ada@example.com" in page
    assert "chat: your verification code is 123456" in page
    assert '<dd class="code">123456</dd>' in page
    assert "Your chat verification code is 123456." in page


def test_only_dev_mode_with_the_auth_service_in_the_process_has_a_mailbox() -> None:
    dev = load_settings(ChatSettings, bus="inprocess")
    assert dev_mailbox_enabled("all", dev)
    assert dev_mailbox_enabled("auth", dev)
    assert not dev_mailbox_enabled("gateway", dev)
    assert not dev_mailbox_enabled("rooms", dev)
    assert not dev_mailbox_enabled("all", load_settings(ChatSettings, bus="inprocess", mode="test"))


@pytest.mark.usefixtures("built_web_client")
async def test_in_dev_mode_the_product_serves_the_emails_auth_sent_at_the_mailbox_path() -> None:
    app = build("all", load_settings(ChatSettings, bus="inprocess"))
    (auth,) = [m for m in app.state.modules if isinstance(m, AuthModule)]
    auth.context.mail.send_later(mail.verification_email("chat", "ada@example.com", "123456", 10))
    await auth.context.mail.drain()
    (gateway,) = [m for m in app.state.modules if m.name == "gateway"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.wrap(app)), base_url="http://t") as http:
        page = await http.get(MAILBOX_PATH)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "web client" not in page.text, "the single-page app's fallback does not answer the mailbox path"
    assert '<dd class="code">123456</dd>' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"


def test_the_pages_policy_allows_no_script_and_only_its_own_stylesheet() -> None:
    policy = PAGE_HEADERS["Content-Security-Policy"]
    style = re.search(r"<style>(.*?)</style>", render([]), re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert "unsafe" not in policy
    assert "frame-ancestors 'none'" in policy


@pytest.mark.parametrize("mode_env", [{"CHAT_MODE": "test"}, PROD_ENV], ids=["test", "prod"])
@pytest.mark.usefixtures("built_web_client")
async def test_outside_dev_mode_the_mailbox_path_is_absent(
    monkeypatch: pytest.MonkeyPatch, mode_env: dict[str, str]
) -> None:
    for name, value in mode_env.items():
        monkeypatch.setenv(name, value)
    app = build_asgi("all", load_settings(ChatSettings, bus="inprocess"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        page = await http.get(MAILBOX_PATH)
        index = await http.get("/dev")
    assert page.status_code == 404
    assert index.status_code == 404
    assert "web client" not in page.text
