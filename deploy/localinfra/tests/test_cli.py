import pytest

from chat_localinfra.cli import build_parser


@pytest.mark.parametrize("command", ["up", "down", "status", "env"])
def test_every_command_accepts_a_service_selection(command: str) -> None:
    args = build_parser().parse_args([command, "--only", "postgres,kafka"])

    assert args.command == command
    assert args.only == "postgres,kafka"


def test_up_accepts_a_readiness_timeout() -> None:
    args = build_parser().parse_args(["up", "--timeout", "30"])

    assert args.timeout == 30.0


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([])

    assert exited.value.code == 2
    assert "COMMAND" in capsys.readouterr().err
