"""Whether a Docker engine answers, asked over its socket directly.

docker-py's own check leaks a socket (a ResourceWarning, an error under the test suite's
filterwarnings=error) when no engine is there, and takes longer; a raw `GET /_ping` does not.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class DockerEndpoint:
    """Where the Docker API listens, from DOCKER_HOST."""

    scheme: Literal["unix", "tcp"]
    address: str  # a socket path for unix, host for tcp
    port: int = 0
    tls: bool = False

    def describe(self) -> str:
        return f"unix://{self.address}" if self.scheme == "unix" else f"tcp://{self.address}:{self.port}"


def docker_endpoint(environ: Mapping[str, str] | None = None) -> DockerEndpoint | None:
    """Parse DOCKER_HOST (default: the local socket); None for schemes this check cannot use (ssh, npipe)."""
    env = os.environ if environ is None else environ
    raw = env.get("DOCKER_HOST", "").strip() or DEFAULT_DOCKER_HOST
    parts = urlsplit(raw)
    tls = env.get("DOCKER_TLS_VERIFY", "").strip() not in ("", "0")
    if parts.scheme == "unix":
        return DockerEndpoint("unix", parts.path or "/var/run/docker.sock")
    if parts.scheme in ("tcp", "http", "https"):
        default_port = 2376 if tls or parts.scheme == "https" else 2375
        return DockerEndpoint(
            "tcp", parts.hostname or "localhost", parts.port or default_port, tls or parts.scheme == "https"
        )
    return None


def docker_engine_answers(endpoint: DockerEndpoint | None, *, timeout: float = 1.5) -> bool:
    """True when the engine responds to a ping within `timeout` seconds (TLS endpoints: when they accept)."""
    if endpoint is None:
        return False
    try:
        if endpoint.scheme == "unix":
            if not os.path.exists(endpoint.address):
                return False
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            target: str | tuple[str, int] = endpoint.address
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            target = (endpoint.address, endpoint.port)
        with sock:
            sock.connect(target)
            if endpoint.tls:
                return True  # speaking TLS needs the client certificates; an accepting port will do
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return is_ping_ok(reply)


def is_ping_ok(reply: bytes) -> bool:
    """Whether an HTTP reply's status line says 200."""
    status_line = reply.split(b"\r\n", 1)[0].split()
    return len(status_line) >= 2 and status_line[0].startswith(b"HTTP/") and status_line[1] == b"200"
