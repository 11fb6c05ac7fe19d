"""Keyset cursors: what ``encode`` writes reads back, and nothing else is taken for a cursor."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from chat_runtime import cursors


def _raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_a_key_reads_back_part_by_part() -> None:
    when, ident = datetime(2026, 12, 4, 12, 30, 1, 250000, tzinfo=UTC), uuid.uuid4()
    cursor = cursors.encode(when.isoformat(), str(ident), 42)
    assert "=" not in cursor
    first, second, third = cursors.decode(cursor, 3)
    assert (cursors.instant(first), cursors.identifier(second), cursors.integer(third)) == (when, ident, 42)
    assert cursors.text(second) == str(ident)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "bm90IGpzb24",
        _raw({"a": 1}),
        _raw(["only one"]),
        _raw(["a", "b", "c"]),
        _raw([True, "x"]),
        _raw([None, "x"]),
        _raw([1.5, "x"]),
    ],
)
def test_anything_encode_did_not_write_is_refused(cursor: str) -> None:
    with pytest.raises(cursors.InvalidCursor):
        cursors.decode(cursor, 2)


def test_each_part_must_be_what_its_place_holds() -> None:
    with pytest.raises(cursors.InvalidCursor):
        cursors.instant("2026-12-04T12:00:00")  # naive: no API gives that out
    with pytest.raises(cursors.InvalidCursor):
        cursors.instant("yesterday")
    with pytest.raises(cursors.InvalidCursor):
        cursors.identifier("not-a-uuid")
    with pytest.raises(cursors.InvalidCursor):
        cursors.integer("7")
    with pytest.raises(cursors.InvalidCursor):
        cursors.text(7)
