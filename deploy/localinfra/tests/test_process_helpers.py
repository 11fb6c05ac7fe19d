import os
from pathlib import Path

from chat_localinfra.process import is_our_process, pid_is_alive, rotate_log, tail


def test_tail_returns_the_last_lines_of_a_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))

    assert tail(log, lines=3) == "line 97\nline 98\nline 99"


def test_tail_says_so_when_the_log_is_missing_or_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.touch()

    assert "no log at" in tail(tmp_path / "missing.log")
    assert "is empty" in tail(empty)


def test_tail_survives_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_bytes(b"ok\n\xff\xfe broken\n")

    assert tail(log).endswith("broken")


def test_rotating_keeps_exactly_one_previous_log(tmp_path: Path) -> None:
    log = tmp_path / "kafka.log"
    log.write_text("first run\n")
    rotate_log(log)
    log.write_text("second run\n")
    rotate_log(log)

    assert not log.exists()
    assert (tmp_path / "kafka.log.1").read_text() == "second run\n"


def test_rotating_a_log_that_does_not_exist_does_nothing(tmp_path: Path) -> None:
    rotate_log(tmp_path / "never.log")

    assert list(tmp_path.iterdir()) == []


def test_a_recorded_pid_counts_only_when_its_command_line_carries_the_marker() -> None:
    this_process = os.getpid()

    assert pid_is_alive(this_process)
    assert is_our_process(this_process, "python")
    assert not is_our_process(this_process, "/no/such/infra/kafka/server.properties")
