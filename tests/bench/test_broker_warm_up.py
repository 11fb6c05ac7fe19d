"""The Kafka broker's warm-up before split mode's first measurement (bench/broker_warm_up.py ``warm_broker``):
unmeasured rounds until the broker's JIT compiler threads take under a tenth of its CPU; and how their CPU is read
(bench/meter.py ``compiler_cpu``). Fake rounds and a fake /proc: no broker, no load generator."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.broker_warm_up import BROKER, WarmUpRound, warm_broker
from bench.meter import compiler_cpu
from bench.serving import CLOCK_TICKS


class Broker:
    """A load generator whose every round makes the broker spend ``used[k]`` CPU seconds, ``compiling[k]`` of
    them in its compiler threads, for 1,000 acknowledged messages."""

    def __init__(self, used: list[float], compiling: list[float]) -> None:
        self.used, self.compiling = used, compiling
        self.cpu = self.compiled = 0.0
        self.rounds: list[Mapping[str, Any]] = []

    async def call(self, command: Mapping[str, Any], timeout: float = 900) -> dict[str, Any]:
        k = len(self.rounds)
        self.rounds.append(command)
        self.cpu += self.used[k]
        self.compiled += self.compiling[k]
        return {"acked": 1000}

    def read(self) -> dict[str, float]:
        return {BROKER: self.cpu, "gateway-a": 0.0, "_busy": 0.0, "_total": 0.0}


async def test_rounds_go_on_while_the_compiler_takes_a_tenth_or_more_and_stop_after_one_where_it_does_not() -> None:
    broker = Broker(used=[3.0, 2.0, 1.5, 1.0, 1.0], compiling=[1.8, 0.8, 0.3, 0.05, 0.0])
    rounds = await warm_broker(broker, broker.read, lambda: broker.compiled, rounds=10)
    assert rounds == [
        WarmUpRound(broker_ms_per_message=3.0, compiler_share=0.6),
        WarmUpRound(broker_ms_per_message=2.0, compiler_share=0.4),
        WarmUpRound(broker_ms_per_message=1.5, compiler_share=0.2),
        WarmUpRound(broker_ms_per_message=1.0, compiler_share=0.05),
    ]
    assert len(broker.rounds) == 4
    assert all(command["op"] == "step" and command["rate"] > 0 for command in broker.rounds)


async def test_a_broker_that_keeps_compiling_is_warmed_for_at_most_the_rounds_given() -> None:
    broker = Broker(used=[2.0] * 5, compiling=[1.0] * 5)
    rounds = await warm_broker(broker, broker.read, lambda: broker.compiled, rounds=3)
    assert [r.compiler_share for r in rounds] == [0.5, 0.5, 0.5]
    assert len(broker.rounds) == 3


async def test_no_rounds_asked_is_no_warm_up() -> None:
    broker = Broker(used=[2.0], compiling=[1.0])
    assert await warm_broker(broker, broker.read, lambda: broker.compiled, rounds=0) == []
    assert broker.rounds == []


def _thread(task: Path, name: str, utime: int, stime: int) -> None:
    task.mkdir(parents=True)
    # /proc/<pid>/task/<tid>/stat: pid (comm) state, then fields; utime and stime are the 12th and 13th after comm
    rest = ["S", *["0"] * 10, str(utime), str(stime), *["0"] * 8]
    (task / "stat").write_text(f"{task.name} ({name}) {' '.join(rest)}\n")


def test_compiler_cpu_adds_the_jit_compiler_threads_and_nothing_else(tmp_path: Path) -> None:
    tasks = tmp_path / "4242" / "task"
    _thread(tasks / "4242", "java", 500, 100)
    _thread(tasks / "4250", "C2 CompilerThre", 300, 20)
    _thread(tasks / "4251", "C1 CompilerThre", 80, 0)
    _thread(tasks / "4260", "data-plane-kafk", 900, 300)
    assert compiler_cpu(4242, proc=tmp_path) == (300 + 20 + 80) / CLOCK_TICKS
