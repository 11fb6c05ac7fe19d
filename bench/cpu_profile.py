"""Run the ``chat`` command with a CPU-time sampler on its main thread (the event loop): where the CPU goes, not
the wall clock.

py-spy is the profiler of record (``uv run --with py-spy py-spy record …``), but on these virtual machines it cannot
tell a waiting thread from a running one, so its samples are wall-clock samples: a process that waits for a busy
core shows that wait as time in whatever it was doing. This sampler counts only CPU time: ``ITIMER_PROF`` fires
after the process's own CPU (user and system) advances, and the handler records the main thread's stack at that
moment. It asks for every millisecond, but the kernel counts a process's CPU in ticks (4 ms on this machine), so a
sample stands for about one tick; the shares hold, the counts are not milliseconds. C code (uvloop,
pydantic-core, orjson, system calls) is counted to the Python line that called it.

    python -m bench.cpu_profile OUT.txt up --external …    # chat's own arguments after the output path

``SIGUSR1`` starts sampling, ``SIGUSR2`` stops it and writes the collapsed stacks to OUT.txt (``bench.flame``
renders and sums them), so a benchmark samples one step and not the start-up.
"""

from __future__ import annotations

import collections
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

INTERVAL_SECONDS = 0.001

_counts: collections.Counter[str] = collections.Counter()


def _where(frame: FrameType) -> str:
    path = frame.f_code.co_filename
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{frame.f_code.co_name} ({path}:{frame.f_lineno})"


def _sample(_signum: int, frame: FrameType | None) -> None:
    stack = []
    while frame is not None:
        stack.append(_where(frame))
        frame = frame.f_back
    _counts[";".join(reversed(stack))] += 1


def _start(_signum: int, _frame: FrameType | None) -> None:
    _counts.clear()
    signal.setitimer(signal.ITIMER_PROF, INTERVAL_SECONDS, INTERVAL_SECONDS)


def _stopper(out: Path) -> Callable[[int, FrameType | None], None]:
    def stop(_signum: int, _frame: FrameType | None) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        # Written aside and renamed: the benchmark reads the file as soon as it exists.
        partial = out.with_name(out.name + ".partial")
        partial.write_text("".join(f"{stack} {count}\n" for stack, count in _counts.items()))
        partial.replace(out)

    return stop


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    signal.signal(signal.SIGPROF, _sample)
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stopper(out))
    from chat_app.cli import main as chat

    return chat(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
