"""Export every contract's JSON Schema to ``chat_contracts/schemas/`` and check the committed copy.

Layout: ``schemas/<topic>/<type>.json`` per contract and ``schemas/envelope.json`` for the record value around
it. Output is deterministic (sorted keys, two-space indent, UTF-8, trailing newline) so the files diff
cleanly.

The committed files are also the compatibility baseline: writing refuses a breaking change (see
``chat_contracts.compat``) to a contract whose ``SCHEMA_VERSION`` did not go up, and refuses to drop a
contract, unless ``--allow-breaking`` is given.

    uv run python -m chat_contracts.schema_export            # regenerate
    uv run python -m chat_contracts.schema_export --check    # exit 1 if the committed files are stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chat_contracts.base import Contract
from chat_contracts.compat import breaking_changes
from chat_contracts.envelope import Envelope
from chat_contracts.topics import TOPICS

SCHEMAS_DIR = Path(__file__).parent / "schemas"
ENVELOPE_PATH = "envelope.json"
VERSION_KEY = "x-schema-version"
TOPIC_KEY = "x-topic"

SchemaFiles = dict[str, dict[str, Any]]
"""Schemas by path relative to the schemas directory, with forward slashes."""


def contract_schema(payload: type[Contract], topic: str) -> dict[str, Any]:
    """The JSON Schema of one contract, tagged with its topic and schema version."""
    schema = payload.model_json_schema()
    schema[TOPIC_KEY] = topic
    schema[VERSION_KEY] = payload.SCHEMA_VERSION
    return schema


def envelope_schema() -> dict[str, Any]:
    """The JSON Schema of a record value: the envelope, with ``data`` left to the per-type schemas."""
    schema = Envelope.model_json_schema()
    # Envelope.data is typed as the Contract base class, whose schema is an empty closed object; on the wire
    # it is the payload named by ``type``, so point readers at those schemas instead.
    schema.pop("$defs", None)
    schema["properties"]["data"] = {
        "description": "The payload; validated by schemas/<topic>/<type>.json for the envelope's type.",
        "title": "Data",
        "type": "object",
    }
    # ``id`` has a default in Python but every encoded record carries it, and decoding requires it.
    if "id" not in schema["required"]:
        schema["required"] = ["id", *schema["required"]]
    return schema


def export_schemas() -> SchemaFiles:
    """Every schema the current models produce."""
    files: SchemaFiles = {ENVELOPE_PATH: envelope_schema()}
    for spec in TOPICS.values():
        for type_name, payload in spec.payload_types.items():
            files[f"{spec.name}/{type_name}.json"] = contract_schema(payload, spec.name)
    return dict(sorted(files.items()))


def render(schema: Mapping[str, Any]) -> str:
    """The committed text of a schema."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load_committed(directory: Path = SCHEMAS_DIR) -> SchemaFiles:
    """The schema files under ``directory``."""
    files: SchemaFiles = {}
    if directory.is_dir():
        for path in sorted(directory.rglob("*.json")):
            files[path.relative_to(directory).as_posix()] = json.loads(path.read_text(encoding="utf-8"))
    return files


def differences(directory: Path = SCHEMAS_DIR) -> list[str]:
    """How the files under ``directory`` differ from what the models produce; empty when up to date."""
    current = export_schemas()
    problems: list[str] = []
    for relative, schema in current.items():
        path = directory / relative
        if not path.is_file():
            problems.append(f"missing: {relative}")
        elif path.read_text(encoding="utf-8") != render(schema):
            problems.append(f"outdated: {relative}")
    problems.extend(f"stale: {relative}" for relative in load_committed(directory) if relative not in current)
    return problems


def breaking_against_baseline(baseline: SchemaFiles, current: SchemaFiles) -> list[str]:
    """Breaking changes from the committed baseline to the current schemas that no version bump allows."""
    problems: list[str] = []
    for relative, old in baseline.items():
        new = current.get(relative)
        if new is None:
            problems.append(f"{relative}: contract removed")
            continue
        old_version, new_version = old.get(VERSION_KEY, 1), new.get(VERSION_KEY, 1)
        if new_version < old_version:
            problems.append(f"{relative}: {VERSION_KEY} went down from {old_version} to {new_version}")
        elif new_version == old_version:
            problems.extend(f"{relative}: {change}" for change in breaking_changes(old, new))
    return problems


def write(directory: Path = SCHEMAS_DIR) -> list[str]:
    """Write every schema under ``directory`` and delete stale ones; returns what it did, one line each."""
    current = export_schemas()
    changed: list[str] = []
    for relative, schema in current.items():
        path = directory / relative
        text = render(schema)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            changed.append(f"wrote {relative}")
    for relative in load_committed(directory):
        if relative not in current:
            (directory / relative).unlink()
            changed.append(f"removed {relative}")
    for folder in sorted(directory.iterdir()) if directory.is_dir() else []:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m chat_contracts.schema_export", description="Export contract JSON Schemas."
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed schemas are not up to date")
    parser.add_argument("--dir", type=Path, default=SCHEMAS_DIR, help="schemas directory (default: the package's)")
    parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="write even if a contract changed incompatibly without a SCHEMA_VERSION bump",
    )
    args = parser.parse_args(argv)
    directory: Path = args.dir
    if args.check:
        problems = differences(directory)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(
                "schemas are out of date: run `uv run python -m chat_contracts.schema_export`",
                file=sys.stderr,
            )
            return 1
        return 0
    breaking = breaking_against_baseline(load_committed(directory), export_schemas())
    if breaking and not args.allow_breaking:
        for problem in breaking:
            print(f"breaking: {problem}", file=sys.stderr)
        print(
            "refusing to write: raise SCHEMA_VERSION on the changed contracts (or add a new type) after "
            "making sure every consumer is ready; see libs/contracts/README.md",
            file=sys.stderr,
        )
        return 2
    for line in write(directory):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
