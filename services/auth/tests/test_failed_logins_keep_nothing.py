"""Failed logins leave nothing behind: no exception that outlives a login holds a password typed into it, and
what exceptions hold does not grow with the number of failures (a shared exception instance chains every raise's
traceback, with each frame's locals, onto itself).

The use case is called directly. Starlette drops the traceback of an exception that one of its handlers answered,
once the response is sent, which hides the growth behind the REST API; it does not help any other caller, nor a
response that fails half-way, and the instance is still shared between concurrent requests meanwhile."""

from __future__ import annotations

import gc
import hashlib
import secrets
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from chat_auth.bootstrap import build_context
from chat_auth.domain.errors import AuthError
from chat_auth.service import accounts, sessions
from chat_auth.service.context import AuthContext, Client
from chat_auth.settings import AuthSettings
from chat_auth.testing.fakes import FakeAuthStore, FakeClock, RecordingMailer
from chat_auth.testing.harness import PASSWORD
from chat_runtime.settings import load_settings

from .test_auth_api import FAST_HASHER

FAILURES = 100
CLIENT = Client(ip="192.0.2.7")


@dataclass
class Auth:
    ctx: AuthContext
    clock: FakeClock


@pytest.fixture
async def auth(tmp_path: Path) -> Auth:
    settings = load_settings(AuthSettings, data_dir=tmp_path, migrate_on_start=False)
    clock = FakeClock()
    ctx = build_context(settings, store=FakeAuthStore(), mailer=RecordingMailer(), clock=clock, hasher=FAST_HASHER)
    await accounts.register(
        ctx, email="ada@example.com", username="ada", password=PASSWORD, display_name=None, client=CLIENT
    )
    return Auth(ctx=ctx, clock=clock)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _held_by_live_exceptions() -> tuple[set[bytes], int]:
    """The digests of every string reachable from a live exception (its args, attributes, chained causes and
    contexts, and the locals of every frame in its traceback), and the bytes those tracebacks and frames take.

    Digests, not the strings: a list of the passwords in this test would otherwise be one more place they live."""
    gc.collect()
    strings: set[bytes] = set()
    held = 0
    seen: set[int] = set()
    pending: list[object] = [o for o in gc.get_objects() if isinstance(o, BaseException)]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, str):
            strings.add(_digest(item))
        elif isinstance(item, BaseException):
            pending.extend([*item.args, item.__traceback__, item.__context__, item.__cause__])
            pending.extend(vars(item).values())
        elif isinstance(item, types.TracebackType):
            held += sys.getsizeof(item) + sys.getsizeof(item.tb_frame)
            pending.extend([item.tb_next, item.tb_frame])
        elif isinstance(item, types.FrameType):
            pending.extend(item.f_locals.values())
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            pending.extend(item)
    return strings, held


async def _fail_logins(auth: Auth, count: int, *, account: str) -> set[bytes]:
    """``count`` wrong passwords, each a new random one, for ``account``; their digests."""
    typed: set[bytes] = set()
    for _ in range(count):
        # Past every throttle: this is about what a failure leaves, not about being refused for too many.
        auth.clock.advance(hours=1)
        password = f"wrong-{secrets.token_hex(12)}"
        typed.add(_digest(password))
        with pytest.raises(AuthError) as refused:
            await sessions.login(auth.ctx, identifier=account, password=password, client=CLIENT)
        assert refused.value.code == "invalid_credentials"
    del password, refused
    return typed


async def test_no_password_of_a_failed_login_is_reachable_from_any_live_exception(auth: Auth) -> None:
    typed = await _fail_logins(auth, FAILURES // 2, account="ada")
    typed |= await _fail_logins(auth, FAILURES // 2, account="nobody@example.com")

    reachable, _ = _held_by_live_exceptions()
    still_held = len(typed & reachable)
    assert still_held == 0, f"{still_held} of {FAILURES} passwords are still held by an exception"


async def test_what_exceptions_hold_does_not_grow_with_failed_logins(auth: Auth) -> None:
    await _fail_logins(auth, 10, account="ada")
    _, before = _held_by_live_exceptions()
    await _fail_logins(auth, FAILURES, account="ada")
    _, after = _held_by_live_exceptions()
    assert after <= before, f"exceptions held {before} bytes of tracebacks, then {after} after {FAILURES} more failures"
