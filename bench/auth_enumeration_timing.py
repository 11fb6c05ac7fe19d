"""How long login, register and forgot-password take for existing versus unknown accounts.

Runs the real auth use cases (argon2id at its production cost) on the in-memory store, so the figures show what
the code does, not database noise. Prints medians and p90 in milliseconds and the ratio between the two cases.

    uv run python bench/auth_enumeration_timing.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from chat_auth.bootstrap import build_context
from chat_auth.domain.errors import AuthError
from chat_auth.service import accounts, sessions
from chat_auth.service.context import AuthContext, Client
from chat_auth.settings import AuthSettings
from chat_auth.testing.fakes import FakeAuthStore, FakeClock, RecordingMailer
from chat_runtime.logging import configure_logging
from chat_runtime.settings import load_settings

PASSWORD = "correct horse battery staple"


async def timed(rounds: int, call: Callable[[int], Awaitable[object]], clock: FakeClock) -> list[float]:
    """Each call 16 minutes after the previous one, so rate limits and login delays never cut it short."""
    samples = []
    for i in range(rounds):
        clock.advance(minutes=16)
        started = time.perf_counter()
        with contextlib.suppress(AuthError):
            await call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def row(name: str, known: list[float], unknown: list[float]) -> str:
    k, u = statistics.median(known), statistics.median(unknown)
    return f"{name:<16} {k:8.2f} {_p90(known):8.2f} {u:8.2f} {_p90(unknown):8.2f} {u / k:7.2f}"


def _p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[-1]


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = load_settings(AuthSettings, data_dir=Path(data))
        clock = FakeClock()
        ctx: AuthContext = build_context(settings, store=FakeAuthStore(), mailer=RecordingMailer(), clock=clock)
        await accounts.register(
            ctx,
            email="known@example.com",
            username="known",
            password=PASSWORD,
            display_name=None,
            client=Client(ip="198.51.100.1"),
        )

        def client(i: int) -> Client:
            return Client(ip=f"203.0.113.{i % 250}")

        login_known = await timed(
            rounds,
            lambda i: sessions.login(ctx, identifier="known@example.com", password="wrong password!", client=client(i)),
            clock,
        )
        login_unknown = await timed(
            rounds,
            lambda i: sessions.login(ctx, identifier="ghost@example.com", password="wrong password!", client=client(i)),
            clock,
        )

        def register(email: str) -> Callable[[int], Awaitable[object]]:
            return lambda i: accounts.register(
                ctx,
                email=email.format(i=i),
                username=f"user{i}x{len(email)}",
                password=PASSWORD,
                display_name=None,
                client=client(i),
            )

        register_known = await timed(rounds, register("known@example.com"), clock)
        register_new = await timed(rounds, register("new{i}@example.com"), clock)
        forgot_known = await timed(
            rounds, lambda i: accounts.forgot_password(ctx, email="known@example.com", client=client(i)), clock
        )
        forgot_unknown = await timed(
            rounds, lambda i: accounts.forgot_password(ctx, email="ghost@example.com", client=client(i)), clock
        )
        await ctx.mail.drain()
    print(f"{rounds} rounds each, argon2id default cost, milliseconds")
    print(f"{'call':<16} {'known':>8} {'p90':>8} {'unknown':>8} {'p90':>8} {'ratio':>7}")
    print(row("login", login_known, login_unknown))
    print(row("register", register_known, register_new))
    print(row("forgot-password", forgot_known, forgot_unknown))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    configure_logging(level="warning", fmt="console")
    asyncio.run(main(parser.parse_args().rounds))
