"""The wait before each measurement (bench/meter.py ``settle``): every process quiet, a shared server by the
floor its resting share raised. Fake CPU readings and a fake clock: no processes, no real waiting."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from bench.meter import QUIET_SHARE, at_rest, quiet_under, raised_floors, settle


class Machine:
    """CPU seconds per process that grow by a given share of a core each fake second slept."""

    def __init__(self, shares: Mapping[str, list[float]]) -> None:
        self.shares = {name: list(values) for name, values in shares.items()}
        self.cpu = dict.fromkeys(shares, 0.0)
        self.now = 0.0

    def read(self) -> dict[str, float]:
        return {**self.cpu, "_busy": 0.0, "_total": 0.0}

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        for name, values in self.shares.items():
            share = values.pop(0) if len(values) > 1 else values[0]
            self.cpu[name] += share * seconds

    def clock(self) -> float:
        return self.now


async def wait(machine: Machine, *, resting: Mapping[str, float] | None = None, limit: float = 600.0) -> float:
    return await settle(machine.read, resting=resting, limit=limit, sleep=machine.sleep, clock=machine.clock)


async def test_a_shared_broker_busier_than_quiet_at_rest_holds_up_the_wait_until_its_limit_without_a_floor() -> None:
    machine = Machine({"gateway": [0.01], "kafka broker": [0.07]})
    assert await wait(machine, limit=30) == 30


async def test_a_broker_at_its_resting_share_counts_as_quiet_once_the_product_is() -> None:
    machine = Machine({"gateway": [0.5, 0.4, 0.01], "kafka broker": [0.2, 0.15, 0.07]})
    assert await wait(machine, resting={"kafka broker": 0.07}) == 5, "2 busy seconds, then 3 quiet ones"


async def test_the_product_is_held_to_the_quiet_share_whatever_the_broker_rests_at() -> None:
    machine = Machine({"gateway": [QUIET_SHARE + 0.01], "kafka broker": [0.0]})
    assert await wait(machine, resting={"kafka broker": 0.07}, limit=20) == 20


async def test_a_broker_well_above_its_resting_share_is_still_waited_for() -> None:
    machine = Machine({"gateway": [0.0], "kafka broker": [0.3] * 4 + [0.07]})
    assert await wait(machine, resting={"kafka broker": 0.07}) == 7, "4 busy seconds, then 3 quiet ones"


async def test_a_quiet_second_in_between_does_not_count_as_three() -> None:
    machine = Machine({"gateway": [0.0, 0.0, 0.2, 0.0]})
    assert await wait(machine) == 6


def test_only_a_resting_share_above_the_quiet_share_raises_a_floor() -> None:
    assert quiet_under(QUIET_SHARE, 0.02) == QUIET_SHARE
    assert quiet_under(QUIET_SHARE, 0.07) == pytest.approx(0.115)
    assert raised_floors({"kafka broker": 0.07, "mongo server": 0.01}) == {"kafka broker": pytest.approx(0.115)}


async def test_the_resting_share_is_the_median_second_so_a_housekeeping_burst_does_not_raise_it() -> None:
    machine = Machine({"kafka broker": [0.06, 0.07, 0.25, 0.08, 0.07]})
    resting = await at_rest(machine.read, 5, sleep=machine.sleep, clock=machine.clock)
    assert resting == {"kafka broker": pytest.approx(0.07)}
