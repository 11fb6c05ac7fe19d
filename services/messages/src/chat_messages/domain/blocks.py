"""What a block between the two people of a direct room means here (docs/decisions/0009): nobody writes in the
room until every block between them is lifted. The rooms service says when that is (``room.blocked`` and
``room.unblocked`` on chat.rooms.events); the projection keeps it on ``RoomState.blocked``."""

from __future__ import annotations

from chat_messages.domain.errors import Rejection
from chat_messages.domain.model import RoomState

BLOCKED_MESSAGE = "A block between you and the other person closes this conversation until it is lifted."


def write_refusal(room: RoomState) -> Rejection | None:
    """The refusal of a send, edit, deletion or reaction in ``room``, or None when the room takes them.

    Both people are refused, as in Rocket.Chat: the blocked person can write nothing the blocker would see, and
    the blocker cannot write to someone who cannot answer. Read and delivery markers are not writes: each
    person's own unread count still moves (the gateway keeps them from the other person)."""
    if room.blocked:
        return Rejection("user_blocked", BLOCKED_MESSAGE)
    return None
