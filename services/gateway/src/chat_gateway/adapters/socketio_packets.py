"""Socket.IO packets decoded with orjson and a bounded nesting depth, and the server that answers the ones it
cannot use: the only module that touches python-socketio's packet and server internals (the version bound is in
the gateway's pyproject; tests/test_socketio_packets.py fails when the library changes under it).

python-socketio decodes a packet inside its Engine.IO message handler, and a decode that raises is logged and
dropped: the client never hears back. A payload nested ~1,500 levels deep did that with RecursionError. Here the
JSON decoder refuses nesting past ``MAX_JSON_DEPTH``, and a packet whose JSON is refused, or that is not an event
(an array starting with the event's name), still decodes: its type, namespace and ack id come before the JSON in
the packet text, and its arguments become one ``Undecodable``. ``GuardedServer`` answers such an event with an ack
``validation_failed`` when it carries an ack id, and drops it otherwise.

A packet with no usable type at all (empty, not a digit, a type only a server sends, more attachments than a
packet may announce) has no ack id to answer either: python-socketio raised in its handler, and python-engineio
logged a traceback at ERROR for each such message, as often as a client sent one. Here it raises
``MalformedPacket``, and ``GuardedServer`` ends that socket with ``session:ended`` ``malformed_packet`` and closes
the connection, as the Node server does with a packet it cannot parse. A binary message that no binary packet
waits for (the attachment of a binary event refused for its JSON, which was answered already) is dropped.

It also runs what a handler asks to happen once its answer is written (``after_answer``), and writes an event to
one socket at once (``write_now``), in order with everything written to it before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

import orjson
import socketio
import socketio.packet
import structlog

from chat_contracts.fields import MAX_JSON_DEPTH
from chat_gateway.adapters import fanout
from chat_gateway.adapters.ws_frames import ack_frame, event_frame

log = structlog.get_logger("chat.gateway")

LIFECYCLE_NAMES: Final = frozenset({"connect", "disconnect", "*"})

_AFTER_ANSWER: ContextVar[list[Callable[[], object]] | None] = ContextVar("after_answer", default=None)
"""What the event being handled asked to run once its answer is written (see ``after_answer``)."""


def after_answer(action: Callable[[], object]) -> None:
    """Run ``action`` as soon as the answer (ack) of the client event being handled is written to its socket, or
    once its handler is done when it has no answer to write; before anything else is written to that socket by
    the handler's task. At once when no client event is being handled (a direct call in a test)."""
    pending = _AFTER_ANSWER.get()
    if pending is None:
        action()
    else:
        pending.append(action)


@dataclass(frozen=True)
class Undecodable:
    """Stands for the arguments of an event that could not be used; ``message`` says why, for the client."""

    message: str


class UndecodablePayload(ValueError):
    """A packet's JSON is not JSON, or nests deeper than ``MAX_JSON_DEPTH``."""


class MalformedPacket(ValueError):
    """A packet with no type a client may send, or that cannot be read far enough to find one."""


MALFORMED_PACKET: Final = "malformed_packet"
"""The ``session:ended`` reason of a socket that sent a ``MalformedPacket``."""
CLIENT_PACKET_TYPES: Final = frozenset(
    {
        socketio.packet.CONNECT,
        socketio.packet.DISCONNECT,
        socketio.packet.EVENT,
        socketio.packet.ACK,
        socketio.packet.BINARY_EVENT,
        socketio.packet.BINARY_ACK,
    }
)
"""What a client sends (``CONNECT_ERROR`` comes only from a server)."""


def loads(text: str, **_: Any) -> Any:
    """JSON text to Python values, refusing nesting deeper than ``MAX_JSON_DEPTH``."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise UndecodablePayload(TOO_DEEP) from None
        raise UndecodablePayload("The payload is not valid JSON.") from None
    # Nesting cannot exceed the number of opening brackets, and counting them is cheap: most packets stop there.
    may_nest_too_deep = not isinstance(text, str) or text.count("[") + text.count("{") > MAX_JSON_DEPTH
    if may_nest_too_deep and _deeper_than(value, MAX_JSON_DEPTH):
        raise UndecodablePayload(TOO_DEEP)
    return value


TOO_DEEP: Final = f"The payload nests arrays and objects more than {MAX_JSON_DEPTH} levels deep."


def dumps(value: Any, **_: Any) -> str:
    """Python values to compact JSON text (Socket.IO text frames carry ``str``)."""
    return orjson.dumps(value).decode()


def _deeper_than(value: Any, limit: int) -> bool:
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


class _Json:
    """The ``json`` module interface python-socketio's packets call."""

    loads = staticmethod(loads)
    dumps = staticmethod(dumps)


class Packet(socketio.packet.Packet):  # type: ignore[misc]
    """A Socket.IO packet whose JSON goes through orjson; an unusable event decodes to ``[Undecodable]``."""

    json = _Json
    packet_type: int
    data: Any

    def decode(self, encoded_packet: str | bytes) -> int:
        try:
            attachments: int = super().decode(encoded_packet) or 0
        except UndecodablePayload as exc:
            # The JSON was the last part read: type, namespace and id are set. The attachments that a binary
            # event announced cannot be trusted, so it is answered now, as a plain event.
            if self.packet_type == socketio.packet.BINARY_EVENT:
                self.packet_type = socketio.packet.EVENT
            elif self.packet_type == socketio.packet.BINARY_ACK:
                self.packet_type = socketio.packet.ACK
            self.data = [Undecodable(str(exc))] if self.packet_type == socketio.packet.EVENT else None
            return 0
        except (ValueError, TypeError) as exc:  # no digit for a type, too many attachments, bytes read as text
            raise MalformedPacket(f"unreadable packet: {str(exc)[:80]}") from None
        if self.packet_type not in CLIENT_PACKET_TYPES:
            raise MalformedPacket(f"packet type {self.packet_type!r} is not one a client sends")
        if self.packet_type in (socketio.packet.EVENT, socketio.packet.BINARY_EVENT) and not (
            isinstance(self.data, list) and self.data and isinstance(self.data[0], str)
        ):
            self.data = [Undecodable("An event is an array: the event's name, then its payload.")]
        return attachments


Refuse = Callable[[str, str, str], Awaitable[dict[str, Any]]]
"""(Socket.IO sid, error code, message) → the ack refusing an event no handler may see."""
EndSocket = Callable[[str, str], Awaitable[None]]
"""(Socket.IO sid, reason) → tell the socket why (``session:ended``) and disconnect it (``Delivery.end``)."""


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """An AsyncServer on ``Packet`` that refuses the events no handler may see, through ``refuse`` (which also
    counts them against the sender's budget):

    - an ``Undecodable`` one: ``validation_failed``;
    - one named ``connect``, ``disconnect`` or ``*``: python-socketio would hand it to the lifecycle handler of that
      name, or to the catch-all with its arguments shifted, so a client could re-run authentication or drop its
      own connection state: ``unknown_event``.

    Such an event with an ack id gets one ack; without one, it is dropped.

    Every new engine.io socket becomes a ``fanout.FastSocket`` (written without a writer task per socket)."""

    def __init__(
        self,
        *,
        refuse: Refuse,
        end: EndSocket | None = None,
        compression_min_bytes: int = 1024,
        **options: Any,
    ) -> None:
        super().__init__(serializer=Packet, **options)
        self._refuse = refuse
        self._end = end
        self._compression_min_bytes = compression_min_bytes

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> None:
        fanout.adopt(
            self.eio,
            eio_sid,
            environ=environ,
            compression_min_bytes=self._compression_min_bytes,
            on_frame_too_large=self._frame_too_large,
        )
        await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: list[Any], namespace: str, id: int | None
    ) -> None:
        # python-socketio runs each event in a task of its own, here: the handler, then its ack.
        pending: list[Callable[[], object]] = []
        token = _AFTER_ANSWER.set(pending)
        try:
            answer = await server._trigger_event(data[0], namespace, sid, *data[1:])
            if answer is not self.not_handled and id is not None:
                await self._send_ack(eio_sid, namespace, id, answer)
        finally:
            _AFTER_ANSWER.reset(token)
            for action in pending:
                action()

    async def _send_ack(self, eio_sid: str, namespace: str, id: int, answer: Any) -> None:
        """The ack of an event: an answer of JSON values on the default namespace is encoded once, straight into
        its frame (python-socketio's packet would search it for binary parts, encode it, then wrap it in an
        Engine.IO packet); anything else goes python-socketio's way, as a tuple answer's several arguments do."""
        socket = fanout.socket_of(self.eio, eio_sid)
        if socket is not None and namespace == "/" and isinstance(answer, dict):
            try:
                encoded = orjson.dumps(answer)
            except TypeError:  # bytes in it: a binary ack
                pass
            else:
                socket.send_frame(ack_frame(id, encoded))
                return
        arguments = [] if answer is None else list(answer) if isinstance(answer, tuple) else [answer]
        await self._send_packet(
            eio_sid, self.packet_class(socketio.packet.ACK, namespace=namespace, id=id, data=arguments)
        )

    def write_now(self, sid: str, event: str, payload: Any) -> None:
        """Write ``event`` to the socket ``sid`` on the default namespace now, behind what was written to it before
        (``emit`` writes from a task of its own, so what is written meanwhile may overtake it). Nothing when the
        socket is gone."""
        eio_sid = self.manager.eio_sid_from_sid(sid, "/")
        socket = fanout.socket_of(self.eio, eio_sid) if eio_sid is not None else None
        if socket is not None:
            socket.send_frame(event_frame(event, orjson.dumps(payload)))

    async def _frame_too_large(self, eio_sid: str) -> None:
        """A websocket frame over the limit: tell the socket (``session:ended``), then it is closed."""
        await self._end_socket(eio_sid, fanout.FRAME_TOO_LARGE)

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        awaited = eio_sid in self._binary_packet
        if isinstance(data, bytes) and not awaited:
            # The attachment of a binary event refused for its JSON (answered already), or stray bytes: dropped.
            return
        try:
            if not data and not awaited:  # python-socketio would take it for an event without arguments
                raise MalformedPacket("an empty packet")
            await super()._handle_eio_message(eio_sid, data)
        except MalformedPacket as exc:
            # As the Node server does: the connection goes too, so a client that ignores the Socket.IO
            # disconnect cannot keep sending what cannot be read (websocket close code 1002, protocol error).
            log.info("gateway.malformed_packet", error=str(exc))
            socket = fanout.socket_of(self.eio, eio_sid)
            if socket is not None:
                socket.close_with(fanout.PROTOCOL_ERROR, MALFORMED_PACKET)
            await self._end_socket(eio_sid, MALFORMED_PACKET)
            await self.eio.disconnect(eio_sid)

    async def _end_socket(self, eio_sid: str, reason: str) -> None:
        """Tell the socket why (``session:ended``) and close it; only close it before it joined the namespace."""
        sid = self.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is not None and self._end is not None:
            await self._end(sid, reason)
        else:
            await self.eio.disconnect(eio_sid)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: list[Any]) -> None:
        namespace = namespace or "/"
        if data and isinstance(data[0], Undecodable):
            code, message = "validation_failed", data[0].message
        elif data and data[0] in LIFECYCLE_NAMES:
            code, message = "unknown_event", f"{data[0]!r} is not an event a client can send."
        else:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if id is None or sid is None or not self.manager.is_connected(sid, namespace):
            return
        await self._send_ack(eio_sid, namespace, id, await self._refuse(sid, code, message))
