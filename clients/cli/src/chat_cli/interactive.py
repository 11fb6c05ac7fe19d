"""``chat-cli open ROOM``: a full-screen room view. Messages arrive live, others' typing and presence show in the
status line, my messages carry delivered/read marks, and a lost connection is resumed from the last seq seen."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import HSplit, Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.styles import Style
from prompt_toolkit.widgets import TextArea

from chat_cli import files
from chat_cli.api import Api, user_names
from chat_cli.errors import CliError, Refused, Unreachable
from chat_cli.lookups import quoted_messages
from chat_cli.output import Known, format_message, room_title, who
from chat_cli.realtime import AckTimeout, Socket, new_client_msg_id

TYPING_RENEW_SECONDS = 2.0
RECONNECT_MAX_DELAY = 15.0
RECOVERY_PAGE = 100
NAME_LOOKUP_SECONDS = 3.0
"""How long the view waits for names before showing a short id instead (it asks once per user)."""
# Session ends after which reconnecting helps; any other reason (logout, password change…) ends the room view.
RECOVERABLE_ENDS = frozenset({"token_expired", "token_key_withdrawn", "slow_consumer", "frame_too_large"})
HELP = (
    "commands: /quit  /reply SEQ TEXT  /edit SEQ TEXT  /delete SEQ  /react SEQ EMOJI  /unreact SEQ EMOJI  "
    "/download SEQ  /away  /back  /help   (Ctrl-D quits)"
)

STYLE = Style.from_dict(
    {
        "header": "reverse",
        "status": "reverse",
        "notice": "italic ansibrightblack",
        "me": "ansigreen",
        "mark": "ansicyan",
        "file": "ansibrightblack",
    }
)


@dataclass
class RoomState:
    """What the view shows, kept apart from the screen so it can be tested without one."""

    room_id: str
    me: str
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    """client_msg_id → body of my messages not acked yet."""
    notices: list[tuple[int, str]] = field(default_factory=list)
    """(after seq, text): connection changes and errors, shown in the flow of messages."""
    typing: dict[str, float] = field(default_factory=dict)
    """user id → monotonic time the typing indicator expires."""
    presence: dict[str, str] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    index: dict[str, dict[str, Any]] = field(default_factory=dict)
    """message id → message: the room's messages, and the older ones that replies quote."""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    """attachment id → its name and size."""
    room_ref: str = ""
    """the room as the download command names it"""

    @property
    def last_seq(self) -> int:
        return max(self.messages, default=0)

    def add(self, message: dict[str, Any]) -> bool:
        """Keep a message; ``False`` if it is a duplicate of one already shown (same seq and version)."""
        seq = int(message["seq"])
        known = self.messages.get(seq)
        if known is not None and int(known.get("version", 1)) >= int(message.get("version", 1)):
            return False
        self.messages[seq] = message
        self.index[str(message.get("id"))] = message
        if message.get("sender_id") == self.me:
            self.pending.pop(str(message.get("client_msg_id")), None)
        self.typing.pop(str(message.get("sender_id")), None)
        for mention in message.get("mentions") or []:
            self.names[str(mention["user_id"])] = str(mention["username"])
        return True

    def by_id(self, message_id: str) -> dict[str, Any] | None:
        return self.index.get(message_id)

    def known(self) -> Known:
        return Known(me=self.me, names=self.names, messages=self.index, files=self.files, room=self.room_ref)

    def render(self, message: dict[str, Any]) -> str:
        """A message as its lines read: a reply quotes what it answers as that reads now (edits show)."""
        return format_message(message, self.known())

    def change(self, event: str, data: dict[str, Any]) -> None:
        """Apply ``message:edited``, ``message:deleted`` or ``message:reaction`` (in version order)."""
        message = self.messages.get(int(data.get("seq", 0))) or self.by_id(str(data.get("message_id")))
        if message is None or int(data.get("version", 0)) <= int(message.get("version", 0)):
            return
        message["version"] = data["version"]
        if event == "message:edited":
            message["body"] = data["body"]
            message["edited_at"] = data.get("edited_at")
        elif event == "message:deleted":
            message.update(deleted=True, body="", reactions=[])
        else:
            message["reactions"] = [{"emoji": e, "count": c} for e, c in (data.get("counts") or {}).items()]

    def mark(self, seq: int) -> str:
        """My message's mark: ✓✓ read by someone, ✓ delivered to someone, · stored."""
        others = [u for u in {*self.read, *self.delivered} if u != self.me]
        if any(self.read.get(u, 0) >= seq for u in others):
            return "✓✓"
        if any(max(self.delivered.get(u, 0), self.read.get(u, 0)) >= seq for u in others):
            return "✓"
        return "·"

    def typing_now(self, now: float) -> list[str]:
        for user in [u for u, until in self.typing.items() if until <= now]:
            del self.typing[user]
        return sorted(who(u, self.names, self.me) for u in self.typing if u != self.me)

    def lines(self) -> list[tuple[str, str]]:
        """(style, text) per line, in seq order, with notices where they happened and pending sends last."""
        out: list[tuple[str, str]] = []
        notices = sorted(self.notices, key=lambda n: n[0])
        i = 0
        for seq in sorted(self.messages):
            while i < len(notices) and notices[i][0] < seq:
                out.append(("class:notice", notices[i][1]))
                i += 1
            message = self.messages[seq]
            first, *more = self.render(message).split("\n")
            mine = message.get("sender_id") == self.me
            out.append(("class:me" if mine else "", first + (f"  {self.mark(seq)}" if mine else "")))
            out.extend(("class:file", line) for line in more)
        out.extend(("class:notice", text) for _, text in notices[i:])
        out.extend(("class:notice", f"… {body}") for body in self.pending.values())
        return out

    def status(self, now: float) -> str:
        typing = self.typing_now(now)
        online = sorted(
            who(u, self.names, self.me) + ("" if s == "online" else f" ({s})")
            for u, s in self.presence.items()
            if s != "offline"
        )
        parts = []
        if typing:
            parts.append(", ".join(typing) + (" is typing…" if len(typing) == 1 else " are typing…"))
        parts.append("online: " + (", ".join(online) if online else "nobody"))
        return "  |  ".join(parts)


def presence_note(*, away: bool, seen_as: str) -> str:
    """What /away and /back say: this device's status, and what the others see when another device decides it."""
    if away and seen_as == "online":
        return "you are away here; others still see you online because another device is active"
    if away:
        return "you are away; others see you as away"
    return "you are online"


def _ts(value: Any) -> float:
    """Monotonic deadline for an ISO ``expires_at`` (wall clock), at most 10 s ahead."""
    try:
        wall = datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.monotonic() + 6.0
    return time.monotonic() + max(0.0, min(10.0, wall - time.time()))


class RoomView:
    """Runs the screen and the connection until the user leaves."""

    def __init__(
        self,
        api: Api,
        room: dict[str, Any],
        *,
        history: int = 30,
        transcript: TextIO | None = None,
        socket_factory: Callable[[Api], Socket] = Socket,
    ) -> None:
        self.api = api
        self.room = room
        self.room_id = str(room["id"])
        self.state = RoomState(
            room_id=self.room_id, me=str(api.config.user_id or ""), room_ref=str(room.get("name") or self.room_id)
        )
        if api.config.username and api.config.user_id:
            self.state.names[api.config.user_id] = api.config.username
        self.history = history
        self.transcript = transcript
        self.socket = socket_factory(api)
        self.connected = asyncio.Event()
        self.lost = asyncio.Event()
        self.connection = "connecting"
        self.closing = False
        self.away = False
        """Whether the user said /away: a new connection starts online, so it is said again on each."""
        self.end_reason: CliError | None = None
        self.last_typing = 0.0
        self.last_read_sent = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        self.asked: set[str] = set()
        """User ids whose names were asked for already (unknown ones are not asked again)."""
        self.asked_about: set[str] = set()
        """Quoted messages and attachments asked for already."""
        self.input = TextArea(height=1, prompt="> ", multiline=False, accept_handler=self._accept)
        self.input.buffer.on_text_changed += self._typed
        self.app: Application[None] = self._application()

    # -- screen -------------------------------------------------------------------------------------------------

    def _application(self) -> Application[None]:
        keys = KeyBindings()

        @keys.add("c-d")
        @keys.add("c-c")
        def _quit(event: KeyPressEvent) -> None:
            self.quit()

        def messages() -> StyleAndTextTuples:
            fragments: StyleAndTextTuples = []
            for style, text in self.state.lines():
                fragments.append((style, text + "\n"))
            return fragments

        def cursor() -> Any:
            from prompt_toolkit.data_structures import Point

            return Point(0, max(0, len(self.state.lines()) - 1))

        name = (
            f"#{self.room['name']}" if self.room.get("name") else f"{room_title(self.room)} ({self.room.get('kind')})"
        )
        header = Window(
            FormattedTextControl(lambda: [("class:header", f" {name}  ({self.connection})  /help for commands")]),
            height=1,
        )
        body = Window(FormattedTextControl(messages, get_cursor_position=cursor), wrap_lines=True)
        status = Window(
            FormattedTextControl(lambda: [("class:status", " " + self.state.status(time.monotonic()))]), height=1
        )
        return Application(
            layout=Layout(HSplit([header, body, status, self.input]), focused_element=self.input),
            key_bindings=keys,
            style=STYLE,
            full_screen=True,
            mouse_support=False,
        )

    def refresh(self) -> None:
        with contextlib.suppress(Exception):  # no running app yet (start-up) or already gone (shutdown)
            self.app.invalidate()

    def notice(self, text: str) -> None:
        self.state.notices.append((self.state.last_seq, text))
        self._log(f"-- {text}")
        self.refresh()

    def _log(self, line: str) -> None:
        if self.transcript is not None:
            self.transcript.write(line + "\n")
            self.transcript.flush()

    async def learn(self, user_ids: Iterable[str]) -> None:
        """Look up the names of users not known yet (one request per 100 ids); best effort, a few seconds at most."""
        wanted = [u for u in dict.fromkeys(user_ids) if u and u != self.state.me and u not in self.asked]
        if not wanted:
            return
        self.asked.update(wanted)
        with contextlib.suppress(CliError, TimeoutError):
            self.state.names.update(await asyncio.wait_for(user_names(self.api, wanted), NAME_LOOKUP_SECONDS))
        self.refresh()

    async def fill_in(self, messages: list[dict[str, Any]]) -> None:
        """Look up what these messages refer to and the view does not know yet: the messages replies quote (and
        their authors) and the attachments' names and sizes; best effort, a few seconds at most."""
        replies = [m for m in messages if m.get("reply_to") and str(m["reply_to"]) not in self.asked_about]
        attachments = [
            str(a) for m in messages for a in m.get("attachment_ids") or [] if str(a) not in self.asked_about
        ]
        self.asked_about.update([str(m["reply_to"]) for m in replies] + attachments)
        if not replies and not attachments:
            return
        with contextlib.suppress(CliError, TimeoutError):
            quoted, found = await asyncio.wait_for(
                asyncio.gather(
                    quoted_messages(self.api, self.room_id, replies, self.state.index),
                    files.attachment_infos(self.api, self.room_id, attachments),
                ),
                NAME_LOOKUP_SECONDS,
            )
            self.state.index.update({k: v for k, v in quoted.items() if k not in self.state.index})
            self.state.files.update(found)
            await self.learn(str(m.get("sender_id")) for m in quoted.values())
        self.refresh()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def is_closing(self) -> bool:
        return self.closing

    def _unhandled(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An error no task handled becomes one notice line. prompt_toolkit's own handler would replace the screen
        with it and wait for Enter, swallowing what is being typed."""
        error = context.get("exception")
        self.notice(f"internal error: {error!r}" if error is not None else f"internal error: {context.get('message')}")

    def _exit_if_closing(self) -> None:
        if self.closing:  # the session ended before the screen was up
            self.app.exit()

    def quit(self) -> None:
        self.closing = True
        self.lost.set()
        if self.app.is_running:
            self.app.exit()

    # -- input --------------------------------------------------------------------------------------------------

    def _typed(self, buffer: Buffer) -> None:
        now = time.monotonic()
        if buffer.text and not buffer.text.startswith("/") and now - self.last_typing >= TYPING_RENEW_SECONDS:
            self.last_typing = now
            self._spawn(self._quiet("typing:start", {"room_id": self.room_id}))

    def _accept(self, buffer: Buffer) -> bool:
        text = buffer.text.strip()
        buffer.document = Document("")
        if text:
            self._spawn(self.command(text))
        return True  # keep the text area as it is (already cleared)

    async def command(self, text: str) -> None:
        """Handle one typed line: a message, or a /command."""
        if not text.startswith("/") or text.startswith("//"):
            await self.send(text[1:] if text.startswith("//") else text)
            return
        name, _, rest = text[1:].partition(" ")
        try:
            if name in ("quit", "q", "exit"):
                self.quit()
            elif name == "help":
                self.notice(HELP)
            elif name in ("away", "back"):
                self.away = name == "away"
                ack = await self.socket.request("presence:set", {"status": "away" if self.away else "online"})
                self.notice(presence_note(away=self.away, seen_as=str(ack.get("seen_as") or ack["status"])))
            elif name == "reply":
                seq, body = self._seq_and_text(rest)
                await self.send(body, reply_to=str(self._message(seq)["id"]))
            elif name == "edit":
                seq, body = self._seq_and_text(rest)
                payload = {"room_id": self.room_id, "message_id": str(self._message(seq)["id"]), "body": body}
                await self.socket.request("message:edit", payload)
            elif name == "delete":
                seq, _ = self._seq_and_text(rest + " x")
                await self.socket.request(
                    "message:delete", {"room_id": self.room_id, "message_id": str(self._message(seq)["id"])}
                )
            elif name == "download":
                await self.download(self._message(self._seq_and_text(rest + " x")[0]))
            elif name in ("react", "unreact"):
                seq, emoji = self._seq_and_text(rest)
                await self.socket.request(
                    "message:react",
                    {
                        "room_id": self.room_id,
                        "message_id": str(self._message(seq)["id"]),
                        "emoji": emoji,
                        "action": "add" if name == "react" else "remove",
                    },
                )
            else:
                self.notice(f"unknown command /{name}; {HELP}")
        except CliError as error:
            self.notice(f"/{name}: {getattr(error, 'code', 'error')}: {error}")

    async def download(self, message: dict[str, Any]) -> None:
        """Save a message's attachments in the current folder, each under its own name (never overwriting)."""
        if not message.get("attachment_ids"):
            self.notice(f"#{message['seq']} has no attachments")
        for attachment_id in message.get("attachment_ids") or []:
            saved = await files.download(self.api, self.room_id, str(attachment_id), None, None)
            self.notice(f"saved {saved['filename']} to {saved['path']}")

    def _seq_and_text(self, rest: str) -> tuple[int, str]:
        seq, _, text = rest.strip().lstrip("#").partition(" ")
        if not seq.isdigit() or not text.strip():
            raise Refused("usage", "give a message's seq (the #number) and then the text")
        return int(seq), text.strip()

    def _message(self, seq: int) -> dict[str, Any]:
        message = self.state.messages.get(seq)
        if message is None:
            raise Refused("not_found", f"no message #{seq} here")
        return message

    async def send(self, body: str, *, reply_to: str | None = None) -> None:
        client_msg_id = new_client_msg_id()
        self.state.pending[client_msg_id] = body
        self.refresh()
        self.last_typing = 0.0
        self._spawn(self._quiet("typing:stop", {"room_id": self.room_id}))
        try:
            while True:
                await self.connected.wait()
                try:
                    ack = await self.socket.send_message(
                        self.room_id, body, client_msg_id=client_msg_id, reply_to=reply_to
                    )
                    break
                except Refused as refused:
                    if refused.code != "timeout" or self.closing:
                        raise
                    # Not answered even after retries: the connection is likely gone. Same id again once back.
        except Refused as refused:
            self.state.pending.pop(client_msg_id, None)
            self.notice(f"not sent ({refused.code}): {body}")
            return
        self.state.pending.pop(client_msg_id, None)
        seq = int(ack["seq"])
        if seq not in self.state.messages:
            # The ack can beat the message's own broadcast; show it now, the broadcast then changes nothing.
            self.state.add(
                {
                    "id": ack["message_id"],
                    "room_id": self.room_id,
                    "seq": seq,
                    "sender_id": self.state.me,
                    "client_msg_id": client_msg_id,
                    "body": body,
                    "created_at": datetime.now().astimezone().isoformat(),
                    "reply_to": reply_to,
                    "version": 0,
                }
            )
            self._log(self.state.render(self.state.messages[seq]))
        self.refresh()

    async def _quiet(self, event: str, payload: dict[str, Any]) -> None:
        """Fire-and-forget events (typing, markers): a lost one matters little."""
        if self.socket.sio.connected:
            with contextlib.suppress(AckTimeout, Exception):
                await self.socket.call(event, payload, timeout=5)

    # -- server events ------------------------------------------------------------------------------------------

    def _handlers(self) -> None:
        on = self.socket.on

        async def message_new(data: dict[str, Any]) -> None:
            if str(data.get("room_id")) != self.room_id:
                return
            replaced = int(data["seq"]) in self.state.messages
            await self.learn([str(data.get("sender_id"))])
            await self.fill_in([data])
            if self.state.add(data):
                if not replaced:
                    self._log(self.state.render(data))
                self._mark_read()
                self.refresh()

        async def changed(event: str, data: dict[str, Any]) -> None:
            if str(data.get("room_id")) == self.room_id:
                self.state.change(event, data)
                self.refresh()

        async def marker(kind: str, data: dict[str, Any]) -> None:
            if str(data.get("room_id")) != self.room_id:
                return
            markers = self.state.read if kind == "read" else self.state.delivered
            user = str(data["user_id"])
            markers[user] = max(markers.get(user, 0), int(data["up_to_seq"]))
            self.refresh()

        async def typing(data: dict[str, Any]) -> None:
            if str(data.get("room_id")) != self.room_id or str(data.get("user_id")) == self.state.me:
                return
            if data.get("typing"):
                self._spawn(self.learn([str(data["user_id"])]))
                self.state.typing[str(data["user_id"])] = _ts(data.get("expires_at"))
            else:
                self.state.typing.pop(str(data["user_id"]), None)
            self.refresh()

        async def presence(data: dict[str, Any]) -> None:
            await presence_changes({"room_id": data.get("room_id"), "changes": [data]})

        async def presence_changes(data: dict[str, Any]) -> None:
            if str(data.get("room_id")) != self.room_id:
                return
            changes = [c for c in data.get("changes") or [] if isinstance(c, dict)]
            await self.learn(str(c["user_id"]) for c in changes)
            for change in changes:
                self.state.presence[str(change["user_id"])] = str(change["status"])
                self._log(f"-- {who(str(change['user_id']), self.state.names, self.state.me)} is {change['status']}")
            self.refresh()

        async def removed(data: dict[str, Any]) -> None:
            if str(data.get("room_id")) == self.room_id:
                self.end_reason = Refused("room_removed", "you are no longer a member of this room")
                self.quit()

        async def ended(data: dict[str, Any]) -> None:
            reason = str(data.get("reason", ""))
            if reason in RECOVERABLE_ENDS:
                self.notice(f"session ended ({reason}); reconnecting")
            else:
                self.end_reason = Refused(reason or "session_ended", "the server ended this session")
                self.quit()

        async def expiring(data: dict[str, Any]) -> None:
            with contextlib.suppress(CliError):
                token = await self.api.access_token(force=True)
                await self.socket.request("auth:refresh", {"token": token})

        async def disconnect(reason: Any = None) -> None:
            self.connected.clear()
            self.lost.set()

        on("message:new", message_new)
        # partial, not lambda: python-socketio awaits a handler only when it is a coroutine function.
        for event in ("message:edited", "message:deleted", "message:reaction"):
            on(event, functools.partial(changed, event))
        on("room:read", functools.partial(marker, "read"))
        on("room:delivered", functools.partial(marker, "delivered"))
        on("typing", typing)
        on("presence", presence)
        on("presence:changes", presence_changes)
        on("room:removed", removed)
        on("session:ended", ended)
        on("auth:expiring", expiring)
        on("disconnect", disconnect)

    def _mark_read(self) -> None:
        seq = self.state.last_seq
        if seq > self.last_read_sent and self.connected.is_set():
            self.last_read_sent = seq
            # Both markers: the gateway does not acknowledge delivery on its own, and senders' clients may look
            # at either. The view shows every message at once, so received is read here.
            self._spawn(self._quiet("room:delivered", {"room_id": self.room_id, "seq": seq}))
            self._spawn(self._quiet("room:read", {"room_id": self.room_id, "seq": seq}))

    # -- connection ---------------------------------------------------------------------------------------------

    async def load(self) -> None:
        """The latest page of history and the members' markers, before going live."""
        page = await self.api.request(
            "GET", f"/api/messages/rooms/{self.room_id}/messages", params={"limit": self.history, "order": "newest"}
        )
        await self.learn(str(m.get("sender_id")) for m in page["items"])
        for message in sorted(page["items"], key=lambda m: int(m["seq"])):
            self.state.add(message)
        await self.fill_in(page["items"])
        for message in sorted(page["items"], key=lambda m: int(m["seq"])):
            self._log(self.state.render(message))
        await self._load_receipts()

    async def _load_receipts(self) -> None:
        receipts = await self.api.request("GET", f"/api/messages/rooms/{self.room_id}/receipts")
        for m in receipts["markers"]:
            user = str(m["user_id"])
            self.state.read[user] = max(self.state.read.get(user, 0), int(m["read_seq"]))
            self.state.delivered[user] = max(self.state.delivered.get(user, 0), int(m["delivered_seq"]))

    async def subscribe(self) -> None:
        """Subscribe from the last seq seen; reload over HTTP when the gateway cannot replay the gap."""
        payload: dict[str, Any] = {"room_id": self.room_id}
        if self.state.messages:
            payload["last_seq"] = self.state.last_seq
        ack = await self.socket.request("room:subscribe", payload)
        # The answer's list replaces what was shown: who left while the view was away must not stay online.
        self.state.presence = {str(entry["user_id"]): str(entry["status"]) for entry in ack.get("presence") or []}
        await self.learn(list(self.state.presence))
        self._log("-- " + self.state.status(time.monotonic()))
        if ack.get("recovered") is False:
            self.notice("too much was missed to replay; reloading history")
            await self._catch_up(int(ack.get("seq") or 0))
        if ack.get("changes_recovered") is False:
            await self._load_receipts()
        self._mark_read()

    async def _catch_up(self, until: int) -> None:
        while self.state.last_seq < until:
            page = await self.api.request(
                "GET",
                f"/api/messages/rooms/{self.room_id}/messages",
                params={"after_seq": self.state.last_seq, "order": "oldest", "limit": RECOVERY_PAGE},
            )
            if not page["items"]:
                return
            await self.fill_in(page["items"])
            for message in page["items"]:
                if self.state.add(message):
                    self._log(self.state.render(message))

    async def supervise(self) -> None:
        """Stay connected: on every loss, say so once, reconnect with backoff and resubscribe from the last seq."""
        delay = 0.5
        first = True
        told = False
        """Whether this outage's first failed attempt was shown (the next ones only change the header)."""
        while not self.closing:
            try:
                self.lost.clear()
                await self.socket.connect()
                await self.subscribe()
                if self.away:  # best effort: failing to say it again must not end the view
                    await self._quiet("presence:set", {"status": "away"})
            except Unreachable as error:
                self.connection = "offline" if first else "reconnecting"
                if not told:
                    self.notice(f"cannot reach the server ({error}); retrying…")
                told = True
            except Refused as refused:
                if refused.code in ("timeout", "unavailable", "internal_error", "upstream_unavailable"):
                    if not told:
                        self.notice(f"server busy ({refused.code}); retrying…")
                    told = True
                else:
                    self.end_reason = refused
                    self.quit()
                    return
            else:
                delay, told = 0.5, False
                self.connection = "live"
                self.connected.set()
                if not first:
                    self.notice("reconnected")
                first = False
                self.refresh()
                await self.lost.wait()
                if self.is_closing():  # a method: mypy would keep `closing` narrowed across the await
                    return
                self.connected.clear()
                self.connection = "reconnecting"
                self.notice("connection lost; reconnecting…")
                with contextlib.suppress(Exception):
                    await self.socket.close()
                continue
            with contextlib.suppress(Exception):
                await self.socket.close()
            self.refresh()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_DELAY)

    async def run(self) -> None:
        """Until Ctrl-D, /quit, or the server ends the session (then raise why)."""
        self._handlers()
        await self.load()
        supervisor = asyncio.ensure_future(self.supervise())

        async def tick() -> None:
            while True:  # typing indicators expire on their own
                await asyncio.sleep(0.5)
                self.refresh()

        ticker = asyncio.ensure_future(tick())
        loop = asyncio.get_running_loop()
        reporting = loop.get_exception_handler()
        loop.set_exception_handler(self._unhandled)
        try:
            await self.app.run_async(pre_run=self._exit_if_closing, set_exception_handler=False)
        finally:
            loop.set_exception_handler(reporting)
            self.closing = True
            self.lost.set()
            ticker.cancel()
            if self.socket.sio.connected:
                await self._quiet("typing:stop", {"room_id": self.room_id})
            for task in list(self.tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(supervisor, 5)
            supervisor.cancel()
            with contextlib.suppress(Exception):
                await self.socket.close()
        if self.end_reason is not None:
            raise self.end_reason
