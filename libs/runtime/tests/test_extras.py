"""A chat-runtime module imported without its extra says which extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chat_runtime.extras import MissingExtra, missing_extra


@pytest.mark.parametrize(
    ("module", "driver", "extra"),
    [
        ("chat_runtime.postgres", "sqlalchemy", "postgres"),
        ("chat_runtime.pg_store", "psycopg", "postgres"),
        ("chat_runtime.outbox", "sqlalchemy", "postgres"),
        ("chat_runtime.alembic_env", "alembic", "postgres"),
        ("chat_runtime.bus.kafka", "aiokafka", "kafka"),
        ("chat_runtime.bus.kafka_consumer", "aiokafka", "kafka"),
        ("chat_runtime.bus.kafka_follow", "aiokafka", "kafka"),
        ("chat_runtime.bus.kafka_setup", "aiokafka", "kafka"),
        ("chat_runtime.bus.aiokafka_internals", "aiokafka", "kafka"),
    ],
)
def test_a_module_imported_without_its_extra_names_the_extra(module: str, driver: str, extra: str) -> None:
    script = (
        "import sys\n"
        f"sys.modules[{driver!r}] = None  # not installed\n"
        "from chat_runtime.extras import MissingExtra\n"
        "try:\n"
        f"    import {module}\n"
        "except MissingExtra as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    sys.exit('imported')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"chat-runtime[{extra}]" in done.stdout


def test_the_error_is_an_import_error_naming_the_missing_package() -> None:
    error = missing_extra("postgres", "chat_runtime.postgres", ModuleNotFoundError(name="sqlalchemy"))
    assert isinstance(error, ImportError)
    assert isinstance(error, MissingExtra)
    assert error.name == "sqlalchemy"
    assert "sqlalchemy is not installed" in str(error)
