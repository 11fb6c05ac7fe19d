"""One coroutine per command. Each takes the parsed arguments and a ``Context`` and prints through it."""

from __future__ import annotations

import argparse
import getpass
import re
import shlex
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from chat_cli import files
from chat_cli.api import Api, user_by_username, user_names
from chat_cli.errors import Refused, Usage
from chat_cli.lookups import add_titles, is_called, known_for
from chat_cli.oidc import sign_in_with_browser
from chat_cli.output import Output, format_message, format_rooms, human_size, room_title, table
from chat_cli.realtime import Socket, new_client_msg_id

PASSWORD_ENV = "CHAT_CLI_PASSWORD"  # noqa: S105 - the variable's name, not a password
ROOM_PASSWORD_ENV = "CHAT_CLI_ROOM_PASSWORD"  # noqa: S105
PAGE = 100
_TOTP_CODE = re.compile(r"^\d{6}$")


@dataclass
class Context:
    api: Api
    out: Output
    stdin: TextIO
    environ: dict[str, str]

    def interactive(self) -> bool:
        return self.stdin.isatty()

    def secret(self, prompt: str, *, from_stdin: bool = False, env: str | None = None) -> str:
        """A secret from stdin (``--…-stdin`` or a pipe), the environment, or a no-echo prompt."""
        if not from_stdin and env and self.environ.get(env):
            return self.environ[env]
        if from_stdin or not self.interactive():
            line = self.stdin.readline()
            if not line:
                raise Usage(f"expected {prompt.strip(': ').lower()} on standard input")
            return line.rstrip("\r\n")
        return getpass.getpass(prompt)

    def line(self, prompt: str) -> str:
        if self.interactive():
            self.out.stderr.write(prompt)
            self.out.stderr.flush()
        line = self.stdin.readline()
        if not line:
            raise Usage(f"expected {prompt.strip(': ').lower()} on standard input")
        return line.strip()


Command = Callable[[argparse.Namespace, Context], Awaitable[None]]


# -- account -----------------------------------------------------------------------------------------------------


async def register(args: argparse.Namespace, ctx: Context) -> None:
    password = ctx.secret("Password: ", from_stdin=args.password_stdin, env=PASSWORD_ENV)
    prompted = ctx.interactive() and not args.password_stdin and not ctx.environ.get(PASSWORD_ENV)
    if prompted and getpass.getpass("Password again: ") != password:
        raise Usage("the passwords differ")
    body: dict[str, Any] = {"email": args.email, "username": args.username, "password": password}
    if args.display_name:
        body["display_name"] = args.display_name
    answer = await ctx.api.request("POST", "/api/auth/register", json=body, authenticated=False)
    ctx.out.result(
        {**(answer or {}), "email": args.email, "username": args.username},
        f"Registered {args.username}. A code is on its way to {args.email}; then run:\n"
        f"  chat-cli verify {args.email} CODE",
    )


async def verify(args: argparse.Namespace, ctx: Context) -> None:
    if args.resend:
        answer = await ctx.api.request(
            "POST", "/api/auth/email/resend", json={"email": args.email}, authenticated=False
        )
        ctx.out.result(answer, f"A new code is on its way to {args.email}.")
        return
    code = args.code or ctx.line("Code: ")
    answer = await ctx.api.request(
        "POST", "/api/auth/email/verify", json={"email": args.email, "code": code}, authenticated=False
    )
    ctx.out.result(answer, f"{args.email} is verified. Sign in with: chat-cli login")


async def login(args: argparse.Namespace, ctx: Context) -> None:
    api = ctx.api
    if args.browser:
        answer = await sign_in_with_browser(
            api,
            show=ctx.out.say,
            ask_password=lambda: ctx.secret("Password: ", from_stdin=args.password_stdin, env=PASSWORD_ENV),
            open_browser=not args.no_open,
        )
    else:
        identifier = args.identifier or ctx.line("Email or username: ")
        password = ctx.secret("Password: ", from_stdin=args.password_stdin, env=PASSWORD_ENV)
        answer = await api.request(
            "POST", "/api/auth/login", json={"identifier": identifier, "password": password}, authenticated=False
        )
    if answer.get("mfa_required"):
        code = args.totp or args.recovery_code
        if not code:
            code = (
                ctx.line("Authenticator code (or a recovery code): ")
                if not ctx.interactive()
                else getpass.getpass("Authenticator code (or a recovery code): ")
            ).strip()
        second: dict[str, Any] = {"mfa_token": answer["mfa_token"]}
        if args.recovery_code or not _TOTP_CODE.match(code):
            second["recovery_code"] = code
        else:
            second["code"] = code
        answer = await api.request("POST", "/api/auth/login/totp", json=second, authenticated=False)
    api.store_tokens(answer)
    me = await api.request("GET", "/api/auth/me")
    api.config.username = str(me.get("username") or "") or None
    api.config.user_id = str(me.get("id") or answer.get("user_id"))
    api.config.save()
    ctx.out.result(
        {
            "user_id": api.config.user_id,
            "username": api.config.username,
            "session_id": answer.get("session_id"),
            "email_verified": me.get("email_verified"),
            "server": api.server,
        },
        f"Signed in as {api.config.username} on {api.server}."
        + ("" if me.get("email_verified", True) else " (email not verified yet: run chat-cli verify)"),
    )


async def logout(args: argparse.Namespace, ctx: Context) -> None:
    api = ctx.api
    ended = True
    if api.config.refresh_token:
        try:
            await api.request("POST", "/api/auth/logout")
        except Refused as refused:
            # The session was already over on the server (expired, revoked): forgetting it here is the point.
            ended = refused.status in (401, None) and refused.code != "not_signed_in"
    api.config.forget_session()
    api.config.save()
    ctx.out.result({"signed_out": True, "server_session_ended": ended}, "Signed out.")


async def whoami(args: argparse.Namespace, ctx: Context) -> None:
    me = await ctx.api.request("GET", "/api/auth/me")
    unverified = "" if me["email_verified"] else " (unverified)"
    ctx.out.result(me, f"{me['username']} <{me['email']}> id {me['id']}{unverified}")


# -- rooms ------------------------------------------------------------------------------------------------------


async def my_rooms(api: Api) -> list[dict[str, Any]]:
    """Every room I am in, following the cursor."""
    rooms: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await api.request("GET", "/api/rooms/mine", params={"limit": PAGE, "cursor": cursor})
        rooms.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return rooms


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _by_name(rooms: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    wanted = name.lstrip("#").casefold()
    return [r for r in rooms if (r.get("name") or "").casefold() == wanted]


async def resolve_room(api: Api, ref: str, *, search_directory: bool = False) -> dict[str, Any]:
    """A room by id, by name among my rooms, by the person a direct room is with (username or display name), or
    (when asked) by name in the directory. A nameless room comes back with a ``title`` after its people."""
    if _is_uuid(ref):
        room = dict(await api.request("GET", f"/api/rooms/{ref}"))
        await add_titles(api, [room], api.config.user_id)
        return room
    mine = await my_rooms(api)
    found = _by_name(mine, ref)
    if not found and not search_directory:
        nameless = [r for r in mine if not r.get("name")]
        people = await add_titles(api, nameless, api.config.user_id)
        found = [
            r
            for r in nameless
            if r.get("kind") == "direct" and any(is_called(p, ref) for p in people.get(str(r["id"]), []))
        ]
    if not found and search_directory:
        page = await api.request("GET", "/api/rooms", params={"q": ref.lstrip("#"), "limit": PAGE})
        found = _by_name(page["items"], ref)
    if len(found) > 1:
        ids = ", ".join(str(r["id"]) for r in found)
        raise Usage(f"{len(found)} rooms are called {ref!r}; give the id: {ids}")
    if not found:
        where = "the rooms you can see" if search_directory else "your rooms"
        raise Refused("room_not_found", f"no room called {ref!r} among {where}")
    return found[0]


async def rooms(args: argparse.Namespace, ctx: Context) -> None:
    mine = await my_rooms(ctx.api)
    await add_titles(ctx.api, mine, ctx.api.config.user_id)
    unread = {u["room_id"]: u for u in await ctx.api.request("GET", "/api/messages/unread")}
    for room in mine:
        counts = unread.get(room["id"], {})
        room["unread"] = counts.get("unread", 0)
        room["last_seq"] = counts.get("last_seq", 0)
        room["read_seq"] = counts.get("read_seq", 0)
    ctx.out.result(mine, format_rooms(mine))


async def directory(args: argparse.Namespace, ctx: Context) -> None:
    page = await ctx.api.request("GET", "/api/rooms", params={"q": args.query, "limit": args.limit})
    items = page["items"]
    rows = [
        [
            str(r["id"]),
            str(r.get("name") or "-"),
            "password" if r.get("password_protected") else r["kind"],
            str(r.get("member_count", "")),
            str(r.get("topic") or ""),
        ]
        for r in items
    ]
    ctx.out.result(page, table(rows, ["ID", "NAME", "KIND", "MEMBERS", "TOPIC"]) or "(no rooms found)")


async def create(args: argparse.Namespace, ctx: Context) -> None:
    body: dict[str, Any] = {"kind": args.kind, "name": args.name}
    if args.topic:
        body["topic"] = args.topic
    if args.history:
        body["history"] = args.history
    if args.kind == "password":
        body["password"] = _room_password(args, ctx) or ""
    room = await ctx.api.request("POST", "/api/rooms", json=body)
    ctx.out.result(room, f"Created {room.get('name')} ({room['kind']}) id {room['id']}")


def _room_password(args: argparse.Namespace, ctx: Context) -> str | None:
    given: str | None = args.password
    if given is None:
        return None
    if given == "":  # `--password` without a value: ask for it
        return ctx.secret("Room password: ", env=ROOM_PASSWORD_ENV)
    return given


async def join(args: argparse.Namespace, ctx: Context) -> None:
    room = await resolve_room(ctx.api, args.room, search_directory=True)
    password = _room_password(args, ctx)
    body = {"password": password} if password is not None else None
    joined = await ctx.api.request("POST", f"/api/rooms/{room['id']}/join", json=body)
    ctx.out.result(joined, f"Joined {room_title(joined)} ({joined['id']})")


async def leave(args: argparse.Namespace, ctx: Context) -> None:
    room = await resolve_room(ctx.api, args.room)
    await ctx.api.request("POST", f"/api/rooms/{room['id']}/leave")
    ctx.out.result({"left": room["id"]}, f"Left {room_title(room)}")


async def dm(args: argparse.Namespace, ctx: Context) -> None:
    user_id = args.user
    shown = user_id
    if not _is_uuid(user_id):
        try:
            found = await user_by_username(ctx.api, user_id)
        except Refused as refused:
            if refused.code == "user_not_found":
                raise Refused("user_not_found", f"nobody is called {user_id!r}") from None
            raise
        user_id, shown = str(found["user_id"]), str(found["username"])
    room = await ctx.api.request("POST", "/api/rooms/direct", json={"user_id": user_id})
    ctx.out.result(room, f"Direct room with {shown}: {room['id']}")


async def members(args: argparse.Namespace, ctx: Context) -> None:
    room = await resolve_room(ctx.api, args.room)
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await ctx.api.request(
            "GET", f"/api/rooms/{room['id']}/members", params={"limit": PAGE, "cursor": cursor}
        )
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    names = {} if ctx.out.json_mode else await user_names(ctx.api, (str(m["user_id"]) for m in items))
    rows = [[names.get(str(m["user_id"]), "?"), str(m["role"]), str(m["joined_at"]), str(m["user_id"])] for m in items]
    ctx.out.result(items, table(rows, ["USER", "ROLE", "JOINED", "ID"]))


# -- messages ---------------------------------------------------------------------------------------------------


async def send(args: argparse.Namespace, ctx: Context) -> None:
    text = ctx.stdin.read() if args.text == "-" else args.text
    text = text.rstrip("\n")
    attach = [Path(a) for a in args.attach or []]
    if not text.strip() and not attach:
        raise Usage("the message is empty")
    for path in attach:
        if not path.is_file():
            raise Usage(f"no file {path} to attach")
    room = await resolve_room(ctx.api, args.room)
    room_id = str(room["id"])
    uploaded = [await files.upload(ctx.api, room_id, path) for path in attach]
    payload: dict[str, Any] = {
        "room_id": room_id,
        "client_msg_id": args.client_msg_id or new_client_msg_id(),
        "body": text,
    }
    if args.reply_to:
        payload["reply_to"] = args.reply_to
    if uploaded:
        payload["attachment_ids"] = [str(u["id"]) for u in uploaded]
    socket = Socket(ctx.api)
    await socket.connect()
    try:
        ack = await socket.request("message:send", payload)
    finally:
        await socket.close()
    result = {k: v for k, v in ack.items() if k != "ok"}
    if uploaded:
        result["attachments"] = uploaded
    ctx.out.result(result, str(ack["seq"]))


async def history(args: argparse.Namespace, ctx: Context) -> None:
    room = await resolve_room(ctx.api, args.room)
    params: dict[str, Any] = {"limit": args.limit}
    if args.after is not None:
        params.update(after_seq=args.after, order="oldest")
    else:
        params.update(before_seq=args.before, order="newest")
    page = await ctx.api.request("GET", f"/api/messages/rooms/{room['id']}/messages", params=params)
    items = sorted(page["items"], key=lambda m: int(m["seq"]))
    if ctx.out.json_mode:
        ctx.out.result(items)
        return
    known = await known_for(ctx.api, str(room["id"]), items, me=ctx.api.config.user_id, room=args.room)
    text = "\n".join(format_message(m, known) for m in items) or "(no messages)"
    ctx.out.result(items, text)


SEARCH_QUERY_CHARS = 200
"""The longest query the messages service takes (``GET /api/messages/search?q=``)."""


async def search(args: argparse.Namespace, ctx: Context) -> None:
    query = " ".join(args.query.split())
    if not query:
        raise Usage("give words to search for")
    if len(query) > SEARCH_QUERY_CHARS:
        raise Usage(f"a search is at most {SEARCH_QUERY_CHARS} characters, not {len(query)}")
    room = await resolve_room(ctx.api, args.room)
    params = {"q": query, "room_id": room["id"], "limit": args.limit, "cursor": args.cursor}
    page = await ctx.api.request("GET", "/api/messages/search", params=params)
    if ctx.out.json_mode:
        ctx.out.result(page)
        return
    items = page["items"]
    known = await known_for(ctx.api, str(room["id"]), items, me=ctx.api.config.user_id, room=args.room)
    ctx.out.result(page, "\n".join(format_message(m, known) for m in items) or f"(nothing matches {query!r})")
    if page.get("next_cursor"):
        more = shlex.join(["chat-cli", "search", args.room, query, "--cursor", str(page["next_cursor"])])
        ctx.out.note(f"older matches: {more}")


async def download(args: argparse.Namespace, ctx: Context) -> None:
    if not _is_uuid(args.attachment_id):
        raise Usage(f"not an attachment id: {args.attachment_id!r} (history shows them after 📎)")
    room = await resolve_room(ctx.api, args.room)
    to_stdout = args.output == "-"
    target = None if to_stdout else args.output
    saved = await files.download(
        ctx.api, str(room["id"]), args.attachment_id, target, ctx.out.stdout.buffer if to_stdout else None
    )
    if to_stdout:
        return
    ctx.out.result(saved, f"Saved {saved['filename']} ({human_size(saved['size'])}) to {saved['path']}")


async def open_room(args: argparse.Namespace, ctx: Context) -> None:
    from chat_cli.interactive import RoomView  # prompt_toolkit only for the command that needs it

    room = await resolve_room(ctx.api, args.room)
    if not ctx.api.config.user_id:
        me = await ctx.api.request("GET", "/api/auth/me")
        ctx.api.config.user_id, ctx.api.config.username = str(me["id"]), str(me["username"])
    transcript = Path(args.transcript).open("a", encoding="utf-8") if args.transcript else None  # noqa: SIM115, ASYNC230
    try:
        await RoomView(ctx.api, room, history=args.history, transcript=transcript).run()
    finally:
        if transcript is not None:
            transcript.close()
