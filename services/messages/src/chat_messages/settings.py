"""Settings of the messages service (`CHAT_MESSAGES_…`, falling back to shared `CHAT_…`)."""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from chat_contracts.fields import ATTACHMENT_MAX_BYTES, ATTACHMENT_MAX_BYTES_CEILING
from chat_messages.domain.moderation import validate_patterns
from chat_runtime.settings import BusKind, ChatSettings

WriteConcernChoice = Literal["auto", "journaled", "majority"]
"""When MongoDB acknowledges the service's writes (``chat_messages.adapters.mongo.write_concern_for``)."""


AUTO_WRITES_PER_SECOND: dict[BusKind, float] = {"inprocess": 50.0, "kafka": 0.0}
"""The store's paced writes a second when ``store_writes_per_second`` is auto, by bus."""


class MessagesSettings(ChatSettings):
    """Everything the messages service reads from its environment."""

    SERVICE: ClassVar[str] = "messages"
    model_config = SettingsConfigDict(env_prefix="CHAT_MESSAGES_", extra="ignore", validate_default=True)

    mongo_url: str = "mongodb://127.0.0.1:27019/?directConnection=true"
    mongo_database: str = Field(default="chat_messages", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    instance_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12], pattern=r"^[A-Za-z0-9_-]{1,40}$")
    """Names this instance's subscription to room events (every instance hears every one of them)."""
    mongo_write_concern: WriteConcernChoice = "auto"
    """When a write counts as done, and so when a sender gets its ack: journaled (w:1, j:true), majority
    (w:majority, j:true), or auto: majority on a replica set of several members or a sharded cluster, else
    journaled (docs/messages.md)."""
    store_writes_per_second: Annotated[float, Field(ge=0, le=100_000)] | Literal["auto"] = "auto"
    """Pace the inserts of new messages: while sends arrive faster than ``store_pace_above_per_second``, an insert
    waits until ``store_write_batch`` sends are waiting or 1/this seconds have passed since the previous one
    started (0: no pacing; inserts still join while one is in flight). The store then gets fewer, larger writes,
    each cheaper per message, for a wait of at most 1/this per send under load; a conversation at human speed,
    below the threshold, never waits, and at the highest rates the batch fills while the previous insert is in
    flight. auto (default): 50 on the in-process bus (all-in-one), 0 on Kafka (split mode). Measured
    (docs/benchmarks.md): all-in-one at 500 msg/s, 20 rooms × 20, pacing gave a sixth of the store commands and
    35–40 % less CPU per message, for a p50 about 15 ms higher. In split mode, where each send already crosses
    two Kafka hops and a fetch brings the sends that arrived meanwhile to one insert, the store's CPU per message
    at 300 msg/s was the same either way; over six interleaved pairs at 20 × 20 the unpaced code reached the
    same highest rate within p99 ≤ 100 ms or a higher one in every pair (higher in four: 300, 400 and 400
    against 200, and 200 against none), for about a tenth more CPU per message over every process
    (adapters/group_insert.py)."""
    store_pace_above_per_second: float = Field(default=200.0, ge=0, le=1_000_000)
    """The rate of sends (over the last 100 ms, this instance) above which inserts are paced."""
    store_write_batch: int = Field(default=8, ge=1, le=1_000)
    """How many waiting sends start a paced insert before its interval is over."""

    # verifying access tokens issued by the auth service
    auth_issuer: str = "http://127.0.0.1:8000/api/auth"
    auth_audience: str = "chat"
    auth_jwks_url: str = "http://127.0.0.1:8000/api/auth/.well-known/jwks.json"

    # sending limits: a token bucket per user and room
    send_burst: int = Field(default=10, ge=1, le=1000)
    """Messages a user may send in a burst to one room."""
    send_per_second: float = Field(default=1.0, gt=0, le=100)
    """Sustained messages per second per user and room."""

    # attachments
    attachment_max_bytes: int = Field(default=ATTACHMENT_MAX_BYTES, ge=1024, le=ATTACHMENT_MAX_BYTES_CEILING)
    attachment_types: list[str] = Field(
        default_factory=lambda: [
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "application/pdf",
            "text/plain",
            "application/zip",
        ]
    )
    """Sniffed content types that may be uploaded."""

    # moderation and retention
    blocked_patterns: list[str] = Field(default_factory=list)
    """Regular expressions (case-insensitive) a message body must not match; the rejection names the rule."""
    deleted_room_retention_days: int = Field(default=0, ge=0, le=3650)
    """Keep a deleted room's messages this long before removing them (0: remove at once)."""
    retention_sweep_seconds: float = Field(default=3600.0, gt=0)

    @field_validator("blocked_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        return validate_patterns(value)

    def paced_writes_per_second(self) -> float:
        """``store_writes_per_second`` with auto resolved for this process's bus."""
        if self.store_writes_per_second == "auto":
            return AUTO_WRITES_PER_SECOND[self.bus]
        return self.store_writes_per_second
