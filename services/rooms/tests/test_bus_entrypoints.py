"""The bus entrypoint: every event chat.users.events carries has a use case, or is knowingly left out (which topics
the module subscribes is in test_module.py)."""

from __future__ import annotations

from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import SigningKeyWithdrawn, UserSessionsRevoked
from chat_rooms.entrypoints.bus import USER_EVENTS

NOT_FOR_THE_ROOMS_SERVICE = {UserSessionsRevoked, SigningKeyWithdrawn}  # read by the token check's EndedSessionsFeed


def test_every_user_event_has_a_use_case_or_is_knowingly_left_out() -> None:
    assert set(USER_EVENTS) == set(USERS_EVENTS.payloads) - NOT_FOR_THE_ROOMS_SERVICE
