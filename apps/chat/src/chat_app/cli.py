"""`chat`: run the product or one of its services."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import cast, get_args

import structlog
import uvicorn

from chat_app.compose import (
    SERVICES,
    LauncherError,
    ServiceSettings,
    Target,
    build_asgi,
    create_topics,
    dev_mailbox_enabled,
    rotate_signing_key,
    set_account_disabled,
    withdraw_signing_key,
)
from chat_app.devmail import MAILBOX_PATH
from chat_app.maintenance import STORES, Store, migrate
from chat_app.signals import StopSignals
from chat_runtime.logging import configure_logging
from chat_runtime.serving import server_config
from chat_runtime.settings import ChatSettings, SettingsError, load_settings
from chat_runtime.tracing import configure_tracing, shutdown_tracing

log = structlog.get_logger("chat.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat",
        description="Self-hosted real-time chat: run the whole product (`chat up`) or one service of it.",
        epilog="Configuration comes from the environment: CHAT_<SERVICE>_<FIELD>, or CHAT_<FIELD> for every "
        "service (docs/operations.md lists them all). In dev mode (CHAT_MODE=dev, the default) missing secrets "
        "are generated once under CHAT_DATA_DIR (.data/).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser(
        "up",
        help="run the whole product in one process: in-process bus, embedded PostgreSQL and SecantusDB, dev defaults",
        description="Starts PostgreSQL and SecantusDB as child servers (data under .infra/) unless they run "
        "already, serves every service and the gateway on one port, and stops the servers it started on Ctrl-C "
        "or SIGTERM.",
    )
    up.add_argument("--host", default=None, help="listen address (default CHAT_HTTP_HOST or 127.0.0.1)")
    up.add_argument("--port", type=int, default=None, help="listen port (default CHAT_HTTP_PORT or 8000)")
    up.add_argument(
        "--external",
        action="store_true",
        help="use the database URLs from the environment instead of starting embedded servers",
    )
    serve = commands.add_parser("serve", help="run one service, or all of them (split or all-in-one)")
    serve.add_argument("--target", required=True, choices=list(get_args(Target)))
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    commands.add_parser("create-topics", help="create every Kafka topic and its dead-letter topic")
    migrate = commands.add_parser(
        "migrate", help="apply the auth and rooms migrations and create the messages indexes, then exit"
    )
    migrate.add_argument("--target", choices=["all", *STORES], default="all", help="one store (default: all)")
    commands.add_parser(
        "rotate-signing-key",
        help="publish a new token signing key; it signs after CHAT_AUTH_KEY_ACTIVATION_DELAY_SECONDS",
    )
    withdraw = commands.add_parser(
        "withdraw-signing-key",
        help="withdraw a leaked token signing key at once: every service refuses its tokens within seconds",
    )
    withdraw.add_argument("kid", help="the key's id (the kid in the JWKS and in its tokens' header)")
    for name, what in (
        ("disable-account", "disable an account and end its sessions everywhere"),
        ("enable-account", "let a disabled account sign in again"),
    ):
        account = commands.add_parser(name, help=what)
        account.add_argument("identifier", help="the account's email address or username")
    return parser


def _serve(
    target: Target,
    settings: ChatSettings,
    host: str | None,
    port: int | None,
    *,
    stops: StopSignals,
    given: ServiceSettings | None = None,
) -> None:
    host = host or settings.http_host
    port = port if port is not None else settings.http_port
    try:
        configure_tracing(service=target)  # off unless OTEL_* variables ask for traces (docs/operations.md)
    except ValueError as exc:
        raise LauncherError(str(exc)) from exc
    app = build_asgi(target, settings, given=given)
    print(f"chat ({target}) listening on http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    if dev_mailbox_enabled(target, settings):
        print(
            f"dev mode: emailed codes are printed here (code for <address>: <code>) and listed at "
            f"http://{host}:{port}{MAILBOX_PATH}",
            flush=True,
        )
    server = uvicorn.Server(server_config(app, host=host, port=port, settings=settings))
    # After draining, uvicorn raises the stop signal again; a stop while serving is a clean return (uvicorn.run
    # does the same).
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    finally:
        shutdown_tracing()  # exports the spans still buffered
    stops.stopping()


def _up(host: str | None, port: int | None, *, stops: StopSignals, given: ServiceSettings | None = None) -> None:
    settings = load_settings(ChatSettings, bus="inprocess")
    _serve("all", settings, host, port, stops=stops, given=given)


def _up_embedded(host: str | None, port: int | None, *, stops: StopSignals) -> None:
    """`chat up`: the embedded servers for the duration of the all-in-one process, its services pointed at them."""
    try:
        from chat_app.embedded import embedded_servers
    except ModuleNotFoundError as exc:
        if exc.name != "chat_localinfra":
            raise
        raise LauncherError(
            "`chat up` starts PostgreSQL and SecantusDB with chat-localinfra, a development package that is not "
            "installed here: install chat-app[embedded], or run `chat up --external` with the database URLs in "
            "the environment"
        ) from exc
    with embedded_servers(_progress) as given:
        _up(host, port, stops=stops, given=given)


def _progress(message: str) -> None:
    print(f"chat: {message}", file=sys.stderr, flush=True)


def _configure_logging(args: argparse.Namespace) -> None:
    """Every command logs as CHAT_LOG_LEVEL and CHAT_LOG_FORMAT say, tagged with what runs (a service's name, `all`
    for the whole product, else the command's)."""
    settings = load_settings(ChatSettings)
    service = "all" if args.command == "up" else args.target if args.command == "serve" else args.command
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=service)


def _withdraw_signing_key(kid: str) -> int:
    withdrawal = asyncio.run(withdraw_signing_key(kid))
    if withdrawal is None:
        log.error("signing_key.not_found", kid=kid, hint="the kids in use are in /api/auth/.well-known/jwks.json")
        return 1
    if withdrawal.already:
        log.warning("signing_key.already_withdrawn", kid=kid, changed="nothing")
    else:
        log.warning("signing_key.withdrawn", kid=kid, successor=withdrawal.successor)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `chat` command."""
    args = _parser().parse_args(argv)
    stops = StopSignals.install()
    try:
        _configure_logging(args)
        if args.command == "up":
            if args.external:
                _up(args.host, args.port, stops=stops)
            else:
                _up_embedded(args.host, args.port, stops=stops)
        elif args.command == "migrate":
            stores = STORES if args.target == "all" else (cast(Store, args.target),)
            asyncio.run(migrate(stores))
        elif args.command == "serve":
            _serve(cast(Target, args.target), load_settings(ChatSettings), args.host, args.port, stops=stops)
        elif args.command == "rotate-signing-key":
            kid = asyncio.run(rotate_signing_key())
            log.info("signing_key.published", kid=kid, signs="once every verifier has fetched it")
        elif args.command == "withdraw-signing-key":
            return _withdraw_signing_key(args.kid)
        elif args.command in ("disable-account", "enable-account"):
            disabled = args.command == "disable-account"
            if not asyncio.run(set_account_disabled(args.identifier, disabled=disabled)):
                log.error("account.not_found", identifier=args.identifier)
                return 1
            log.info("account.disabled" if disabled else "account.enabled", identifier=args.identifier)
        elif args.command == "create-topics":
            settings = load_settings(ChatSettings)
            created = asyncio.run(create_topics(settings))
            log.info("topics.ready", created=created)
    except (SettingsError, LauncherError) as exc:
        print(f"chat: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Stopped before or after serving (uvicorn turns a stop while it serves into a clean return), or during a
        # one-shot command; what the command started was stopped on the way out.
        print("chat: stopped", file=sys.stderr)
        return stops.exit_status
    finally:
        stops.restore()
    return 0


__all__ = ["SERVICES", "main"]
