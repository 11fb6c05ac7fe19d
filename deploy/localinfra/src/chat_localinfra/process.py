"""Process plumbing: detached spawning, PID checks, signal-then-kill stopping, held signals, log tails, ports,
locks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import fcntl
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from chat_localinfra.errors import InfraError

T = TypeVar("T")

_PROC = Path("/proc")


def spawn_detached(argv: Sequence[str], *, log_path: Path, env: Mapping[str, str]) -> int:
    """Start `argv` in its own session with stdout+stderr appended to `log_path`; return its PID.

    posix_spawn rather than subprocess.Popen: the server outlives this call (and often this process),
    and a dropped Popen of a live child raises ResourceWarning, which the test suite turns into errors.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    file_actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    # Python ignores SIGPIPE (and may ignore others); ignored dispositions survive exec, so reset them.
    reset = [signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT]
    try:
        return os.posix_spawn(argv[0], list(argv), dict(env), file_actions=file_actions, setsid=True, setsigdef=reset)
    except OSError as exc:
        raise InfraError(f"cannot start {argv[0]}: {exc}") from exc


def run_command(
    argv: Sequence[str],
    *,
    what: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a short command to completion and return its output; raise InfraError with that output on failure.

    Output goes through a temporary file, not a pipe: `pg_ctl start` leaves a daemon behind that may keep an
    inherited pipe open, so reading a pipe to EOF could hang.
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
        try:
            completed = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                cwd=cwd,
                timeout=timeout,
                check=False,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise InfraError(f"{what}: {argv[0]} not found ({exc})") from exc
        except subprocess.TimeoutExpired:
            out.seek(0)
            output = _last_lines(out.read(), 30)
            raise InfraError(f"{what}: timed out after {timeout:.0f}s\n{output}") from None
        out.seek(0)
        output = out.read()
    if completed.returncode != 0:
        raise InfraError(f"{what}: exit status {completed.returncode}\n{_last_lines(output, 30)}")
    return output


def pid_is_alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie counts as dead; our own exited children get reaped)."""
    with contextlib.suppress(ChildProcessError, OSError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else (e.g. postgres under its own user)
    try:
        stat = (_PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True  # no /proc (not Linux): kill(0) is all we know
    # Field 3 is the state; the command name before it is parenthesised and may contain spaces.
    state = stat.rsplit(")", 1)[-1].split()[0:1]
    return state != ["Z"] and state != ["X"]


def process_command_line(pid: int) -> str | None:
    """The process's command line joined by spaces, or None when it cannot be read."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace").strip()


def is_our_process(pid: int, marker: str) -> bool:
    """Whether `pid` is alive and is the server we recorded (its command line mentions `marker`)."""
    if not pid_is_alive(pid):
        return False
    cmdline = process_command_line(pid)
    return cmdline is None or marker in cmdline


def terminate(pid: int, *, first_signal: signal.Signals = signal.SIGTERM, grace: float = 30.0) -> bool:
    """Send `first_signal`, wait up to `grace` seconds, then SIGKILL. Returns False if it had to kill."""
    if not _signal(pid, first_signal):
        return True
    if wait_for_exit(pid, grace):
        return True
    _signal(pid, signal.SIGKILL)
    wait_for_exit(pid, 10.0)
    return False


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs, then deliver the first one that came (if the block ended
    without an exception; otherwise that exception is already unwinding).

    For what must not be cut in half: launching a server and recording it (cut there, it runs with nobody to stop
    it), or stopping the servers (a second Ctrl-C, or the SIGINT `uv run` forwards on its own after the
    terminal's, would leave the rest running). Each such block ends in bounded time: every stop ends in SIGKILL.
    Only the main thread can set handlers; elsewhere (a fixture in a worker thread) this holds nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    # A handler rather than SIG_IGN: an ignored signal stays ignored in the children started meanwhile (pg_ctl).
    def hold(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        signal.raise_signal(received[0])


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Poll until `pid` has exited; False when it is still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while pid_is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    return True


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file (or a note that it is missing/empty)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc.strerror})"
    text = _last_lines(data, lines)
    return text if text.strip() else f"({path} is empty)"


def _last_lines(text: str, lines: int) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def rotate_log(path: Path) -> None:
    """Keep the previous run's log as `<name>.1` so a fresh start's errors are at the end of a short file."""
    if path.exists():
        os.replace(path, path.with_name(path.name + ".1"))


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as servers do, so TIME_WAIT is fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an advisory lock so concurrent `up`/`down` calls (two terminals, test workers) take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, even when the caller has a running loop.

    A private thread gets its own loop, so pytest-asyncio's loop (or any caller's) is never replaced.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="localinfra") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
