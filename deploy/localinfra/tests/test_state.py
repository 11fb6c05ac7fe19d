from datetime import UTC, datetime
from pathlib import Path

import pytest

from chat_localinfra.state import (
    ServiceState,
    read_state,
    remove_state,
    state_path,
    write_state,
)


def _state(**overrides: object) -> ServiceState:
    fields: dict[str, object] = {
        "service": "kafka",
        "pid": 4242,
        "url": "127.0.0.1:19092",
        "ports": (19092, 19093),
        "log_path": Path("/infra/kafka/kafka.log"),
        "process_marker": "/infra/kafka/server.properties",
        "started_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    fields.update(overrides)
    return ServiceState(**fields)  # type: ignore[arg-type]


def test_a_written_state_reads_back_unchanged(tmp_path: Path) -> None:
    state = _state()

    write_state(tmp_path / "state", state)

    assert read_state(tmp_path / "state", "kafka") == state


def test_writing_leaves_no_temporary_files_behind(tmp_path: Path) -> None:
    write_state(tmp_path, _state())
    write_state(tmp_path, _state(pid=4343))

    assert [path.name for path in tmp_path.iterdir()] == ["kafka.json"]
    assert read_state(tmp_path, "kafka") == _state(pid=4343)


def test_a_missing_state_means_not_running(tmp_path: Path) -> None:
    assert read_state(tmp_path, "postgres") is None


@pytest.mark.parametrize(
    "content",
    [
        "",
        "not json",
        "[]",
        '{"version": 99}',
        '{"version": 1, "service": "kafka"}',
        '{"version": 1, "service": "redis", "pid": 5, "url": "", "ports": [], "log_path": "",'
        ' "process_marker": "", "started_at": "2026-01-01T00:00:00+00:00"}',
        '{"version": 1, "service": "kafka", "pid": 1, "url": "", "ports": [], "log_path": "",'
        ' "process_marker": "", "started_at": "2026-01-01T00:00:00+00:00"}',
        '{"version": 1, "service": "kafka", "pid": 5, "url": "", "ports": [], "log_path": "",'
        ' "process_marker": "", "started_at": "2026-01-01T00:00:00"}',
    ],
)
def test_an_unreadable_or_foreign_state_file_is_treated_as_not_running(tmp_path: Path, content: str) -> None:
    state_path(tmp_path, "kafka").write_text(content)

    assert read_state(tmp_path, "kafka") is None


def test_a_state_file_for_another_service_is_not_mistaken_for_this_one(tmp_path: Path) -> None:
    state_path(tmp_path, "mongo").write_text(_state(service="kafka").to_json())

    assert read_state(tmp_path, "mongo") is None


def test_removing_a_state_is_idempotent(tmp_path: Path) -> None:
    write_state(tmp_path, _state())

    remove_state(tmp_path, "kafka")
    remove_state(tmp_path, "kafka")

    assert read_state(tmp_path, "kafka") is None
