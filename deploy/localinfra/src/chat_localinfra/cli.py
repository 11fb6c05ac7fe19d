"""`python -m chat_localinfra up|down|status|env [--only postgres,kafka,mongo]`."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence

from chat_localinfra.config import SERVICES, URL_ENV, InfraConfig, Service, parse_only
from chat_localinfra.errors import InfraError
from chat_localinfra.launcher import current_urls, ensure_started, status, stop

EXIT_ERROR = 1
# As LSB init scripts' `status`: 3 means "not running".
EXIT_NOT_RUNNING = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chat_localinfra",
        description=(
            "Run real PostgreSQL 18, Kafka 4 (KRaft) and a Mongo-wire server (SecantusDB) on 127.0.0.1 "
            "for development and integration tests. Data and logs live in $CHAT_INFRA_DIR "
            "(default <repo>/.infra)."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    only_help = f"comma-separated subset of {','.join(SERVICES)} (default: all)"
    for name, help_text in (
        ("up", "start the servers (no-op for running ones) and print their URLs"),
        ("down", "stop the servers started by `up`"),
        ("status", "show which servers run; exit status 3 when any chosen one does not"),
        ("env", 'print `export CHAT_TEST_...=...` lines for the test suite (eval "$(... env)")'),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--only", default=None, metavar="SERVICES", help=only_help)
        if name == "up":
            sub.add_argument(
                "--timeout",
                type=float,
                default=None,
                metavar="SECONDS",
                help="how long to wait for each server to answer (default: $CHAT_INFRA_START_TIMEOUT or 90)",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        only = parse_only(args.only)
        config = InfraConfig.from_env()
        if args.command == "up":
            return _up(config, only, args.timeout)
        if args.command == "down":
            return _down(config, only)
        if args.command == "status":
            return _status(config, only)
        return _env(config, only)
    except InfraError as exc:
        print(f"chat_localinfra: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("chat_localinfra: interrupted", file=sys.stderr)
        return 130


def _up(config: InfraConfig, only: tuple[Service, ...], timeout: float | None) -> int:
    began = time.monotonic()
    urls = ensure_started(only, config=config, timeout=timeout, progress=_progress)
    for service in parse_only(only):
        note = "started" if service in urls.started_now else "already running"
        print(f"{service:<9}{urls.for_service(service)}", flush=True)
        _progress(f"{service}: {note}")
    _progress(f"up took {time.monotonic() - began:.1f}s; data and logs in {config.infra_dir}")
    return 0


def _down(config: InfraConfig, only: tuple[Service, ...]) -> int:
    stopped = stop(only, config=config, progress=_progress)
    for service in parse_only(only):
        print(f"{service:<9}{'stopped' if service in stopped else 'was not running'}")
    return 0


def _status(config: InfraConfig, only: tuple[Service, ...]) -> int:
    entries = status(only, config=config)
    for entry in entries:
        pid = f"pid {entry.pid}" if entry.pid is not None else "-"
        print(f"{entry.service:<9}{'up' if entry.running else 'down':<6}{pid:<12}{entry.url}")
        print(f"{'':<9}{entry.detail}; log {entry.log_path}")
    return 0 if all(entry.running for entry in entries) else EXIT_NOT_RUNNING


def _env(config: InfraConfig, only: tuple[Service, ...]) -> int:
    entries = {entry.service: entry for entry in status(only, config=config)}
    urls = current_urls(only, config=config)
    for service in parse_only(only):
        url = urls.for_service(service)
        print(f"export {URL_ENV[service]}={shlex.quote(url or '')}")
        if not entries[service].running:
            _progress(f"{service} is not running; `python -m chat_localinfra up` starts it")
    return 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
