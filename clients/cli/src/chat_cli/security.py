"""The account's security: two-factor sign-in (set up with a QR code in the terminal, disable, new recovery codes)
and the sessions signed in on other devices (list, end one, end the others, end all)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from chat_cli.commands import PASSWORD_ENV, Context
from chat_cli.errors import Refused, Usage
from chat_cli.output import table
from chat_cli.qr import qr_text

CONFIRM_ATTEMPTS = 3
"""Codes asked for at a terminal before the set-up gives up (the server allows 5 wrong ones per 15 minutes)."""
_CODE = re.compile(r"^\d{6}$")
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iOS"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def _code(text: str) -> str | None:
    """A 6-digit authenticator code as typed (spaces allowed, ``123 456``), or None."""
    digits = "".join(text.split())
    return digits if _CODE.match(digits) else None


def _required_code(text: str) -> str:
    code = _code(text)
    if code is None:
        raise Usage(f"an authenticator code is 6 digits, not {text.strip()!r}")
    return code


# -- two-factor sign-in -----------------------------------------------------------------------------------------


async def totp_status(args: argparse.Namespace, ctx: Context) -> None:
    state = await ctx.api.request("GET", "/api/auth/totp")
    text = (
        f"Two-factor sign-in is on; {state['recovery_codes_left']} recovery codes left."
        if state["enabled"]
        else "Two-factor sign-in is off. Turn it on with: chat-cli totp setup"
    )
    ctx.out.result(state, text)


async def totp_setup(args: argparse.Namespace, ctx: Context) -> None:
    """Start the set-up, show the QR code and the secret (stderr, even with ``--json``: they are for the phone),
    confirm with the app's first code, and print the recovery codes, the only time they are shown."""
    pending = await ctx.api.request("POST", "/api/auth/totp/setup")
    ctx.out.say(qr_text(str(pending["otpauth_uri"])))
    ctx.out.say(
        "Scan this with your authenticator app, or type in the secret by hand:\n"
        f"  secret: {pending['secret']}\n  uri:    {pending['otpauth_uri']}"
    )
    answer = await _confirm(ctx)
    codes = [str(c) for c in answer["recovery_codes"]]
    ctx.out.result(
        {"enabled": True, "recovery_codes": codes},
        "Two-factor sign-in is on. Recovery codes (each works once, instead of a code from the app).\n"
        "Keep them somewhere safe: they are not shown again.\n" + "\n".join(f"  {c}" for c in codes),
    )


async def _confirm(ctx: Context) -> dict[str, Any]:
    """Ask for the app's code until the server takes it; at a terminal a wrong one may be typed again."""
    attempts_left = CONFIRM_ATTEMPTS if ctx.interactive() else 1
    while True:
        attempts_left -= 1
        try:
            code = _required_code(ctx.line("Code from the app: "))
            answer: dict[str, Any] = await ctx.api.request("POST", "/api/auth/totp/confirm", json={"code": code})
        except (Usage, Refused) as error:
            wrong = isinstance(error, Usage) or error.code == "invalid_totp_code"
            if not wrong or attempts_left == 0:
                raise
            ctx.out.say(f"{error}; try again (the next code, if the phone's clock is right).")
        else:
            return answer


async def totp_disable(args: argparse.Namespace, ctx: Context) -> None:
    if args.code is not None:
        body = {"code": _required_code(args.code)}
    elif args.password_stdin:
        body = {"password": ctx.secret("Password: ", from_stdin=True)}
    else:
        typed = ctx.secret("Authenticator code (or your password): ", env=PASSWORD_ENV)
        code = _code(typed)
        body = {"code": code} if code else {"password": typed}
    await ctx.api.request("POST", "/api/auth/totp/disable", json=body)
    ctx.out.result({"enabled": False}, "Two-factor sign-in is off.")


async def totp_recovery_codes(args: argparse.Namespace, ctx: Context) -> None:
    code = _required_code(args.code if args.code is not None else ctx.secret("Code from the app: "))
    answer = await ctx.api.request("POST", "/api/auth/totp/recovery-codes", json={"code": code})
    codes = [str(c) for c in answer["recovery_codes"]]
    ctx.out.result(
        {"recovery_codes": codes},
        "New recovery codes (the old ones no longer work); they are not shown again:\n"
        + "\n".join(f"  {c}" for c in codes),
    )


# -- sessions ---------------------------------------------------------------------------------------------------


def device(user_agent: str) -> str:
    """A session's device in a few words: ``chat-cli on Linux``, ``Firefox on Windows``; else the raw agent."""
    agent = user_agent.strip()
    if agent.startswith("chat-cli/"):
        told = agent.partition("(")[2].partition(")")[0].split(";")[0].strip()
        return "chat-cli" + (f" on {told}" if told else "")
    browser = next((name for marker, name in _BROWSERS if marker in agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in agent), None)
    if browser:
        return browser + (f" on {system}" if system else "")
    return agent[:40] or "unknown"


def local_time(value: str | None) -> str:
    """``YYYY-MM-DD HH:MM`` of an ISO timestamp, in local time."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return "-"


def format_sessions(found: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [
            "*" if s.get("current") else "",
            str(s["id"]),
            device(str(s.get("user_agent") or "")),
            str(s.get("ip") or "-"),
            str(s.get("auth_method") or "-"),
            local_time(s.get("created_at")),
            local_time(s.get("last_used_at")),
        ]
        for s in sorted(found, key=lambda s: str(s.get("last_used_at")), reverse=True)
    ]
    listed = table(rows, ["", "ID", "DEVICE", "IP", "SIGN-IN", "SINCE", "LAST USED"])
    return (listed + "\n* this device") if rows else "(no sessions)"


def _session(found: Sequence[Mapping[str, Any]], ref: str) -> Mapping[str, Any]:
    """The listed session whose id is ``ref`` or starts with it."""
    wanted = ref.strip().lower()
    matches = [s for s in found if str(s["id"]) == wanted] or [s for s in found if str(s["id"]).startswith(wanted)]
    if len(matches) > 1:
        raise Usage(f"{len(matches)} sessions start with {ref!r}; give more of the id")
    if not matches or not wanted:
        raise Refused("session_not_found", f"no session of yours has the id {ref!r} (see chat-cli sessions)")
    return matches[0]


async def sessions(args: argparse.Namespace, ctx: Context) -> None:
    api = ctx.api
    if args.all:
        await api.request("POST", "/api/auth/logout-all")
        _forget_here(ctx)
        ctx.out.result({"ended": "all"}, "Signed out everywhere, here too. Sign in again with: chat-cli login")
        return
    if args.others:
        ended = await api.request("POST", "/api/auth/sessions/end-others")
        ctx.out.result(ended, f"Ended {ended['sessions_ended']} other session(s); this one goes on.")
        return
    found = await api.request("GET", "/api/auth/sessions")
    if args.end is None:
        ctx.out.result(found, format_sessions(found))
        return
    session = _session(found, args.end)
    await api.request("DELETE", f"/api/auth/sessions/{session['id']}")
    current = bool(session.get("current"))
    if current:
        _forget_here(ctx)
    ctx.out.result(
        {"ended": str(session["id"]), "current": current},
        f"Ended session {session['id']} ({device(str(session.get('user_agent') or ''))})"
        + ("; that was this device: signed out here." if current else "."),
    )


def _forget_here(ctx: Context) -> None:
    """The server ended this device's session: keep no dead tokens."""
    ctx.api.config.forget_session()
    ctx.api.config.save()
