"""The Kafka broker's warm-up before split mode's first measurement (``bench/throughput.py``): unmeasured rounds of
sends until the broker's JVM has compiled its hot paths, so that the steps measure a broker as a deployment has one,
running for weeks, and not its JIT compiler."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bench.meter import Meter, compiler_cpu, spent

BROKER = "kafka broker"
BROKER_WARM_RATE = 200
BROKER_WARM_SECONDS = 5.0
BROKER_COMPILING = 0.10
"""The warm-up ends after a round in which the broker's JIT compiler threads took under this share of its CPU."""


@dataclass(frozen=True)
class WarmUpRound:
    """One round: the broker's CPU per acknowledged message, and the share of it its compiler threads took."""

    broker_ms_per_message: float
    compiler_share: float


class Steps(Protocol):
    """The load generator (``bench.throughput.Load``): one command at a time."""

    async def call(self, command: Mapping[str, Any], timeout: float = 900) -> dict[str, Any]: ...


async def warm_broker(
    load: Steps, read: Callable[[], Mapping[str, float]], compiled: Callable[[], float], rounds: int
) -> list[WarmUpRound]:
    """Unmeasured rounds of sends (split mode, before the first measurement) until the Kafka broker's JVM has compiled
    its hot paths: until its JIT compiler threads take under ``BROKER_COMPILING`` of its CPU in a round, at most
    ``rounds``. ``read`` gives the CPU seconds of each process (``Meter.read``), ``compiled`` those of the broker's
    compiler threads.

    A broker that has just started (a fresh machine, or ``make infra-down``) spends several times its settled CPU
    per request for its first tens of thousands of requests, half of it or more in the compiler threads. Measured
    2026-12-06 on a restarted broker, split 20 × 20: 5.9, 3.4 and 2.5 ms per message at 100 msg/s in three runs in a
    row, 2.8, 2.1 and 1.3 at 200/s, and 200/s failed (p99 283 and 276 ms) until the third run passed it (92 ms).
    A deployed broker runs for weeks; steps on a cold one would count its compiler as the product's cost."""
    done: list[WarmUpRound] = []
    for _ in range(rounds):
        before, compiled_before = read(), compiled()
        row = await load.call(
            {
                "op": "step",
                "id": f"b{secrets.token_hex(3)}",
                "rate": BROKER_WARM_RATE,
                "seconds": BROKER_WARM_SECONDS,
                "quiet_ms": 1000,
                "limit_ms": 60000,
            }
        )
        used = spent(before, read()).get(BROKER, 0.0)
        compiling = compiled() - compiled_before
        done.append(
            WarmUpRound(
                broker_ms_per_message=round(used / max(1, row["acked"]) * 1000, 3),
                compiler_share=round(compiling / used, 3) if used > 0 else 0.0,
            )
        )
        if done[-1].compiler_share < BROKER_COMPILING:
            break
    return done


async def warm_broker_if_asked(
    load: Steps, meter: Meter, infra: Mapping[str, int], rounds: int, label: str
) -> list[WarmUpRound]:
    """``warm_broker`` when the run has a Kafka broker and ``rounds`` asks for a warm-up; prints each round."""
    if not rounds or BROKER not in infra:
        return []
    broker = infra[BROKER]
    warmed = await warm_broker(load, meter.read, lambda: compiler_cpu(broker), rounds)
    figures = ", ".join(f"{r.broker_ms_per_message} ms ({r.compiler_share:.0%} compiling)" for r in warmed)
    print(f"  {label}: the Kafka broker's warm-up, CPU per message by round: {figures}", flush=True)
    return warmed
