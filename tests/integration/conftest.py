"""Real PostgreSQL, Kafka and Mongo-wire servers for the integration tests.

Each server is found, in order: (a) the URL in CHAT_TEST_POSTGRES_URL / CHAT_TEST_KAFKA_BOOTSTRAP /
CHAT_TEST_MONGO_URL; (b) a testcontainers container when a Docker engine answers; (c) the native server from
chat_localinfra (started if needed; only what this session started is stopped at its end). When none can
be had the tests fail, never skip, with a message that says how to fix it.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import werkzeug.serving
from psycopg import sql
from pymongo import AsyncMongoClient, MongoClient

from chat_localinfra import InfraError, Service, ensure_started, stop
from chat_localinfra.config import URL_ENV
from chat_localinfra.docker_engine import docker_endpoint, docker_engine_answers
from chat_localinfra.probes import probe_kafka, probe_mongo, probe_postgres, wait_until_ready
from chat_localinfra.smtp import SmtpInbox

_HERE = Path(__file__).resolve().parent
_ENV_URL_TIMEOUT = 15.0
_PROBES: dict[Service, Callable[[str], object]] = {
    "postgres": probe_postgres,
    "kafka": probe_kafka,
    "mongo": probe_mongo,
}
_HUMAN: dict[Service, str] = {"postgres": "PostgreSQL", "kafka": "Kafka", "mongo": "the Mongo-wire server"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, so mark only those that live under this folder.
    for item in items:
        if item.path.resolve().is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


class _Servers:
    """Resolves each server once per session and undoes, at the end, only what it set up itself."""

    def __init__(self) -> None:
        self._teardowns: list[Callable[[], None]] = []
        self._docker_checked = False
        self._docker_answers = False
        self._docker_where = "unknown"

    def url_for(self, service: Service) -> str:
        variable = URL_ENV[service]
        given = os.environ.get(variable, "").strip()
        if given:
            return self._from_environment(service, variable, given)
        if self._docker():
            return self._from_container(service)
        return self._from_native(service)

    def close(self) -> None:
        errors = []
        while self._teardowns:
            try:
                self._teardowns.pop()()
            except Exception as exc:  # one failed teardown must not leave the others running
                errors.append(exc)
        if errors:
            raise errors[0]

    def _from_environment(self, service: Service, variable: str, url: str) -> str:
        probe = _PROBES[service]
        try:
            wait_until_ready(lambda: probe(url), what=f"{variable}={url}", timeout=_ENV_URL_TIMEOUT)
        except InfraError as exc:
            problem = str(exc)
        else:
            return url
        pytest.fail(
            f"{variable} is set but {_HUMAN[service]} there does not answer: {problem}\n"
            f"Start that server, or unset {variable} to let the tests use Docker or the native servers.",
            pytrace=False,
        )

    def _from_container(self, service: Service) -> str:
        from chat_localinfra.containers import start_container

        try:
            started = start_container(service)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            self._teardowns.append(started.stop)
            return started.url
        pytest.fail(
            f"a Docker engine answers at {self._docker_where} but the {service} container did not start: "
            f"{problem}\nFix Docker (image pulls need the network), or set {URL_ENV[service]}, e.g. after "
            '`make infra-up` run `eval "$(uv run python -m chat_localinfra env)"`.',
            pytrace=False,
        )

    def _from_native(self, service: Service) -> str:
        try:
            urls = ensure_started([service])
        except InfraError as exc:
            problem = str(exc)
        else:
            if service in urls.started_now:
                self._teardowns.append(lambda: _stop_native(service))
            url = urls.for_service(service)
            assert url is not None
            return url
        pytest.fail(
            f"no {_HUMAN[service]} for the integration tests: {URL_ENV[service]} is not set, no Docker "
            f"engine answers at {self._docker_where}, and the native server failed to start:\n{problem}\n"
            f"Fix: run `make infra-up` (or `uv run python -m chat_localinfra up --only {service}`) "
            f"and read its error, or point {URL_ENV[service]} at a running server.",
            pytrace=False,
        )

    def _docker(self) -> bool:
        if not self._docker_checked:
            endpoint = docker_endpoint()
            self._docker_where = endpoint.describe() if endpoint else os.environ.get("DOCKER_HOST", "?")
            self._docker_answers = docker_engine_answers(endpoint)
            self._docker_checked = True
        return self._docker_answers


def _stop_native(service: Service) -> None:
    stop([service])


@pytest.fixture(scope="session")
def _servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    servers.close()


@pytest.fixture(scope="session")
def postgres_url(_servers: _Servers) -> str:
    """A PostgreSQL 18 superuser URL (postgresql://...) shared by the session; prefer `pg_database`."""
    return _servers.url_for("postgres")


@pytest.fixture(scope="session")
def kafka_bootstrap(_servers: _Servers) -> str:
    """host:port of a single-node Kafka (KRaft, no topic auto-creation) shared by the session."""
    return _servers.url_for("kafka")


@pytest.fixture(scope="session")
def mongo_url(_servers: _Servers) -> str:
    """A mongodb:// URL (directConnection, single-node replica set) shared by the session."""
    return _servers.url_for("mongo")


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[str]:
    """URL of a new, empty database with a random name, dropped (with its connections) after the test."""
    name = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(postgres_url, name)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def mongo_database_name(mongo_url: str) -> Iterator[str]:
    """A database name no other test uses; the database is dropped after the test."""
    name = f"test_{secrets.token_hex(6)}"
    try:
        yield name
    finally:
        client: MongoClient[dict[str, object]]
        with MongoClient(mongo_url, serverSelectionTimeoutMS=10_000) as client:
            client.drop_database(name)


@pytest.fixture
async def mongo_client(mongo_url: str) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """The messages service's own client (``chat_messages.adapters.mongo.client``) on the shared server."""
    from chat_messages.adapters import mongo

    client = mongo.client(mongo_url)
    yield client
    await client.close()


@pytest.fixture
async def kafka_topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A new topic (3 partitions, replication 1) with a random name, deleted after the test."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    name = f"test-{secrets.token_hex(6)}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=name, num_partitions=3, replication_factor=1)])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()


def _with_database(url: str, database: str) -> str:
    return urlsplit(url)._replace(path=f"/{database}").geturl()


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, int, SmtpInbox]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd), its port, and what it received."""
    from aiosmtpd.controller import Controller

    inbox = SmtpInbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield "127.0.0.1", port, inbox
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[str]:
    """oidc-provider-mock (a local OpenID provider) on a free loopback port, in a thread; its issuer is this URL,
    configured exactly as Google's is in production."""
    with warnings.catch_warnings():
        # Its import pulls in authlib.jose (deprecated by authlib for joserfc) and authlib's httpx client
        # (deprecated by authlib for httpx2).
        warnings.filterwarnings("ignore", message="authlib.jose module is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="The httpx module is deprecated", category=DeprecationWarning)
        import oidc_provider_mock

    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, oidc_provider_mock.app(require_nonce=True, issue_refresh_token=False), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
