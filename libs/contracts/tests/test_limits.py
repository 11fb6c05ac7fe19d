"""The limits a client sees: one table in chat_contracts, and docs/protocol.md and the web client generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from chat_contracts import fields
from chat_contracts.fields import MAX_BODY_CHARS, BodyText, normalized_body
from chat_contracts.limits import END_MARKER, LIMITS, START_MARKER, main, markdown, typescript

ROOT = Path(__file__).resolve().parents[3]
PROTOCOL = ROOT / "docs" / "protocol.md"
WEB_LIMITS = ROOT / "clients" / "web" / "src" / "limits.ts"
BODY = TypeAdapter(BodyText)


def test_docs_protocol_and_the_web_client_carry_the_limits_of_the_contracts() -> None:
    assert main(["--protocol", str(PROTOCOL), "--web", str(WEB_LIMITS), "--check"]) == 0, "run `make schemas`"
    table = PROTOCOL.read_text(encoding="utf-8").split(START_MARKER)[1].split(END_MARKER)[0]
    assert f"| {MAX_BODY_CHARS:,} characters |" in table
    assert f"export const MAX_BODY_CHARS = {MAX_BODY_CHARS};" in WEB_LIMITS.read_text(encoding="utf-8")


def test_every_listed_limit_is_the_constant_of_that_name() -> None:
    for limit in LIMITS:
        assert limit.value == getattr(fields, limit.name)
        assert f"{limit.value:,} {limit.unit}" in markdown()
        assert f"export const {limit.name} = {limit.value};" in typescript()


def test_check_fails_on_a_stale_table_or_web_module_and_writing_fixes_both(tmp_path: Path) -> None:
    protocol, web = tmp_path / "protocol.md", tmp_path / "limits.ts"
    protocol.write_text(f"# Protocol\n\n{START_MARKER}\n| body | 16,000 characters |\n{END_MARKER}\nafter\n", "utf-8")
    args = ["--protocol", str(protocol), "--web", str(web)]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    written = protocol.read_text(encoding="utf-8")
    assert "16,000" not in written
    assert written.endswith(f"{END_MARKER}\nafter\n")


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("x" * MAX_BODY_CHARS, "x" * MAX_BODY_CHARS),
        ("e\u0301" * MAX_BODY_CHARS, "\u00e9" * MAX_BODY_CHARS),  # twice the code points before NFC
        ("x" * MAX_BODY_CHARS + " \n\t", "x" * MAX_BODY_CHARS),  # trailing whitespace is not counted
        ("", ""),
    ],
)
def test_a_body_is_counted_in_the_form_it_is_stored_in(sent: str, stored: str) -> None:
    assert BODY.validate_python(sent) == stored == normalized_body(sent)


@pytest.mark.parametrize("sent", ["x" * (MAX_BODY_CHARS + 1), "\ufb2c" * (MAX_BODY_CHARS // 2)])
def test_a_body_over_the_limit_once_normalized_is_refused(sent: str) -> None:
    # U+FB2C is one code point that NFC turns into three: short as sent, too long as stored.
    with pytest.raises(ValidationError, match=f"at most {MAX_BODY_CHARS} characters"):
        BODY.validate_python(sent)
