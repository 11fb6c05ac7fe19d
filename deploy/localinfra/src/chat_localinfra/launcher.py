"""Start, stop and inspect the local servers; the API behind the CLI and the integration-test fixtures."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chat_localinfra.config import URL_ENV, InfraConfig, Service, parse_only
from chat_localinfra.errors import InfraError
from chat_localinfra.kafka import KafkaServer
from chat_localinfra.mongo import MongoServer
from chat_localinfra.postgres import PostgresServer
from chat_localinfra.probes import wait_until_ready
from chat_localinfra.process import (
    exclusive_lock,
    is_our_process,
    pid_is_alive,
    port_is_free,
    rotate_log,
    stop_signals_deferred,
    tail,
    terminate,
)
from chat_localinfra.servers import Progress, Server
from chat_localinfra.state import (
    ServiceState,
    read_state,
    remove_state,
    utc_now,
    write_state,
)

Only = Iterable[Service] | str | None


@dataclass(frozen=True)
class InfraUrls:
    """Where to reach the servers that were asked for (None for those that were not)."""

    postgres_url: str | None = None
    kafka_bootstrap: str | None = None
    mongo_url: str | None = None
    # The services this call started; the others were already running (fixtures stop only these).
    started_now: frozenset[Service] = field(default_factory=frozenset)

    def for_service(self, service: Service) -> str | None:
        by_service = {"postgres": self.postgres_url, "kafka": self.kafka_bootstrap, "mongo": self.mongo_url}
        return by_service[service]

    def as_env(self) -> dict[str, str]:
        """CHAT_TEST_* variables for the servers present."""
        return {URL_ENV[service]: url for service in URL_ENV if (url := self.for_service(service)) is not None}


@dataclass(frozen=True)
class ServiceStatus:
    """What `status` knows about one server."""

    service: Service
    running: bool
    url: str
    pid: int | None
    log_path: Path
    detail: str


def servers(config: InfraConfig) -> dict[Service, Server]:
    return {
        "postgres": PostgresServer(config),
        "kafka": KafkaServer(config),
        "mongo": MongoServer(config),
    }


def ensure_started(
    only: Only = None,
    *,
    config: InfraConfig | None = None,
    timeout: float | None = None,
    progress: Progress | None = None,
) -> InfraUrls:
    """Make the chosen servers (default: all) run and answer; a no-op for those already running."""
    config = config or InfraConfig.from_env()
    report = progress or _silent
    wait_seconds = timeout if timeout is not None else config.start_timeout
    chosen = parse_only(only)
    all_servers = servers(config)
    urls: dict[Service, str] = {}
    _prepare_infra_dir(config)
    with exclusive_lock(config.lock_path):
        to_start: list[Server] = []
        for service in chosen:
            server = all_servers[service]
            running = _running_state(config, server)
            if running is not None:
                _check_same_ports(server, running)
                # Alive is not enough: the recorded server must still answer before we hand out its URL.
                wait_until_ready(
                    server.probe,
                    what=f"{server.human_name} (already running, pid {running.pid}, log {running.log_path})",
                    timeout=wait_seconds,
                    still_running=functools.partial(pid_is_alive, running.pid),
                    log_tail=functools.partial(tail, running.log_path),
                )
                urls[service] = running.url
            else:
                _check_ports_free(server)
                to_start.append(server)
        # Install/initialise everything before launching anything: a failed download leaves nothing running.
        for server in to_start:
            rotate_log(server.log_path)
            server.prepare(report)
        # Launch everything, then wait, so the servers boot side by side.
        launched: list[tuple[Server, int]] = []
        try:
            ready = _launch_and_wait(config, to_start, launched=launched, timeout=wait_seconds, report=report)
        except BaseException:
            # A start that fails or is interrupted (Ctrl-C, SIGTERM) stops what it launched: nobody else would,
            # and the next start would reuse the leftovers as servers someone else runs and never stop them.
            _stop_launched(config, launched, report=report)
            raise
        urls.update(ready)
    return InfraUrls(
        postgres_url=urls.get("postgres"),
        kafka_bootstrap=urls.get("kafka"),
        mongo_url=urls.get("mongo"),
        started_now=frozenset(ready),
    )


def _launch_and_wait(
    config: InfraConfig,
    to_start: list[Server],
    *,
    launched: list[tuple[Server, int]],
    timeout: float,
    report: Progress,
) -> dict[Service, str]:
    """Launch each server, adding it to ``launched`` as it goes, then wait for each to answer; their URLs."""
    ready: dict[Service, str] = {}
    failures: list[str] = []
    began = time.monotonic()
    for server in to_start:
        report(f"{server.service}: starting")
        try:
            # Launched and recorded as one step: a signal in between would leave a server nobody knows of.
            with stop_signals_deferred():
                pid = server.launch(timeout)
                # Recorded before it is ready, so even a killed `up` leaves something `down` can stop.
                write_state(config.state_dir, _state_of(server, pid))
                launched.append((server, pid))
        except InfraError as exc:
            failures.append(str(exc))
            continue
    for server, pid in launched:
        try:
            wait_until_ready(
                server.probe,
                what=f"{server.human_name} (pid {pid}, log {server.log_path})",
                timeout=max(1.0, timeout - (time.monotonic() - began)),
                still_running=functools.partial(pid_is_alive, pid),
                log_tail=functools.partial(tail, server.log_path),
            )
        except InfraError as exc:
            failures.append(str(exc))
            continue
        ready[server.service] = server.url
        report(f"{server.service}: ready (pid {pid}, {time.monotonic() - began:.1f}s after launch)")
    if failures:
        raise InfraError("\n\n".join(failures))
    return ready


def _stop_launched(config: InfraConfig, launched: list[tuple[Server, int]], *, report: Progress) -> None:
    with stop_signals_deferred():
        for server, pid in launched:
            if pid_is_alive(pid):
                _stop_failed_start(server, pid)
                report(f"{server.service}: stopped (pid {pid}), the start did not complete")
            remove_state(config.state_dir, server.service)


def stop(
    only: Only = None, *, config: InfraConfig | None = None, progress: Progress | None = None
) -> frozenset[Service]:
    """Stop the chosen servers (default: all) by their recorded PIDs; returns those that were running."""
    config = config or InfraConfig.from_env()
    report = progress or _silent
    all_servers = servers(config)
    stopped: set[Service] = set()
    if not config.state_dir.is_dir():
        return frozenset()  # nothing was ever started here; don't create the folder just to say so
    # Inside the lock: a Ctrl-C while waiting for another `up` or `down` to finish still works.
    with exclusive_lock(config.lock_path), stop_signals_deferred():
        for service in parse_only(only):
            server = all_servers[service]
            running = _running_state(config, server)
            if running is None:
                continue
            began = time.monotonic()
            server.shutdown(running.pid)
            if pid_is_alive(running.pid):
                raise InfraError(f"{service} (pid {running.pid}) is still running after SIGKILL")
            remove_state(config.state_dir, service)
            stopped.add(service)
            report(f"{service}: stopped in {time.monotonic() - began:.1f}s (pid {running.pid})")
    return frozenset(stopped)


def status(only: Only = None, *, config: InfraConfig | None = None) -> tuple[ServiceStatus, ...]:
    """Whether each chosen server runs, with its URL, PID and log (reads only; changes nothing)."""
    config = config or InfraConfig.from_env()
    all_servers = servers(config)
    result = []
    for service in parse_only(only):
        server = all_servers[service]
        state = read_state(config.state_dir, service)
        if state is not None and is_our_process(state.pid, state.process_marker):
            started = state.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
            result.append(
                ServiceStatus(service, True, state.url, state.pid, state.log_path, f"running since {started}")
            )
        elif state is not None:
            result.append(
                ServiceStatus(
                    service, False, server.url, None, server.log_path, f"stopped (pid {state.pid} has exited)"
                )
            )
        else:
            result.append(ServiceStatus(service, False, server.url, None, server.log_path, "stopped"))
    return tuple(result)


def current_urls(only: Only = None, *, config: InfraConfig | None = None) -> InfraUrls:
    """The URLs of the chosen servers: those recorded for running ones, the configured ones otherwise."""
    by_service = {entry.service: entry.url for entry in status(only, config=config)}
    return InfraUrls(
        postgres_url=by_service.get("postgres"),
        kafka_bootstrap=by_service.get("kafka"),
        mongo_url=by_service.get("mongo"),
    )


def _state_of(server: Server, pid: int) -> ServiceState:
    return ServiceState(
        service=server.service,
        pid=pid,
        url=server.url,
        ports=tuple(server.ports.values()),
        log_path=server.log_path,
        process_marker=server.process_marker,
        started_at=utc_now(),
    )


def _running_state(config: InfraConfig, server: Server) -> ServiceState | None:
    state = read_state(config.state_dir, server.service)
    if state is None:
        return None
    if is_our_process(state.pid, state.process_marker):
        return state
    remove_state(config.state_dir, server.service)
    return None


def _check_same_ports(server: Server, running: ServiceState) -> None:
    wanted = tuple(server.ports.values())
    if running.ports != wanted:
        raise InfraError(
            f"{server.service} is already running on port(s) {_ports(running.ports)} (pid {running.pid}), "
            f"but the configuration now asks for {_ports(wanted)}; run `down --only {server.service}` first"
        )


def _check_ports_free(server: Server) -> None:
    busy: Mapping[str, int] = {name: port for name, port in server.ports.items() if not port_is_free(port)}
    if busy:
        listing = ", ".join(f"{port} ({name})" for name, port in busy.items())
        raise InfraError(
            f"cannot start {server.service}: port {listing} is already in use by a process this launcher "
            f"did not record. Stop it (find it with `ss -ltnp`), or pick another port with the variable "
            f"named in parentheses."
        )


def _stop_failed_start(server: Server, pid: int) -> None:
    if not pid_is_alive(pid):
        return
    try:
        server.shutdown(pid)
    except InfraError:
        terminate(pid, grace=10.0)


def _ports(ports: Iterable[int]) -> str:
    return ", ".join(str(port) for port in ports)


def _prepare_infra_dir(config: InfraConfig) -> None:
    config.infra_dir.mkdir(parents=True, exist_ok=True)
    # Keeps the data out of git even when CHAT_INFRA_DIR points somewhere the root .gitignore does not cover.
    ignore = config.infra_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Created by chat_localinfra: server data and logs, never committed.\n*\n")


def _silent(_: str) -> None:
    return None
