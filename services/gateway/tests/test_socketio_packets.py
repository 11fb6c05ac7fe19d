"""What chat_gateway.adapters.socketio_packets assumes of python-socketio, checked against the installed release:
these fail when the library changes under the adapter (the gateway's pyproject bounds the version until they
pass on a newer one). And what the adapter itself promises about depth and decoding."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import tomllib
from pathlib import Path
from typing import Any

import engineio.packet
import orjson
import pytest
import socketio
import socketio.packet

from chat_contracts.fields import MAX_JSON_DEPTH
from chat_gateway.adapters import fanout
from chat_gateway.adapters.socketio_packets import (
    GuardedServer,
    MalformedPacket,
    Packet,
    Undecodable,
    UndecodablePayload,
    loads,
)
from chat_gateway.adapters.ws_frames import Frame, ack_frame, websocket_frame

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


async def _refuse(sid: str, code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_installed_python_socketio_is_inside_the_bound_these_tests_were_run_for() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    [bound] = [d.removeprefix("python-socketio") for d in dependencies if d.startswith("python-socketio")]
    floor, ceiling = (clause.strip() for clause in bound.split(","))
    assert floor.startswith(">="), bound
    assert ceiling.startswith("<"), f"python-socketio needs an upper bound: {bound}"
    installed = _version(importlib.metadata.version("python-socketio"))
    assert _version(floor.removeprefix(">=")) <= installed < _version(ceiling.removeprefix("<"))


def test_the_server_builds_its_packets_with_the_serializer_class_it_is_given() -> None:
    server = GuardedServer(refuse=_refuse, async_mode="asgi")
    assert server.packet_class is Packet


def test_the_server_hooks_the_adapter_overrides_still_exist_with_the_same_parameters() -> None:
    handle_event = inspect.signature(socketio.AsyncServer._handle_event)
    assert list(handle_event.parameters) == ["self", "eio_sid", "namespace", "id", "data"]
    assert list(inspect.signature(socketio.AsyncServer._send_packet).parameters) == ["self", "eio_sid", "pkt"]
    assert "packet_class(encoded_packet=data)" in inspect.getsource(socketio.AsyncServer._handle_eio_message)
    assert "self._handle_event(eio_sid, pkt.namespace, pkt.id" in inspect.getsource(
        socketio.AsyncServer._handle_eio_message
    )
    # malformed packets: the decode runs inside the message handler, which takes (eio_sid, data) and keeps a binary
    # packet waiting for its attachments by engine.io sid.
    assert list(inspect.signature(socketio.AsyncServer._handle_eio_message).parameters) == ["self", "eio_sid", "data"]
    assert "if eio_sid in self._binary_packet:" in inspect.getsource(socketio.AsyncServer._handle_eio_message)
    # after_answer: the event's handler and its ack run in one call, in the event's task.
    internal = socketio.AsyncServer._handle_event_internal
    assert list(inspect.signature(internal).parameters) == [
        "self",
        "server",
        "sid",
        "eio_sid",
        "data",
        "namespace",
        "id",
    ]
    # GuardedServer._handle_event_internal does what the library's does (the handler, then an ack of its answer
    # when the event has an ack id, a tuple answer as several arguments, None as none), writing the ack itself.
    source = inspect.getsource(internal)
    assert source.index("server._trigger_event(") < source.index("server._send_packet(")
    for step in ("r != self.not_handled and id is not None", "if r is None:", "isinstance(r, tuple)", "packet.ACK"):
        assert step in source, step
    assert "self._handle_event_internal, self, sid, eio_sid" in inspect.getsource(socketio.AsyncServer._handle_event)


def test_a_packet_reads_type_namespace_and_ack_id_before_its_json() -> None:
    for text, namespace in ((f'242["message:send",{nested(1500)}]', None), (f'2/chat,42["x",{nested(40)}]', "/chat")):
        packet = Packet(encoded_packet=text)
        assert (packet.packet_type, packet.namespace, packet.id) == (socketio.packet.EVENT, namespace, 42)
        assert packet.data == [
            Undecodable(f"The payload nests arrays and objects more than {MAX_JSON_DEPTH} levels deep.")
        ]


def test_a_packet_json_goes_through_the_adapter_both_ways() -> None:
    packet = Packet(encoded_packet='21["message:send",{"body":"\\u00e9"}]')
    assert packet.data == ["message:send", {"body": "é"}]
    encoded = Packet(socketio.packet.ACK, namespace="/", id=7, data=[{"body": "é", "n": 1.5}]).encode()
    assert encoded == '37[{"body":"é","n":1.5}]', "orjson writes compact UTF-8, json would escape é"
    assert json.loads(encoded[2:]) == [{"body": "é", "n": 1.5}]


def test_a_binary_event_with_refused_json_is_answered_as_a_plain_event() -> None:
    packet = Packet(encoded_packet=f'51-3["message:send",{nested(100)}]')
    assert (packet.packet_type, packet.id, packet.attachment_count) == (socketio.packet.EVENT, 3, 0)
    assert isinstance(packet.data[0], Undecodable)


def test_a_well_formed_binary_event_still_waits_for_its_attachment() -> None:
    packet = Packet(encoded_packet='51-3["message:send",{"_placeholder":true,"num":0}]')
    assert (packet.packet_type, packet.attachment_count) == (socketio.packet.BINARY_EVENT, 1)
    assert packet.add_attachment(b"\x00") is True
    assert packet.data == ["message:send", b"\x00"]


@pytest.mark.parametrize(
    "encoded",
    ["x", "9", '4{"message":"no"}', '51234567890123-["a",{}]', b"\x00\x01", b"2-[]"],
    ids=["no type", "unknown type", "connect_error", "too many attachments", "bytes", "bytes that start well"],
)
def test_a_packet_with_no_type_a_client_sends_is_malformed(encoded: str | bytes) -> None:
    with pytest.raises(MalformedPacket):
        Packet(encoded_packet=encoded)


def test_a_connect_with_refused_auth_json_carries_no_auth() -> None:
    packet = Packet(encoded_packet=f'0{{"token":{nested(100)}}}')
    assert (packet.packet_type, packet.data) == (socketio.packet.CONNECT, None)


@pytest.mark.parametrize("levels", [1, MAX_JSON_DEPTH])
def test_nesting_up_to_the_limit_decodes(levels: int) -> None:
    assert loads(nested(levels)) == json.loads(nested(levels))
    wide = "[" + ",".join([nested(MAX_JSON_DEPTH - 1)] * 200) + "]"  # many brackets, none too deep
    assert len(loads(wide)) == 200


@pytest.mark.parametrize("text", [nested(MAX_JSON_DEPTH + 1), nested(1500), '{"a":' * 40 + "1" + "}" * 40])
def test_nesting_past_the_limit_is_refused_at_any_depth(text: str) -> None:
    with pytest.raises(UndecodablePayload, match=f"more than {MAX_JSON_DEPTH} levels"):
        loads(text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert loads(json.dumps(["[" * 100, {"{": "{" * 100}])) == ["[" * 100, {"{": "{" * 100}]


ANSWERS = [
    {"ok": True, "message_id": "0b9e6c1e-8f1e-4d59-9d5d-7d1f3c2b9a10", "seq": 12},
    {"ok": False, "error": {"code": "validation_failed", "message": 'é \u2028 "quoted"'}},
    {"ok": True, "counts": {"👍": 2}, "nested": [[1, 2.5], None]},
    {"ok": True, "body": "x" * 70_000},  # a frame with a 64-bit length
]


@pytest.mark.parametrize("answer", ANSWERS, ids=["ack", "error", "nested", "long"])
@pytest.mark.parametrize("ack_id", [0, 7, 123456])
def test_an_ack_frame_is_what_python_socketio_and_engineio_would_send(answer: dict[str, Any], ack_id: int) -> None:
    library = Packet(socketio.packet.ACK, namespace="/", id=ack_id, data=[answer]).encode()
    message = engineio.packet.Packet(engineio.packet.MESSAGE, data=library).encode()

    frame = ack_frame(ack_id, orjson.dumps(answer))

    assert frame.packet == message.encode()
    assert frame.wire == websocket_frame(message.encode())


class _Socket:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send_frame(self, frame: Frame) -> None:
        self.frames.append(frame.packet)


@pytest.mark.parametrize(
    ("answer", "written", "sent"),
    [
        ({"ok": True, "seq": 3}, [b'435[{"ok":true,"seq":3}]'], []),
        (("a", {"b": 1}), [], ['35["a",{"b":1}]']),
        (None, [], ["35[]"]),
        ({"ok": True, "file": b"\x00"}, [], ['61-5[{"ok":true,"file":{"_placeholder":true,"num":0}}]', b"\x00"]),
    ],
    ids=["json answer: its frame", "tuple: several arguments", "None: no argument", "binary: a binary ack"],
)
async def test_an_event_answer_is_acked_as_python_socketio_would(
    monkeypatch: pytest.MonkeyPatch, answer: Any, written: list[bytes], sent: list[str | bytes]
) -> None:
    server = GuardedServer(refuse=_refuse, async_mode="asgi")
    socket = _Socket()
    monkeypatch.setattr(fanout, "socket_of", lambda _eio, eio_sid: socket if eio_sid == "e1" else None)
    packets: list[str | bytes] = []

    async def send_packet(eio_sid: str, pkt: Any) -> None:
        assert eio_sid == "e1"
        encoded = pkt.encode()
        packets.extend(encoded if isinstance(encoded, list) else [encoded])

    async def handler(sid: str, payload: Any) -> Any:
        return answer

    monkeypatch.setattr(server, "_send_packet", send_packet)
    server.on("thing", handler)

    await server._handle_event_internal(server, "s1", "e1", ["thing", {}], "/", 5)

    assert socket.frames == written
    assert packets == sent


async def test_an_event_without_an_ack_id_or_a_handler_is_not_acked(monkeypatch: pytest.MonkeyPatch) -> None:
    server = GuardedServer(refuse=_refuse, async_mode="asgi")
    socket = _Socket()
    monkeypatch.setattr(fanout, "socket_of", lambda _eio, _eio_sid: socket)

    async def handler(sid: str, payload: Any) -> Any:
        return {"ok": True}

    server.on("thing", handler)

    await server._handle_event_internal(server, "s1", "e1", ["thing", {}], "/", None)
    await server._handle_event_internal(server, "s1", "e1", ["unknown", {}], "/", 6)

    assert socket.frames == []
