"""Field types and limits shared by every topic module.

Ids are ``uuid.UUID``, not ``str``. Three reasons: a malformed id is rejected where it enters the bus instead
of deep inside a consumer; the exported JSON Schema says ``format: uuid``; and ``str(uuid)`` is canonical
(lower-case, hyphenated), so ``TopicSpec.key_of`` produces the same partition key however a producer spelled
the id. Two spellings of one room id hashing to different partitions would silently break per-room ordering.
The exceptions are ids a client makes up (``client_msg_id``) and correlation tokens (``request_id``): those
are bounded strings with a restricted character set, because clients and gateways choose their own formats.

Timestamps are timezone-aware and normalized to UTC on validation, so equal instants compare and serialize
equal.

Every string, list and mapping is bounded. The bounds are the *wire* limits, deliberately looser than the
product rules the owning service enforces (a message body is at most 4000 characters after NFC, but the
contract accepts 16000 raw characters): tightening a bound later breaks old records, loosening it does not.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, TypeAlias

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

UserId: TypeAlias = uuid.UUID
RoomId: TypeAlias = uuid.UUID
MessageId: TypeAlias = uuid.UUID
AttachmentId: TypeAlias = uuid.UUID
SessionId: TypeAlias = uuid.UUID

MAX_BODY_CHARS = 4000
"""The product rule for message bodies (after NFC normalization); the messages service enforces it."""
MAX_BODY_RAW_CHARS = 16000
"""The wire bound for a body: loose enough for any body the product rule accepts, before or after NFC."""
MAX_ATTACHMENTS = 10
MAX_MENTIONS = 50
MAX_REACTION_KINDS = 100
MAX_SESSION_IDS = 1000

_ID_CHARS = r"^[A-Za-z0-9_.:-]+$"


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware instant, normalized to UTC."""

ClientMsgId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_ID_CHARS)]
"""The sender's idempotency key: re-sending with the same value never creates a second message."""

RequestId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_ID_CHARS)]
"""Chosen by the gateway per command; the answering event repeats it so the right socket gets the ack."""

Username = Annotated[str, StringConstraints(min_length=1, max_length=64)]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
AvatarUrl = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"^(https://|http://|/)\S*$")]
"""An absolute http(s) URL or a path on the platform's own origin; never ``javascript:`` or ``data:``."""

RoomName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
RoomTopic = Annotated[str, StringConstraints(max_length=1000)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
"""Free text a moderator gives for a kick or ban."""

MessageBody = Annotated[str, StringConstraints(max_length=MAX_BODY_RAW_CHARS)]
"""May be empty when the message has attachments; the messages service enforces the product rules."""

Emoji = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]
"""A Unicode emoji sequence or a ``:shortcode:``; no whitespace."""

ErrorText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
"""Human-readable explanation; clients branch on the machine code, never on this."""

Seq = Annotated[int, Field(ge=1)]
"""A message's position in its room: the first message is 1, each next one exactly 1 more."""

SeqMarker = Annotated[int, Field(ge=0)]
"""A read or delivery marker: every message with ``seq <= up_to_seq``; 0 means none."""

Version = Annotated[int, Field(ge=1)]
"""A per-entity counter that only grows; consumers ignore an event whose version is not above theirs."""


class Part(BaseModel):
    """A nested value inside a contract: as strict and immutable as the contract itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)
