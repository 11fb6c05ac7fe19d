"""Events on ``chat.social.events``: contacts and blocks between two users, published by the rooms service.

Key: ``user_id``, the user who acted, so one user's social changes stay in order. Every event names both users
(``user_id`` and ``other_id``). While a block stands, in either direction, neither user can open a direct room
with, invite, create a group conversation with or ask to be a contact of the other; their direct room, if any, is
closed by ``room.blocked`` on chat.rooms.events (docs/decisions/0009).
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from chat_contracts.base import Contract
from chat_contracts.fields import UserId, UtcDatetime

ContactEndReason: TypeAlias = Literal["declined", "cancelled", "removed", "blocked", "account_deleted"]


class ContactRequested(Contract):
    """``user_id`` asked ``other_id`` to become a contact."""

    type: Literal["contact.requested"] = "contact.requested"
    user_id: UserId
    other_id: UserId
    occurred_at: UtcDatetime


class ContactAccepted(Contract):
    """``user_id`` accepted ``other_id``'s request: they are contacts."""

    type: Literal["contact.accepted"] = "contact.accepted"
    user_id: UserId
    other_id: UserId
    occurred_at: UtcDatetime


class ContactEnded(Contract):
    """A request or a contact between the two users is gone, and why."""

    type: Literal["contact.ended"] = "contact.ended"
    user_id: UserId
    other_id: UserId
    reason: ContactEndReason
    occurred_at: UtcDatetime


class UserBlocked(Contract):
    """``user_id`` blocked ``other_id``."""

    type: Literal["user.blocked"] = "user.blocked"
    user_id: UserId
    other_id: UserId
    occurred_at: UtcDatetime


class UserUnblocked(Contract):
    """``user_id`` lifted their block of ``other_id``."""

    type: Literal["user.unblocked"] = "user.unblocked"
    user_id: UserId
    other_id: UserId
    occurred_at: UtcDatetime


SocialEvent: TypeAlias = Annotated[
    ContactRequested | ContactAccepted | ContactEnded | UserBlocked | UserUnblocked,
    Field(discriminator="type"),
]

PAYLOADS: tuple[type[Contract], ...] = (ContactRequested, ContactAccepted, ContactEnded, UserBlocked, UserUnblocked)
