"""The record a started server leaves behind, so later commands can find and stop it by PID."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chat_localinfra.config import SERVICES, Service

_FORMAT_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class ServiceState:
    """One running server: its PID, how to reach it and what identifies its process."""

    service: Service
    pid: int
    url: str
    ports: tuple[int, ...]
    log_path: Path
    # A string that appears in the process's command line; guards against a recycled PID.
    process_marker: str
    started_at: datetime

    def to_json(self) -> str:
        payload: dict[str, Any] = {
            "version": _FORMAT_VERSION,
            "service": self.service,
            "pid": self.pid,
            "url": self.url,
            "ports": list(self.ports),
            "log_path": str(self.log_path),
            "process_marker": self.process_marker,
            "started_at": self.started_at.isoformat(),
        }
        return json.dumps(payload, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ServiceState:
        """Parse a state file; raises ValueError when it is not one this version wrote."""
        try:
            payload = json.loads(text)
            if not isinstance(payload, dict) or payload.get("version") != _FORMAT_VERSION:
                raise ValueError("unsupported state file version")
            service = payload["service"]
            if service not in SERVICES:
                raise ValueError(f"unknown service {service!r}")
            pid = payload["pid"]
            if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
                raise ValueError(f"invalid pid {pid!r}")
            ports = tuple(int(port) for port in payload["ports"])
            started_at = datetime.fromisoformat(payload["started_at"])
            if started_at.tzinfo is None:
                raise ValueError("started_at has no time zone")
            return cls(
                service=service,
                pid=pid,
                url=str(payload["url"]),
                ports=ports,
                log_path=Path(payload["log_path"]),
                process_marker=str(payload["process_marker"]),
                started_at=started_at,
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"malformed state file: {exc}") from exc


def utc_now() -> datetime:
    return datetime.now(UTC)


def state_path(state_dir: Path, service: Service) -> Path:
    return state_dir / f"{service}.json"


def read_state(state_dir: Path, service: Service) -> ServiceState | None:
    """The recorded state, or None when there is none or it cannot be parsed (treated as not running)."""
    path = state_path(state_dir, service)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        state = ServiceState.from_json(text)
    except ValueError:
        return None
    return state if state.service == service else None


def write_state(state_dir: Path, state: ServiceState) -> Path:
    """Record `state` atomically (a reader never sees half a file)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(state_dir, state.service)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(state.to_json(), encoding="utf-8")
    os.replace(tmp, path)
    return path


def remove_state(state_dir: Path, service: Service) -> None:
    state_path(state_dir, service).unlink(missing_ok=True)
