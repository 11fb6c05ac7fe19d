"""Everything a messages use case needs, built once by bootstrap and passed as the first argument."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from chat_contracts.base import Contract
from chat_contracts.envelope import Envelope
from chat_contracts.spec import TopicSpec
from chat_messages.domain.moderation import Moderation, moderation_for
from chat_messages.service.ports import AttachmentStore, Clock, MessageStore
from chat_messages.settings import MessagesSettings
from chat_runtime.bus.port import Outgoing
from chat_runtime.tokens import TokenVerifier


class Publisher(Protocol):
    """The part of the bus the service publishes with."""

    async def publish(
        self, spec: TopicSpec, data: Contract, *, key: str | None = None, correlation_id: str | None = None, source: str
    ) -> Envelope: ...

    async def publish_all(self, messages: Sequence[Outgoing], *, source: str) -> list[Envelope]: ...


@dataclass(frozen=True, slots=True)
class Reader:
    """The signed-in caller of an HTTP request."""

    user_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class MessagesContext:
    settings: MessagesSettings
    store: MessageStore
    publisher: Publisher
    clock: Clock
    verifier: TokenVerifier
    attachments: AttachmentStore

    @property
    def moderation(self) -> Moderation:
        return moderation_for(tuple(self.settings.blocked_patterns))
