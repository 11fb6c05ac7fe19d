"""Websocket frames written straight to uvicorn's Sans-I/O transport: a Socket.IO event encoded once into a
complete frame (``Frame``) for every recipient, and a per-connection ``FrameWriter`` that joins the frames written
in one turn of the event loop into one ``transport.write`` (``adapters/fanout`` gives each websocket one). The only
module that touches uvicorn's internals (its Sans-I/O websocket protocol)."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

_TEXT_FIN = 0x81


def websocket_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented websocket text frame (what a server sends) carrying ``payload``."""
    size = len(payload)
    if size < 126:
        return bytes((_TEXT_FIN, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", _TEXT_FIN, 126, size) + payload
    return struct.pack("!BBQ", _TEXT_FIN, 127, size) + payload


@dataclass(frozen=True, slots=True)
class Frame:
    """One Socket.IO event for many sockets: the Engine.IO packet text, and the websocket frame carrying it."""

    packet: bytes
    wire: bytes

    @property
    def message(self) -> str:
        """The Socket.IO packet: what an Engine.IO MESSAGE packet carries after its ``4``."""
        return self.packet[1:].decode()


def event_frame(event: str, payload_json: bytes) -> Frame:
    """The frame of a Socket.IO event on the default namespace: Engine.IO ``4`` (message), Socket.IO ``2``
    (event), then ``[event, payload]`` as JSON; ``payload_json`` is the payload already encoded."""
    packet = b"42[" + orjson.dumps(event) + b"," + payload_json + b"]"
    return Frame(packet=packet, wire=websocket_frame(packet))


def ack_frame(ack_id: int, answer_json: bytes) -> Frame:
    """The frame of a Socket.IO ack on the default namespace: Engine.IO ``4``, Socket.IO ``3`` (ack), the ack id,
    then ``[answer]`` as JSON; ``answer_json`` is the answer already encoded."""
    packet = b"43" + str(ack_id).encode() + b"[" + answer_json + b"]"
    return Frame(packet=packet, wire=websocket_frame(packet))


class FrameWriter:
    """Writes one websocket's frames to its transport, joining what is written in one turn of the loop."""

    __slots__ = ("_compress_from", "_pending", "_pending_bytes", "_protocol", "closed")

    def __init__(self, protocol: WebSocketsSansIOProtocol, compress_from: int | None) -> None:
        self._protocol = protocol
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._compress_from = compress_from if protocol.conn.extensions else None
        self.closed = False

    @classmethod
    def attach(cls, ws: Any, *, compression_min_bytes: int) -> FrameWriter | None:
        """A writer for python-engineio's ASGI websocket ``ws`` when uvicorn's Sans-I/O protocol serves it (its
        handshake is complete by now: what only the handshake used is let go)."""
        send = getattr(ws, "asgi_send", None)
        protocol = getattr(send, "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol) or protocol.transport is None:
            return None
        if protocol.handshake_complete:
            request = protocol.request
            if request is not None:
                # websockets' parser keeps the handshake request for the life of the connection (a local of its
                # generator): its headers, about 3 KB, are read by nothing once the websocket is up.
                request.headers.clear()
            protocol.request = None  # type: ignore[assignment]
            protocol.response = None  # type: ignore[assignment]
            headers = protocol.scope.get("headers")
            if isinstance(headers, list):
                headers.clear()
        return cls(protocol, compression_min_bytes)

    @property
    def compressing(self) -> bool:
        """The connection negotiated permessage-deflate and frames from ``compress_from`` bytes are deflated."""
        return self._compress_from is not None

    @property
    def usable(self) -> bool:
        protocol = self._protocol
        return not (self.closed or protocol.close_sent or protocol.disconnected or protocol.transport.is_closing())

    def write(self, frame: Frame) -> None:
        if self._compress_from is not None and len(frame.packet) >= self._compress_from:
            self._write_compressed(frame.packet)
        else:
            self._queue(frame.wire)

    def write_packet(self, packet: str) -> None:
        data = packet.encode()
        if self._compress_from is not None and len(data) >= self._compress_from:
            self._write_compressed(data)
        else:
            self._queue(websocket_frame(data))

    def _queue(self, wire: bytes) -> None:
        if not self.usable:
            return
        if not self._pending:
            _DIRTY.add(self)
        self._pending.append(wire)
        self._pending_bytes += len(wire)

    def _write_compressed(self, data: bytes) -> None:
        if not self.usable:
            return
        self.flush()  # what is queued goes first
        conn = self._protocol.conn
        conn.send_text(data)
        self._protocol.transport.write(b"".join(conn.data_to_send()))

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        self._pending_bytes = 0
        _DIRTY.discard(self)
        if self.usable:
            self._protocol.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def backlog(self) -> int:
        """Bytes written to the socket and not yet sent."""
        if not self.usable:
            return 0
        return self._protocol.transport.get_write_buffer_size() + self._pending_bytes


class _Dirty:
    """Writers with queued frames; flushed once per turn of the event loop."""

    def __init__(self) -> None:
        self._writers: dict[FrameWriter, None] = {}
        self._scheduled = False

    def add(self, writer: FrameWriter) -> None:
        self._writers[writer] = None
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def discard(self, writer: FrameWriter) -> None:
        self._writers.pop(writer, None)

    def _flush(self) -> None:
        self._scheduled = False
        writers, self._writers = self._writers, {}
        for writer in writers:
            writer.flush()


_DIRTY = _Dirty()
