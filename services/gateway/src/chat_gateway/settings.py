"""Settings of the gateway (`CHAT_GATEWAY_…`, falling back to shared `CHAT_…`)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import ClassVar, Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from chat_contracts.fields import MAX_FRAME_BYTES
from chat_runtime.settings import ChatSettings


class GatewaySettings(ChatSettings):
    """Everything the gateway reads from its environment."""

    SERVICE: ClassVar[str] = "gateway"
    model_config = SettingsConfigDict(env_prefix="CHAT_GATEWAY_", extra="ignore", validate_default=True)

    allowed_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8000", "http://localhost:8000"])
    max_message_bytes: int = Field(default=MAX_FRAME_BYTES, ge=1024, le=MAX_FRAME_BYTES)
    """A Socket.IO frame larger than this (bytes) ends its socket with ``frame_too_large``."""
    instance_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12], pattern=r"^[A-Za-z0-9_-]{1,40}$")
    """Names this instance in presence reports (and its consumers in the bus metrics): unique among the gateways
    running at once."""

    # verifying access tokens
    auth_issuer: str = "http://127.0.0.1:8000/api/auth"
    auth_audience: str = "chat"
    auth_jwks_url: str = "http://127.0.0.1:8000/api/auth/.well-known/jwks.json"

    # where recovery reads history (the messages service's HTTP API)
    messages_url: str = "http://127.0.0.1:8000"

    # split mode: where /api/<service>/… is forwarded when that service runs in another process
    # (messages_url above serves /api/messages/… too)
    auth_url: str = "http://127.0.0.1:8000"
    rooms_url: str = "http://127.0.0.1:8000"
    proxy_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    """Connecting to a service, and each wait for its next bytes; a forwarded request that exceeds it gets 504."""

    # the web client's built files, served at / (a "not built" page when absent)
    web_dir: Path = Field(default_factory=lambda: Path(__file__).resolve().parents[4] / "clients" / "web" / "dist")

    # behaviour
    recovery_limit: int = Field(default=500, ge=1, le=10_000)
    """More missed messages than this and a resubscribing client is told to reload (recovered: false)."""
    ack_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_connections_per_user: int = Field(default=10, ge=1, le=1000)
    events_per_second: float = Field(default=20.0, gt=0)
    """Events a user may send per second across all their sockets on this instance (a token bucket)."""
    events_burst: int = Field(default=40, ge=1)

    # typing and presence
    typing_ttl_seconds: float = Field(default=6.0, ge=1, le=60)
    """A typing indicator lasts this long unless the client renews it (typing:start again)."""
    typing_throttle_seconds: float = Field(default=2.0, ge=0, le=30)
    """Renewals closer together than this are answered but not broadcast again."""
    presence_grace_seconds: float = Field(default=10.0, ge=0, le=600)
    """After a user's last socket closes, wait this long before showing them offline (a reconnect cancels)."""
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=300)
    """How often this instance says it is alive; its presence reports are forgotten after 3 missed beats."""

    # live tokens
    token_leeway_seconds: float = Field(default=30.0, ge=0, le=120)
    """Clock skew tolerated between the auth service and this gateway on a token's times."""
    token_warning_seconds: float = Field(default=60.0, ge=0, le=3600)
    """``auth:expiring`` is sent this long before the access token expires; without ``auth:refresh`` in time
    the socket ends with ``token_expired``."""

    # slow clients (bytes written to one socket that it has not read yet)
    buffer_soft_limit_bytes: int = Field(default=256 * 1024, ge=1024)
    """Above this backlog a socket stops getting typing and presence events."""
    buffer_hard_limit_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Above this backlog a socket that should get a room event is ended with ``slow_consumer`` instead (it
    reconnects and recovers by seq), so one slow reader never delays or bloats the others."""

    # websocket compression (offered only with CHAT_WS_COMPRESSION=true)
    ws_compression_min_bytes: int = Field(default=1024, ge=0)
    """Frames shorter than this go uncompressed even on a connection that negotiated permessage-deflate: most
    chat frames are a few hundred bytes, which deflate barely shrinks at a real CPU cost per recipient."""

    @model_validator(mode="after")
    def _no_wildcard_origin_outside_dev(self) -> Self:
        if self.mode == "prod" and ("*" in self.allowed_origins or not self.allowed_origins):
            raise ValueError("allowed_origins: list the web origins explicitly outside dev mode ('*' is refused)")
        if self.buffer_soft_limit_bytes >= self.buffer_hard_limit_bytes:
            raise ValueError(
                "buffer_soft_limit_bytes must be below buffer_hard_limit_bytes (ephemeral events go first)"
            )
        return self
