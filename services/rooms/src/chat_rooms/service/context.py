"""Everything a rooms use case needs, built once by bootstrap and passed as the first argument."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher

from chat_rooms.service.ports import Clock, RoomsStore
from chat_rooms.settings import RoomsSettings
from chat_runtime.tokens import TokenVerifier, VerifiedToken


@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in caller, from their access token."""

    user_id: uuid.UUID
    username: str
    email_verified: bool

    @classmethod
    def from_token(cls, token: VerifiedToken) -> Actor:
        return cls(user_id=token.sub, username=token.username or "", email_verified=bool(token.email_verified))


@dataclass(frozen=True, slots=True)
class RoomsContext:
    settings: RoomsSettings
    store: RoomsStore
    clock: Clock
    hasher: PasswordHasher
    verifier: TokenVerifier
