"""While a `chat` command runs, SIGTERM stops it the way Ctrl-C does: cleanup code runs, nothing dies mid-way."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import pytest

from chat_app.signals import StopSignals, sigterm_interrupts


@pytest.fixture
def default_handlers() -> Iterator[None]:
    sigterm, sigint = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    # A process's own defaults, whatever earlier tests left: uvicorn servers run side by side in one test process
    # restore each other's handlers in the wrong order when they stop.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGTERM, sigterm)
    signal.signal(signal.SIGINT, sigint)


@pytest.mark.usefixtures("default_handlers")
def test_sigterm_interrupts_like_ctrl_c_and_says_so_in_the_exit_status() -> None:
    before = signal.getsignal(signal.SIGTERM)
    cleaned_up = False

    def work() -> None:
        nonlocal cleaned_up
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            cleaned_up = True

    with sigterm_interrupts() as stops, pytest.raises(KeyboardInterrupt):
        work()

    assert cleaned_up
    assert stops.exit_status == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before, "the previous handler is back"


@pytest.mark.usefixtures("default_handlers")
def test_sigterm_under_asyncio_run_cancels_the_main_task_as_ctrl_c_does() -> None:
    cancelled = False

    async def command() -> None:
        nonlocal cancelled
        asyncio.get_running_loop().call_soon(signal.raise_signal, signal.SIGTERM)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled = True
            raise

    with sigterm_interrupts(), pytest.raises(KeyboardInterrupt):
        asyncio.run(command())

    assert cancelled, "the task saw a cancellation (its cleanup ran), not a process killed mid-await"


@pytest.mark.usefixtures("default_handlers")
def test_sigterm_still_stops_a_command_whose_ctrl_c_is_ignored() -> None:
    # A background job of a non-interactive shell starts with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with sigterm_interrupts() as stops, pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM)
    assert stops.exit_status == 128 + signal.SIGTERM


def test_an_interrupt_that_was_not_sigterm_exits_as_ctrl_c_does() -> None:
    with sigterm_interrupts() as stops:
        pass
    assert stops.exit_status == 128 + signal.SIGINT


@pytest.mark.usefixtures("default_handlers")
def test_a_stop_signal_repeated_while_stopping_does_not_cut_the_cleanup_short() -> None:
    stops = StopSignals.install()
    try:
        stops.stopping()  # the server has drained; the embedded servers are being stopped
        signal.raise_signal(signal.SIGINT)  # uv run forwards the terminal's Ctrl-C a moment later
        signal.raise_signal(signal.SIGTERM)
        assert stops.repeated == 2
    finally:
        stops.restore()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
