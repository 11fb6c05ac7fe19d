"""How every ``chat`` process serves HTTP and websockets: uvicorn on uvloop, httptools and the Sans-I/O
``websockets`` protocol, configured in one place for the launcher, the tests and the benchmarks."""

from __future__ import annotations

from typing import Any

import uvicorn

from chat_runtime.settings import ChatSettings


def server_config(
    app: Any,
    *,
    host: str,
    port: int,
    settings: ChatSettings | None = None,
    log_level: str = "warning",
    **extra: Any,
) -> uvicorn.Config:
    """The uvicorn configuration of a product process.

    - uvloop and httptools: the event loop and HTTP parser in C.
    - ``websockets-sansio``: one asyncio protocol object per connection and no task of its own (the legacy
      ``websockets`` protocol keeps three tasks per connection, wsproto frames in pure Python).
    - No websocket-level pings: Engine.IO has its own heartbeat, so a second one only costs timers.
    - permessage-deflate only when ``ws_compression`` is set (see ``ChatSettings.ws_compression``).
    """
    compression = settings.ws_compression if settings is not None else False
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=compression,
        ws_ping_interval=None,
        ws_ping_timeout=None,
        log_level=log_level,
        lifespan="on",
        **extra,
    )
