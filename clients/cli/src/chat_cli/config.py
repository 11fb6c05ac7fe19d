"""Where the CLI keeps its server URL and session: one JSON file, readable by its owner only."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SERVER = "http://127.0.0.1:8000"
SERVER_ENV = "CHAT_CLI_SERVER"
FILE_MODE = 0o600
DIR_MODE = 0o700


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/chat-cli/config.json``, falling back to ``~/.config``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "chat-cli" / "config.json"


@dataclass
class Config:
    """The file's contents. Tokens are secrets: the file is created 0600 and rewritten atomically."""

    path: Path
    server: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    access_expires_at: float | None = None
    user_id: str | None = None
    username: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Config:
        """Read the file; a missing file is an empty config."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path=path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} does not hold a JSON object")
        known = {"server", "refresh_token", "access_token", "access_expires_at", "user_id", "username"}
        expires = raw.get("access_expires_at")
        return cls(
            path=path,
            server=_str(raw.get("server")),
            refresh_token=_str(raw.get("refresh_token")),
            access_token=_str(raw.get("access_token")),
            access_expires_at=float(expires) if isinstance(expires, int | float) else None,
            user_id=_str(raw.get("user_id")),
            username=_str(raw.get("username")),
            extra={k: v for k, v in raw.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        for key in ("server", "refresh_token", "access_token", "access_expires_at", "user_id", "username"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    def save(self) -> None:
        """Write atomically with mode 0600 (the directory 0700), whatever the umask."""
        self.path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.fchmod(descriptor, FILE_MODE)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(self.to_json(), handle, indent=2, sort_keys=True)
                handle.write("\n")
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise

    def forget_session(self) -> None:
        self.refresh_token = self.access_token = self.user_id = self.username = None
        self.access_expires_at = None


@contextlib.asynccontextmanager
async def locked(path: Path) -> AsyncIterator[None]:
    """Hold an exclusive lock beside the config file: two CLI processes must not spend one refresh token twice
    (the server treats a reused refresh token as theft and ends the session). Waits in a thread, not the loop."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def resolve_server(flag: str | None, config: Config, environ: Mapping[str, str] | None = None) -> str:
    """``--server``, then ``CHAT_CLI_SERVER``, then the config file, then the default."""
    env = os.environ if environ is None else environ
    chosen = flag or env.get(SERVER_ENV) or config.server or DEFAULT_SERVER
    return chosen.rstrip("/")


class ConfigError(Exception):
    """The config file exists but cannot be used."""


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
