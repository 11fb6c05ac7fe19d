"""Entry point of ``chat-cli``: argument parsing, the session, exit codes."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import TextIO

import httpx

from chat_cli import commands, security
from chat_cli.api import Api
from chat_cli.config import Config, ConfigError, default_path, resolve_server
from chat_cli.errors import EXIT_OK, EXIT_USAGE, CliError, Usage
from chat_cli.output import Output


class _Parser(argparse.ArgumentParser):
    """Usage errors become ``Usage`` (exit 2 from ``run``), not a ``SystemExit`` from deep inside."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise Usage(f"{message}\n{self.format_usage().strip()}")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; global options are accepted before or after the command."""
    common = _Parser(add_help=False)
    common.add_argument("--server", default=argparse.SUPPRESS, help="server URL (or CHAT_CLI_SERVER)")
    common.add_argument("--config", default=argparse.SUPPRESS, type=Path, help="config file")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")

    parser = _Parser(prog="chat-cli", description="Terminal client for the chat server.", parents=[common])
    parser.add_argument("--version", action="version", version=f"chat-cli {version('chat-cli')}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, handler: commands.Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(handler=handler)
        return p

    p = command("register", commands.register, "create an account; a code is emailed")
    p.add_argument("email")
    p.add_argument("username")
    p.add_argument("--display-name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    p = command("verify", commands.verify, "verify the email address with the emailed code")
    p.add_argument("email")
    p.add_argument("code", nargs="?")
    p.add_argument("--resend", action="store_true", help="send a new code instead")

    p = command("login", commands.login, "sign in (asks for the authenticator code when needed)")
    p.add_argument("identifier", nargs="?", help="email or username")
    p.add_argument("--password-stdin", action="store_true", help="read the password (then a TOTP code) from stdin")
    p.add_argument("--totp", metavar="CODE", help="authenticator code, if the account has two-factor sign-in")
    p.add_argument("--recovery-code", metavar="CODE")
    p.add_argument("--browser", action="store_true", help="sign in with the server's identity provider (Google…)")
    p.add_argument("--no-open", action="store_true", help="with --browser: only print the URL to open")

    command("logout", commands.logout, "end this session and forget its tokens")
    command("whoami", commands.whoami, "show the signed-in account")

    p = command("sessions", security.sessions, "my signed-in sessions (devices); end one, the others, or all")
    ending = p.add_mutually_exclusive_group()
    ending.add_argument("--end", metavar="ID", help="end this session (the id, or its start as listed)")
    ending.add_argument("--others", action="store_true", help="end every session but this one")
    ending.add_argument("--all", action="store_true", help="end every session, this one too: log out everywhere")

    totp = sub.add_parser("totp", help="two-factor sign-in with an authenticator app", parents=[common])
    actions = totp.add_subparsers(dest="totp_action", metavar="ACTION", parser_class=_Parser)
    actions.required = True

    def action(name: str, handler: commands.Command, help_text: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(handler=handler)
        return p

    action("status", security.totp_status, "whether two-factor sign-in is on, and recovery codes left")
    action("setup", security.totp_setup, "turn it on: scan the QR code, type the first code, keep the recovery codes")
    p = action("disable", security.totp_disable, "turn it off with a current code or the password")
    p.add_argument("--code", help="a current code from the app")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p = action("recovery-codes", security.totp_recovery_codes, "replace the recovery codes (needs a current code)")
    p.add_argument("--code", help="a current code from the app")
    command("rooms", commands.rooms, "my rooms with unread counts")

    p = command("directory", commands.directory, "search public and password rooms")
    p.add_argument("query", nargs="?")
    p.add_argument("--limit", type=_positive, default=50)

    p = command("create", commands.create, "create a room")
    p.add_argument("name")
    p.add_argument("--kind", choices=["public", "private", "password"], default="public")
    p.add_argument("--topic")
    p.add_argument("--history", choices=["shared", "joined"])
    p.add_argument("--password", nargs="?", const="", help="room password (asked for when no value is given)")

    p = command("join", commands.join, "join a room by id or name")
    p.add_argument("room")
    p.add_argument("--password", nargs="?", const="", help="room password (asked for when no value is given)")

    p = command("leave", commands.leave, "leave a room")
    p.add_argument("room")

    p = command("dm", commands.dm, "open (or find) the direct room with a user (username or id)")
    p.add_argument("user")

    p = command("members", commands.members, "a room's members")
    p.add_argument("room")

    p = command("send", commands.send, "send a message; prints its seq")
    p.add_argument("room")
    p.add_argument("text", help="the message; - reads it from standard input")
    p.add_argument("--reply-to", metavar="MESSAGE_ID")
    p.add_argument("--client-msg-id", help="idempotency key: sending again with it never makes a second message")
    p.add_argument(
        "--attach", action="append", metavar="FILE", help="upload FILE with the message (repeatable; TEXT may be '')"
    )

    p = command("history", commands.history, "a page of a room's messages, oldest first")
    p.add_argument("room")
    p.add_argument("--limit", type=_positive, default=50)
    p.add_argument("--before", type=_positive, metavar="SEQ", help="messages before this seq")
    p.add_argument("--after", type=int, metavar="SEQ", help="messages after this seq (oldest first)")

    p = command("search", commands.search, "a room's messages with every word of QUERY, newest first")
    p.add_argument("room")
    p.add_argument("query", help="words (any case; a message matches when it has every one)")
    p.add_argument("--limit", type=_positive, default=20, help="matches per page (at most 100)")
    p.add_argument("--cursor", help="the next page, as the previous one said")

    p = command("download", commands.download, "save a message's attachment (history shows the command)")
    p.add_argument("room")
    p.add_argument("attachment_id")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="a file, a folder (keeps the file's name), or - for standard output"
    )

    p = command("open", commands.open_room, "interactive room: live messages, typing, presence")
    p.add_argument("room")
    p.add_argument("--history", type=_positive, default=30, help="messages to show on entry")
    p.add_argument("--transcript", metavar="FILE", help="also append every line shown to FILE")
    return parser


async def run(
    argv: list[str],
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: dict[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Run one command; answer its exit code (0 ok, 1 refused, 2 usage, 3 unreachable)."""
    env = dict(os.environ if environ is None else environ)
    out = Output(stdout or sys.stdout, stderr or sys.stderr, json_mode="--json" in argv)
    try:
        args = build_parser().parse_args(argv)
    except CliError as error:
        out.error(error)
        return error.exit_code
    except SystemExit as leaving:  # --help
        return int(leaving.code or 0) if isinstance(leaving.code, int) else EXIT_USAGE
    # Read with getattr: the global options are SUPPRESSed so that a subcommand does not reset them (set_defaults
    # would change the actions the parsers share).
    server, config_path = getattr(args, "server", None), getattr(args, "config", None)
    out.json_mode = bool(getattr(args, "json", False))
    try:
        config = Config.load(config_path or default_path(env))
    except ConfigError as error:
        out.error(Usage(str(error)))
        return EXIT_USAGE
    api = Api(resolve_server(server, config, env), config, transport=transport)
    ctx = commands.Context(api=api, out=out, stdin=stdin or sys.stdin, environ=env)
    try:
        await args.handler(args, ctx)
    except CliError as error:
        out.error(error)
        return error.exit_code
    finally:
        await api.aclose()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """The console script."""
    try:
        return asyncio.run(run(sys.argv[1:] if argv is None else list(argv)))
    except KeyboardInterrupt:
        return 130
