"""The permission table, cell by cell: every role × every action × every room kind."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from chat_rooms.domain.errors import RoomsError
from chat_rooms.domain.model import Role, RoomKind
from chat_rooms.domain.permissions import (
    ALLOWED_WHEN_ARCHIVED,
    TABLE,
    Action,
    allowed,
    markdown_table,
    outranks,
    require,
)

ROLES: tuple[Role, ...] = ("owner", "admin", "member")
KINDS: tuple[RoomKind, ...] = ("public", "private", "password", "direct", "group_dm")
ROOMS = {"public", "private", "password"}

# The expected table, written out independently of the implementation: (action, role) -> kinds allowed.
EXPECTED: dict[tuple[str, str], set[str]] = {}
for role in ROLES:
    for action in ("view", "list_members", "post"):
        EXPECTED[(action, role)] = set(KINDS)
    EXPECTED[("leave", role)] = ROOMS | {"group_dm"}
EXPECTED |= {
    ("update", "owner"): ROOMS | {"group_dm"},
    ("update", "admin"): ROOMS,
    ("update", "member"): {"group_dm"},
    ("archive", "owner"): ROOMS,
    ("archive", "admin"): ROOMS,
    ("archive", "member"): set(),
    ("unarchive", "owner"): ROOMS,
    ("unarchive", "admin"): ROOMS,
    ("unarchive", "member"): set(),
    ("delete", "owner"): ROOMS | {"group_dm"},
    ("delete", "admin"): set(),
    ("delete", "member"): set(),
    ("invite", "owner"): ROOMS | {"group_dm"},
    ("invite", "admin"): ROOMS,
    ("invite", "member"): {"group_dm"},
    ("kick", "owner"): ROOMS | {"group_dm"},
    ("kick", "admin"): ROOMS,
    ("kick", "member"): set(),
    ("ban", "owner"): ROOMS,
    ("ban", "admin"): ROOMS,
    ("ban", "member"): set(),
    ("unban", "owner"): ROOMS,
    ("unban", "admin"): ROOMS,
    ("unban", "member"): set(),
    ("change_role", "owner"): ROOMS,
    ("change_role", "admin"): set(),
    ("change_role", "member"): set(),
    ("transfer_ownership", "owner"): ROOMS | {"group_dm"},
    ("transfer_ownership", "admin"): set(),
    ("transfer_ownership", "member"): set(),
}


@pytest.mark.parametrize(("action", "role", "kind"), list(itertools.product(TABLE, ROLES, KINDS)))
def test_every_cell_of_the_permission_table(action: Action, role: Role, kind: RoomKind) -> None:
    expected = kind in EXPECTED[(action, role)]
    assert allowed(role, action, kind) is expected
    if expected:
        require(role, action, kind)
    else:
        with pytest.raises(RoomsError) as refused:
            require(role, action, kind)
        assert refused.value.code in {"forbidden_role", "not_supported"}


def test_the_table_covers_every_action_and_role() -> None:
    assert {(a, r) for a in TABLE for r in ROLES} == set(EXPECTED)


@pytest.mark.parametrize("action", list(TABLE))
def test_an_archived_room_only_allows_reading_unarchiving_deleting_and_leaving(action: Action) -> None:
    if action in ALLOWED_WHEN_ARCHIVED:
        require("owner", action, "public", archived=True)
    else:
        with pytest.raises(RoomsError, match="archived"):
            require("owner", action, "public", archived=True)


@pytest.mark.parametrize(
    ("actor", "target", "expected"),
    [
        ("owner", "admin", True),
        ("owner", "member", True),
        ("admin", "member", True),
        ("admin", "admin", False),
        ("admin", "owner", False),
        ("member", "member", False),
        ("owner", "owner", False),
    ],
)
def test_acting_on_another_member_needs_a_higher_role(actor: Role, target: Role, expected: bool) -> None:
    assert outranks(actor, target) is expected


def test_the_documented_table_is_the_table_in_the_code() -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "rooms.md"
    assert markdown_table() in docs.read_text(encoding="utf-8")
