"""Writing Socket.IO packets to websockets without python-engineio's per-socket writer task: the only module that
touches python-engineio's internals, as ``ws_frames`` is the only one that touches uvicorn's (version bounds in the
gateway's pyproject; the contract test services/gateway/tests/test_fanout_transport.py fails when either library
changes under them).

python-engineio gives every websocket a writer task that waits on a queue (with an ``asyncio.wait_for`` task per
wait), a task per received packet and a task per heartbeat, and hands each packet to the ASGI server, which frames
it in Python. Here a websocket served by uvicorn's Sans-I/O ``websockets`` protocol gets a ``FrameWriter``
instead (``adapters/ws_frames``):

- every packet for the socket (acks, events, heartbeats) is framed here and written straight to the connection's
  transport, in the order it was sent: no queue, no writer task;
- a broadcast is encoded once into a complete websocket frame (``Frame``) and the same bytes go to every recipient;
- writes made in one turn of the event loop are joined into one ``transport.write`` per socket (a batch of events
  costs a socket one system call, not one per event);
- the heartbeat is a timer, not a sleeping task;
- a received message goes to python-socketio from the socket's reader, without a task per packet (python-socketio
  runs each event's handler in a task of its own, so an event waiting for its ack holds up nothing);
- a socket's backlog is the bytes its transport has not sent yet;
- what only the handshake needed is let go once the websocket is up (uvicorn's parsed request and response and
  the scope's header list, python-engineio's WSGI environ and its packet queue): an idle connection holds only
  what it uses;
- a frame over the size limit (``max_http_buffer_size``, counted in bytes) ends that socket only: the
  ``on_frame_too_large`` callback tells it why (``session:ended``), and the websocket is closed with code 1009
  (message too big) and reason ``frame_too_large``.

Sockets on long-polling, or served by another ASGI server, keep python-engineio's own path.

permessage-deflate (``CHAT_WS_COMPRESSION``): frames shorter than ``compression_min_bytes`` go uncompressed (RFC
7692 lets a sender compress message by message); longer ones are compressed by the connection's own compressor.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import engineio.async_socket
import engineio.exceptions
import engineio.packet

from chat_gateway.adapters.ws_frames import Frame, FrameWriter

_POLLED_PACKET_BYTES = 512
"""A long-polling socket's backlog is counted in queued packets; each is taken for this many bytes."""
MESSAGE_TOO_BIG = 1009
"""RFC 6455's close code for a message too big to process."""
PROTOCOL_ERROR = 1002
"""RFC 6455's close code for a protocol error."""
FRAME_TOO_LARGE = "frame_too_large"

FrameTooLarge = Callable[[str], Awaitable[None]]
"""(engine.io sid) → tell the socket's client why it is being closed, and close it (``Delivery.end``)."""


class FastSocket(engineio.async_socket.AsyncSocket):  # type: ignore[misc]
    """python-engineio's socket, writing through a ``FrameWriter`` once upgraded to a websocket served by uvicorn."""

    last_ping: float | None
    queue: Any
    connected: bool
    upgraded: bool
    upgrading: bool
    closed: bool
    closing: bool
    writer: FrameWriter | None = None
    compression_min_bytes: int = 1024
    on_frame_too_large: FrameTooLarge | None = None
    environ: dict[str, Any] | None = None
    """The WSGI environ of the request that opened the socket (python-socketio keeps it for the connection)."""
    _ping_timer: asyncio.TimerHandle | None = None
    _ws: Any = None
    _close_code: tuple[int, str] | None = None

    async def send(self, pkt: engineio.packet.Packet) -> None:
        writer = self.writer
        if writer is None:
            await super().send(pkt)
            return
        if self.closed or not await self.check_ping_timeout():
            return
        writer.write_packet(pkt.encode())

    def send_frame(self, frame: Frame) -> None:
        """A broadcast's frame, as is (the caller has checked the socket is open)."""
        writer = self.writer
        if writer is not None:
            writer.write(frame)
        else:
            self.queue.put_nowait(engineio.packet.Packet(engineio.packet.MESSAGE, frame.message))

    def close_with(self, code: int, reason: str) -> None:
        """The websocket close code and reason of this socket's coming close (1000 and no reason otherwise)."""
        self._close_code = (code, reason)

    def backlog(self) -> int:
        """Bytes waiting to be sent to the client (estimated from queued packets on long-polling)."""
        writer = self.writer
        return writer.backlog() if writer is not None else self.queue.qsize() * _POLLED_PACKET_BYTES

    def schedule_ping(self) -> None:
        # A timer instead of python-engineio's task per heartbeat (a task per socket, asleep most of the time).
        if self.last_ping:
            self.last_ping = None
            loop = asyncio.get_running_loop()
            self._ping_timer = loop.call_later(self.server.ping_interval, self._ping_now)

    def _ping_now(self) -> None:
        self._ping_timer = None
        if self.closing or self.closed:
            return
        self.last_ping = time.time()
        if self.writer is not None:
            self.writer.write_packet(engineio.packet.Packet(engineio.packet.PING).encode())
            return
        task = asyncio.get_running_loop().create_task(self.send(engineio.packet.Packet(engineio.packet.PING)))
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        await super().close(wait=wait, abort=abort, reason=reason)
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        writer = self.writer
        if writer is not None and not writer.closed:
            writer.flush()
            writer.closed = True
            if self._ws is not None:  # ends the websocket too, so a client that ignores the CLOSE packet is gone
                await self._close_websocket(self._ws)

    async def _websocket_handler(self, ws: Any) -> Any:
        writer = FrameWriter.attach(ws, compression_min_bytes=self.compression_min_bytes)
        if writer is None:
            return await super()._websocket_handler(ws)
        if self.connected:  # upgrading from long-polling: the probe, then the upgrade packet
            if not await self._upgrade(ws):
                return None
        else:
            self.connected = True
            self.upgraded = True
        self.writer, self._ws = writer, ws
        self._drain_queue()
        self.queue = _NO_QUEUE  # nothing is queued once the writer writes
        _trim(self.environ)
        try:
            await self._read(ws)
        finally:
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
            if not writer.closed:
                writer.flush()
                writer.closed = True
                await self._close_websocket(ws)
        return None

    async def _close_websocket(self, ws: Any) -> None:
        code, reason = self._close_code or (1000, "")
        with contextlib.suppress(Exception):
            await ws.asgi_send({"type": "websocket.close", "code": code, "reason": reason})

    async def _upgrade(self, ws: Any) -> bool:
        self.upgrading = True
        try:
            probe = engineio.packet.Packet(encoded_packet=await self._receive(ws))
            if probe.packet_type != engineio.packet.PING or probe.data != "probe":
                return False
            await ws.send(engineio.packet.Packet(engineio.packet.PONG, data="probe").encode())
            await self.queue.put(engineio.packet.Packet(engineio.packet.NOOP))  # ends the poll in flight
            upgrade = engineio.packet.Packet(encoded_packet=await self._receive(ws))
            if upgrade.packet_type != engineio.packet.UPGRADE:
                return False
            self.upgraded = True
            return True
        except (OSError, ValueError):
            return False
        finally:
            self.upgrading = False

    def _drain_queue(self) -> None:
        """Packets queued before the websocket took over (the OPEN packet, a CONNECT answer) go first."""
        writer = self.writer
        while writer is not None:
            try:
                pkt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            self.queue.task_done()
            if pkt is not None and pkt.packet_type != engineio.packet.NOOP:
                writer.write_packet(pkt.encode())

    async def _receive(self, ws: Any) -> Any:
        data = await ws.wait()
        if data and _too_large(data, self.server.max_http_buffer_size):
            raise _Oversize
        return data

    async def _read(self, ws: Any) -> None:
        while not self.closed:
            try:
                data = await self._receive(ws)
            except _Oversize:
                self._close_code = (MESSAGE_TOO_BIG, FRAME_TOO_LARGE)
                if self.on_frame_too_large is not None:
                    await self.on_frame_too_large(self.sid)
                return
            except (OSError, ValueError):
                return
            if data is None:
                return
            try:
                await self._dispatch(engineio.packet.Packet(encoded_packet=data))
            except (engineio.exceptions.UnknownPacketError, ValueError):
                continue
            except engineio.exceptions.SocketIsClosedError:
                return

    async def _dispatch(self, pkt: engineio.packet.Packet) -> None:
        """A packet the client sent. A message goes to the server's handler here, in this reader, not in a task of
        its own as python-engineio's ``receive`` would make: python-socketio's handler makes a task per event
        itself, so an event waiting for its ack never holds up the next one."""
        if pkt.packet_type == engineio.packet.MESSAGE:
            await self.server._trigger_event("message", self.sid, pkt.data, run_async=False)
        else:
            await self.receive(pkt)


class _NoQueue:
    """What stands for python-engineio's packet queue once a ``FrameWriter`` writes: always empty."""

    def qsize(self) -> int:
        return 0

    def empty(self) -> bool:
        return True

    async def join(self) -> None:
        return None

    def get_nowait(self) -> None:
        raise asyncio.QueueEmpty

    def put_nowait(self, _item: object) -> None:
        raise RuntimeError("a socket written by a FrameWriter queues nothing")

    async def put(self, item: object) -> None:
        self.put_nowait(item)


_NO_QUEUE = _NoQueue()
_KEPT_ENVIRON = frozenset({"REMOTE_ADDR", "REMOTE_PORT", "PATH_INFO", "QUERY_STRING", "HTTP_ORIGIN", "HTTP_USER_AGENT"})


def _trim(environ: dict[str, Any] | None) -> None:
    """Keep what names the client; the headers, the ASGI scope and callables are not needed after the handshake."""
    if environ is not None:
        kept = {key: environ[key] for key in _KEPT_ENVIRON if key in environ}
        environ.clear()
        environ.update(kept)


class _Oversize(Exception):
    """A frame over the size limit."""


def _too_large(data: str | bytes, limit: int) -> bool:
    """Over ``limit`` bytes (UTF-8 for text), counted without encoding what cannot be over it."""
    if isinstance(data, bytes):
        return len(data) > limit
    if len(data) * 4 <= limit:  # UTF-8 takes at most 4 bytes a character
        return False
    return len(data) > limit or len(data.encode()) > limit


_BACKGROUND: set[asyncio.Task[None]] = set()


def adopt(
    server: Any,
    eio_sid: str,
    *,
    environ: dict[str, Any] | None = None,
    compression_min_bytes: int,
    on_frame_too_large: FrameTooLarge | None = None,
) -> None:
    """Make the engine.io socket just created for ``eio_sid`` a ``FastSocket`` (python-engineio creates its own
    class; the connect handler runs before the socket reads or writes anything)."""
    socket = server.sockets.get(eio_sid)
    if type(socket) is engineio.async_socket.AsyncSocket:
        socket.__class__ = FastSocket
        socket.compression_min_bytes = compression_min_bytes
        socket.on_frame_too_large = on_frame_too_large
        socket.environ = environ


def socket_of(server: Any, eio_sid: str) -> FastSocket | None:
    socket = server.sockets.get(eio_sid)
    return socket if isinstance(socket, FastSocket) and not socket.closed else None
