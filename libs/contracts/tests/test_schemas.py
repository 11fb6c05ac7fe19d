"""The committed JSON Schemas match the models and are the baseline no change may break silently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chat_contracts.compat import breaking_changes
from chat_contracts.schema_export import (
    ENVELOPE_PATH,
    SCHEMAS_DIR,
    VERSION_KEY,
    breaking_against_baseline,
    differences,
    export_schemas,
    load_committed,
    main,
    render,
)
from chat_contracts.topics import TOPICS, all_payloads

COMMITTED = load_committed()
CURRENT = export_schemas()
REGENERATE = "run `uv run python -m chat_contracts.schema_export` and commit the result"


def test_committed_schemas_match_what_the_models_export_now() -> None:
    assert differences() == [], REGENERATE


def test_no_contract_changed_incompatibly_since_the_committed_baseline() -> None:
    problems = breaking_against_baseline(COMMITTED, CURRENT)
    assert problems == [], "breaking contract change: bump SCHEMA_VERSION or add a new type (README)"


def test_there_is_one_schema_file_per_contract_plus_the_envelope() -> None:
    expected = {f"{spec.name}/{name}.json" for spec in TOPICS.values() for name in spec.payload_types}
    assert set(CURRENT) == expected | {ENVELOPE_PATH}
    assert len(CURRENT) == len(all_payloads()) + 1


def test_schema_files_are_sorted_indented_and_end_with_a_newline() -> None:
    for relative in CURRENT:
        text = (SCHEMAS_DIR / relative).read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_export_is_deterministic() -> None:
    assert {path: render(schema) for path, schema in export_schemas().items()} == {
        path: render(schema) for path, schema in CURRENT.items()
    }


def test_contract_schemas_name_their_topic_and_version() -> None:
    schema = CURRENT["chat.messages.events/message.created.json"]
    assert schema["x-topic"] == "chat.messages.events"
    assert schema[VERSION_KEY] == 1
    assert schema["additionalProperties"] is False


def test_the_envelope_schema_describes_the_wire_form() -> None:
    schema = CURRENT[ENVELOPE_PATH]
    assert "id" in schema["required"]
    assert schema["properties"]["data"]["type"] == "object"
    assert "$defs" not in schema


def test_the_check_command_passes_on_the_committed_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    assert capsys.readouterr().err == ""


def test_the_check_command_fails_on_a_directory_without_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--dir", str(Path(__file__).parent / "no-such-dir")]) == 1
    assert "missing: envelope.json" in capsys.readouterr().err


def bumped(schema: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**schema, **changes}


def without_field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    properties = {key: value for key, value in schema["properties"].items() if key != name}
    required = [key for key in schema.get("required", []) if key != name]
    return {**schema, "properties": properties, "required": required}


def test_a_breaking_change_without_a_version_bump_is_refused() -> None:
    path = "chat.messages.events/message.created.json"
    current = {**CURRENT, path: without_field(CURRENT[path], "body")}
    problems = breaking_against_baseline(COMMITTED, current)
    assert problems == [f"{path}: body: field_removed: field 'body' was removed"]


def test_a_breaking_change_with_a_version_bump_is_allowed() -> None:
    path = "chat.messages.events/message.created.json"
    changed = bumped(without_field(CURRENT[path], "body"), **{VERSION_KEY: 2})
    assert breaking_changes(COMMITTED[path], changed)
    assert breaking_against_baseline(COMMITTED, {**CURRENT, path: changed}) == []


def test_removing_a_contract_is_a_breaking_change() -> None:
    path = "chat.ephemeral/typing.changed.json"
    current = {key: value for key, value in CURRENT.items() if key != path}
    assert breaking_against_baseline(COMMITTED, current) == [f"{path}: contract removed"]


def test_lowering_a_schema_version_is_refused() -> None:
    path = "chat.ephemeral/typing.changed.json"
    baseline = {**COMMITTED, path: bumped(COMMITTED[path], **{VERSION_KEY: 3})}
    assert breaking_against_baseline(baseline, CURRENT) == [f"{path}: {VERSION_KEY} went down from 3 to 1"]
