"""Where the local servers live and which ports they use, read from the environment."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from chat_localinfra.errors import ConfigError

Service = Literal["postgres", "kafka", "mongo"]
SERVICES: tuple[Service, ...] = get_args(Service)

INFRA_DIR_ENV = "CHAT_INFRA_DIR"
PG_PORT_ENV = "CHAT_INFRA_PG_PORT"
KAFKA_PORT_ENV = "CHAT_INFRA_KAFKA_PORT"
KAFKA_CONTROLLER_PORT_ENV = "CHAT_INFRA_KAFKA_CONTROLLER_PORT"
MONGO_PORT_ENV = "CHAT_INFRA_MONGO_PORT"
START_TIMEOUT_ENV = "CHAT_INFRA_START_TIMEOUT"
MONGO_ARGS_ENV = "CHAT_INFRA_MONGO_ARGS"

DEFAULT_PG_PORT = 54329
DEFAULT_KAFKA_PORT = 19092
DEFAULT_KAFKA_CONTROLLER_PORT = 19093
DEFAULT_MONGO_PORT = 27019
DEFAULT_START_TIMEOUT = 90.0

# The test-facing variables, shared with tests/integration/conftest.py and `env`.
POSTGRES_URL_ENV = "CHAT_TEST_POSTGRES_URL"
KAFKA_BOOTSTRAP_ENV = "CHAT_TEST_KAFKA_BOOTSTRAP"
MONGO_URL_ENV = "CHAT_TEST_MONGO_URL"
URL_ENV: Mapping[Service, str] = {
    "postgres": POSTGRES_URL_ENV,
    "kafka": KAFKA_BOOTSTRAP_ENV,
    "mongo": MONGO_URL_ENV,
}

# A file that only this repository has, used to find its root from the installed package.
_REPO_MARKER = Path("deploy") / "kafka" / "pom.xml"


@dataclass(frozen=True, kw_only=True)
class InfraConfig:
    """Everything the launcher needs to know about this machine's local servers."""

    repo_root: Path
    infra_dir: Path
    postgres_port: int = DEFAULT_PG_PORT
    kafka_port: int = DEFAULT_KAFKA_PORT
    kafka_controller_port: int = DEFAULT_KAFKA_CONTROLLER_PORT
    mongo_port: int = DEFAULT_MONGO_PORT
    start_timeout: float = DEFAULT_START_TIMEOUT
    mongo_args: tuple[str, ...] = ()
    """More secantusd-py flags, after ours (so a flag given twice takes this value)."""

    def __post_init__(self) -> None:
        ports = {
            PG_PORT_ENV: self.postgres_port,
            KAFKA_PORT_ENV: self.kafka_port,
            KAFKA_CONTROLLER_PORT_ENV: self.kafka_controller_port,
            MONGO_PORT_ENV: self.mongo_port,
        }
        for name, port in ports.items():
            if not 1 <= port <= 65535:
                raise ConfigError(f"{name}={port} is not a TCP port (1-65535)")
        if len(set(ports.values())) != len(ports):
            listing = ", ".join(f"{name}={port}" for name, port in ports.items())
            raise ConfigError(f"the local servers need four different ports, got {listing}")
        if self.start_timeout <= 0:
            raise ConfigError(f"{START_TIMEOUT_ENV} must be a positive number of seconds")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, repo_root: Path | None = None) -> InfraConfig:
        """Read the CHAT_INFRA_* variables (defaults for those unset); relative paths resolve from cwd."""
        env = os.environ if environ is None else environ
        root = (repo_root or find_repo_root()).resolve()
        raw_dir = env.get(INFRA_DIR_ENV, "").strip()
        infra_dir = Path(raw_dir).expanduser() if raw_dir else root / ".infra"
        return cls(
            repo_root=root,
            infra_dir=infra_dir.resolve(),
            postgres_port=parse_port(env, PG_PORT_ENV, DEFAULT_PG_PORT),
            kafka_port=parse_port(env, KAFKA_PORT_ENV, DEFAULT_KAFKA_PORT),
            kafka_controller_port=parse_port(env, KAFKA_CONTROLLER_PORT_ENV, DEFAULT_KAFKA_CONTROLLER_PORT),
            mongo_port=parse_port(env, MONGO_PORT_ENV, DEFAULT_MONGO_PORT),
            start_timeout=parse_seconds(env, START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT),
            mongo_args=parse_args(env, MONGO_ARGS_ENV),
        )

    @property
    def state_dir(self) -> Path:
        return self.infra_dir / "state"

    @property
    def lock_path(self) -> Path:
        return self.infra_dir / "launcher.lock"

    def service_dir(self, service: Service) -> Path:
        return self.infra_dir / service


def parse_port(environ: Mapping[str, str], name: str, default: int) -> int:
    """The port in `environ[name]`, or `default` when unset or blank."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw, 10)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name}={port} is not a TCP port (1-65535)")
    return port


def parse_seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds from `environ[name]`, or `default` when unset or blank."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if not seconds > 0:
        raise ConfigError(f"{name}={raw!r} must be a positive number of seconds")
    return seconds


def parse_args(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Command-line flags from `environ[name]`, split as a POSIX shell would."""
    try:
        return tuple(shlex.split(environ.get(name, "")))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def parse_only(value: str | Iterable[str] | None) -> tuple[Service, ...]:
    """The services named by `--only` ("postgres,kafka" or a list), in canonical order; all when empty."""
    if value is None:
        return SERVICES
    names = value.split(",") if isinstance(value, str) else list(value)
    wanted = {name.strip().lower() for name in names if name.strip()}
    if not wanted:
        return SERVICES
    unknown = sorted(wanted.difference(SERVICES))
    if unknown:
        raise ConfigError(f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
    return tuple(service for service in SERVICES if service in wanted)


def find_repo_root(start: Path | None = None) -> Path:
    """The checkout this package belongs to (the folder holding deploy/kafka/pom.xml)."""
    candidates = [start] if start is not None else [Path(__file__).resolve().parent, Path.cwd().resolve()]
    for candidate in candidates:
        for folder in (candidate, *candidate.parents):
            if (folder / _REPO_MARKER).is_file():
                return folder
    raise ConfigError(
        f"cannot find the repository root (a folder with {_REPO_MARKER}); "
        "run the launcher from inside the chat-platform checkout"
    )


def postgres_url(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def kafka_bootstrap(port: int) -> str:
    return f"127.0.0.1:{port}"


def mongo_url(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/?directConnection=true"
