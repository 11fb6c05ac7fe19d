"""`chat`: run the product or one of its services."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import cast, get_args

import uvicorn

from chat_app.compose import SERVICES, LauncherError, Target, build_asgi, create_topics, rotate_signing_key
from chat_runtime.logging import configure_logging
from chat_runtime.settings import ChatSettings, SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chat", description="Self-hosted real-time chat.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the whole product in one process (in-process bus, dev defaults)")
    up.add_argument("--host", default=None, help="listen address (default CHAT_HTTP_HOST or 127.0.0.1)")
    up.add_argument("--port", type=int, default=None, help="listen port (default CHAT_HTTP_PORT or 8000)")
    serve = commands.add_parser("serve", help="run one service, or all of them (split or all-in-one)")
    serve.add_argument("--target", required=True, choices=list(get_args(Target)))
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    commands.add_parser("create-topics", help="create every Kafka topic and its dead-letter topic")
    commands.add_parser(
        "rotate-signing-key",
        help="publish a new token signing key; it signs after CHAT_AUTH_KEY_ACTIVATION_DELAY_SECONDS",
    )
    return parser


def _serve(target: Target, settings: ChatSettings, host: str | None, port: int | None) -> None:
    app = build_asgi(target, settings)
    host = host or settings.http_host
    port = port if port is not None else settings.http_port
    print(f"chat ({target}) listening on http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `chat` command."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            settings = load_settings(ChatSettings, bus="inprocess")
            configure_logging(level=settings.log_level, fmt=settings.log_format, service="all")
            _serve("all", settings, args.host, args.port)
        elif args.command == "serve":
            target = cast(Target, args.target)
            settings = load_settings(ChatSettings)
            configure_logging(level=settings.log_level, fmt=settings.log_format, service=target)
            _serve(target, settings, args.host, args.port)
        elif args.command == "rotate-signing-key":
            kid = asyncio.run(rotate_signing_key())
            print(f"published signing key {kid}; it signs new tokens once every verifier has fetched it")
        elif args.command == "create-topics":
            settings = load_settings(ChatSettings)
            created = asyncio.run(create_topics(settings))
            print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    except (SettingsError, LauncherError) as exc:
        print(f"chat: {exc}", file=sys.stderr)
        return 2
    return 0


__all__ = ["SERVICES", "main"]
