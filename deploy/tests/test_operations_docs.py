"""docs/operations.md documents every setting of every service: its reference table is generated from the
settings classes (`python -m chat_app.settings_reference`) and must match them."""

from __future__ import annotations

from pathlib import Path

from chat_app.settings_reference import (
    END_MARKER,
    REGENERATE,
    SERVICE_SETTINGS,
    START_MARKER,
    environment_variables,
    main,
    own_fields,
    render,
    service_prefix,
    splice,
)
from chat_runtime.settings import SHARED_PREFIX, ChatSettings

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _generated_part() -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    return text[text.index(START_MARKER) + len(START_MARKER) : text.index(END_MARKER)]


def test_the_committed_settings_reference_matches_the_settings_classes() -> None:
    current = OPERATIONS.read_text(encoding="utf-8")
    assert splice(current, render()) == current, f"docs/operations.md is out of date; run `{REGENERATE}`"


def test_every_field_of_every_service_is_in_the_reference() -> None:
    generated = _generated_part()
    expected = [f"`{SHARED_PREFIX}{name.upper()}`" for name in ChatSettings.model_fields]
    for cls in SERVICE_SETTINGS:
        expected += [f"`{service_prefix(cls)}{name.upper()}`" for name in own_fields(cls)]
    assert [name for name in expected if name not in generated] == []


def test_the_variable_map_covers_every_service_field() -> None:
    variables = environment_variables()
    for cls in SERVICE_SETTINGS:
        for name in cls.model_fields:
            assert variables[f"{service_prefix(cls)}{name.upper()}"] == (cls, name)


def test_check_mode_fails_on_a_stale_document_and_write_mode_fixes_it(tmp_path: Path) -> None:
    stale = tmp_path / "operations.md"
    stale.write_text(f"# Operations\n\n{START_MARKER}\n\n| old |\n{END_MARKER}\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert main(["--write", str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0
    assert "`CHAT_GATEWAY_INSTANCE_ID`" in stale.read_text(encoding="utf-8")


def test_a_setting_that_is_a_bounded_number_or_a_word_shows_both_with_the_numbers_bounds() -> None:
    row = next(line for line in render().splitlines() if "`CHAT_MESSAGES_STORE_WRITES_PER_SECOND`" in line)
    assert row.startswith("| `CHAT_MESSAGES_STORE_WRITES_PER_SECOND` | `auto` | number, ≥ 0, ≤ 100000 or `auto` |")
