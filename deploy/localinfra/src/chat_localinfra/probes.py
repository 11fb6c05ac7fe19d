"""Readiness checks that talk to each server with a real client, as the services will."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from chat_localinfra.errors import InfraError
from chat_localinfra.process import port_accepts, run_blocking


class ProbeFailed(Exception):
    """One readiness attempt failed; the message says why."""


def probe_postgres(url: str, *, timeout: float = 2.0) -> str:
    """Connect, run a query and return the server version; raises ProbeFailed."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout)), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        raise ProbeFailed(f"PostgreSQL at {_redact(url)}: {str(exc).strip()}") from exc
    return str(row[0]) if row else "unknown"


def probe_mongo(url: str, *, timeout: float = 2.0) -> str:
    """Check the Mongo-wire server accepts writes (a primary) and return its version; raises ProbeFailed."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    millis = max(100, int(timeout * 1000))
    client: MongoClient[dict[str, object]]
    try:
        with MongoClient(url, serverSelectionTimeoutMS=millis, connectTimeoutMS=millis) as client:
            hello = client.admin.command("hello")
            version = client.server_info().get("version", "unknown")
    except PyMongoError as exc:
        raise ProbeFailed(f"Mongo-wire server at {_redact(url)}: {exc}") from exc
    if not hello.get("isWritablePrimary"):
        raise ProbeFailed(f"Mongo-wire server at {_redact(url)} is not a writable primary yet")
    return str(version)


def probe_kafka(bootstrap: str, *, timeout: float = 5.0) -> int:
    """Fetch cluster metadata with a real Kafka client; return the number of brokers. Raises ProbeFailed."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if host and port.isdigit() and not port_accepts(int(port), host, timeout=min(timeout, 1.0)):
        raise ProbeFailed(f"Kafka at {bootstrap}: connection refused")

    async def describe() -> int:
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.errors import KafkaError

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
        except (KafkaError, OSError, TimeoutError) as exc:
            raise ProbeFailed(f"Kafka at {bootstrap}: {type(exc).__name__}: {exc}") from exc
        finally:
            await admin.close()
        return len(cluster.get("brokers", []))

    with _quiet("aiokafka"):
        return run_blocking(describe)


def wait_until_ready(
    probe: Callable[[], object],
    *,
    what: str,
    timeout: float,
    still_running: Callable[[], bool] | None = None,
    log_tail: Callable[[], str] | None = None,
) -> None:
    """Retry `probe` until it succeeds; raise InfraError (with the server's log tail) on timeout or exit."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    last_failure = "no attempt yet"
    while True:
        if still_running is not None and not still_running():
            raise InfraError(f"{what} exited during start-up{_with_tail(log_tail)}")
        try:
            probe()
        except ProbeFailed as exc:
            last_failure = str(exc)
        else:
            return
        if time.monotonic() >= deadline:
            raise InfraError(
                f"{what} did not become ready within {timeout:.0f}s (last attempt: {last_failure})"
                f"{_with_tail(log_tail)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _with_tail(log_tail: Callable[[], str] | None) -> str:
    return f"\n--- end of its log ---\n{log_tail()}" if log_tail is not None else ""


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    # The client logs every refused connection at ERROR while the broker is still starting.
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)
