"""``chat-cli open ROOM``: a full-screen room view. Messages arrive live, others' typing and presence show in the
status line, my messages carry delivered/read marks, and a lost connection is resumed from the last seq seen.

This module is the session: the connection, the server's events, sending, and the loop until the user leaves. What
the view shows is room_state.py, the screen room_screen.py, and what typed commands do room_commands.py."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TextIO

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.document import Document
from prompt_toolkit.widgets import TextArea

from chat_cli import files
from chat_cli.api import Api, user_names
from chat_cli.errors import CliError, Refused, Unreachable
from chat_cli.lookups import quoted_messages
from chat_cli.output import who
from chat_cli.realtime import AckTimeout, Socket, new_client_msg_id
from chat_cli.room_commands import run_command
from chat_cli.room_screen import room_screen
from chat_cli.room_state import RoomState, typing_until

TYPING_RENEW_SECONDS = 2.0
RECONNECT_MAX_DELAY = 15.0
RECOVERY_PAGE = 100
NAME_LOOKUP_SECONDS = 3.0
"""How long the view waits for names before showing a short id instead (it asks once per user)."""
# Session ends after which reconnecting helps; any other reason (logout, password change…) ends the room view.
RECOVERABLE_ENDS = frozenset({"token_expired", "token_key_withdrawn", "slow_consumer", "frame_too_large"})


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
        self.app: Application[None] = room_screen(self)

    # -- screen -------------------------------------------------------------------------------------------------

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
            self._spawn(run_command(self, text))
        return True  # keep the text area as it is (already cleared)

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
                self.state.typing[str(data["user_id"])] = typing_until(data.get("expires_at"))
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
            await self._catch_up(after=int(payload.get("last_seq", 0)), until=int(ack.get("seq") or 0))
        if ack.get("changes_recovered") is False:
            await self._load_receipts()
        self._mark_read()

    async def _catch_up(self, *, after: int, until: int) -> None:
        """Page the history from ``after`` up to ``until`` (the seq the answer gave). The pages go by their own
        cursor: live messages after ``until`` keep arriving meanwhile, and the newest one shown is not where the
        history read has got to."""
        cursor = after
        while cursor < until:
            page = await self.api.request(
                "GET",
                f"/api/messages/rooms/{self.room_id}/messages",
                params={"after_seq": cursor, "order": "oldest", "limit": RECOVERY_PAGE},
            )
            if not page["items"]:
                return
            await self.fill_in(page["items"])
            for message in page["items"]:
                if self.state.add(message):
                    self._log(self.state.render(message))
            cursor = max(int(message["seq"]) for message in page["items"])

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
