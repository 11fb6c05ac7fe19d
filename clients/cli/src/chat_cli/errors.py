"""The three ways a command fails, each with its exit code."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class CliError(Exception):
    exit_code = EXIT_REFUSED


class Refused(CliError):
    """The server (or the session on this machine) said no; ``code`` is the problem's stable code."""

    exit_code = EXIT_REFUSED

    def __init__(self, code: str, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.body = body

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.status is not None:
            data["status"] = self.status
        if isinstance(self.body, dict) and "retry_after" in self.body:
            data["retry_after"] = self.body["retry_after"]
        return data


class Usage(CliError):
    """The command line itself is wrong (or ambiguous)."""

    exit_code = EXIT_USAGE


class Unreachable(CliError):
    """No answer from the server at all."""

    exit_code = EXIT_UNREACHABLE
