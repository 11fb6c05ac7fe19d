"""Backward-compatibility check between two versions of a contract's JSON Schema.

The question asked: once consumers run the new contract, will they still accept every record the old contract
allowed? Records already on a topic, and records from producers not yet upgraded, were written against the old
schema, so anything the new schema rejects is a breaking change:

- a field removed (contracts forbid unknown fields, so old records carrying it are rejected, and old consumers
  that relied on it stop getting it);
- a field's type changed or narrowed: a different JSON type, ``null`` no longer accepted, enum/``Literal``
  values removed, a string or list bound tightened (``maxLength`` lowered, ``minLength`` raised, a ``pattern``
  or ``format`` added or changed), a numeric bound tightened;
- an optional field made required;
- a new required field (old records lack it).

Adding an optional field, removing a bound, adding an enum value or accepting another type passes. The checker
follows ``$ref`` into ``$defs``, matches ``anyOf``/``oneOf`` branches, and recurses into nested objects, array
items and mapping values. It is deliberately conservative where it cannot decide (two different regular
expressions are reported as a change).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

ChangeKind: TypeAlias = Literal[
    "field_removed",
    "field_became_required",
    "required_field_added",
    "type_changed",
    "enum_narrowed",
    "bound_narrowed",
    "pattern_changed",
    "format_changed",
    "additional_properties_restricted",
]

Schema: TypeAlias = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BreakingChange:
    """One way the new schema rejects records the old one accepted."""

    path: str
    kind: ChangeKind
    detail: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.kind}: {self.detail}"


def breaking_changes(old: Schema, new: Schema) -> list[BreakingChange]:
    """Every change from ``old`` to ``new`` that makes a record valid under ``old`` invalid under ``new``."""
    return _Comparison(old, new).compare(old, new, "")


def is_compatible(old: Schema, new: Schema) -> bool:
    """True when consumers using ``new`` accept every record ``old`` allowed."""
    return not breaking_changes(old, new)


_NUMERIC = ("integer", "number")


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self._old_root = old_root
        self._new_root = new_root
        self._in_progress: set[tuple[str, str]] = set()

    def compare(self, old: Schema | bool, new: Schema | bool, path: str) -> list[BreakingChange]:
        # JSON Schema allows ``true`` (anything) and ``false`` (nothing) wherever a schema may appear.
        if new is True or old is False:
            return []
        if new is False:
            return [BreakingChange(path, "type_changed", "no value is accepted any more")]
        if old is True:
            old = {}
        # Recursive $defs: a pair of references already being compared further up is assumed compatible here;
        # any difference in it is reported where that comparison started.
        ref_pair = (str(old.get("$ref", "")), str(new.get("$ref", "")))
        if ref_pair != ("", ""):
            if ref_pair in self._in_progress:
                return []
            self._in_progress.add(ref_pair)
            try:
                return self._compare_resolved(_resolve(old, self._old_root), _resolve(new, self._new_root), path)
            finally:
                self._in_progress.discard(ref_pair)
        return self._compare_resolved(_resolve(old, self._old_root), _resolve(new, self._new_root), path)

    def _compare_resolved(self, old: Schema, new: Schema, path: str) -> list[BreakingChange]:
        old_branches = list(_branches(old, self._old_root))
        new_branches = list(_branches(new, self._new_root))
        if len(old_branches) == 1 and len(new_branches) == 1:
            return self._compare_single(old_branches[0], new_branches[0], path)
        changes: list[BreakingChange] = []
        for branch in old_branches:
            changes.extend(self._match_branch(branch, new_branches, path))
        return changes

    def _match_branch(self, old: Schema, candidates: Sequence[Schema], path: str) -> list[BreakingChange]:
        """The changes for the new branch that best accepts what old branch ``old`` accepted."""
        best: list[BreakingChange] | None = None
        for candidate in candidates:
            if not _types_compatible(_json_type(old), _json_type(candidate)):
                continue
            changes = self._compare_single(old, candidate, path)
            if not changes:
                return []
            if best is None or len(changes) < len(best):
                best = changes
        if best is not None:
            return best
        return [
            BreakingChange(
                path,
                "type_changed",
                f"{_describe(old)} is no longer accepted (now {_describe_all(candidates)})",
            )
        ]

    def _compare_single(self, old: Schema, new: Schema, path: str) -> list[BreakingChange]:
        if not new:
            return []
        old_type, new_type = _json_type(old), _json_type(new)
        if not _types_compatible(old_type, new_type):
            return [BreakingChange(path, "type_changed", f"{_describe(old)} became {_describe(new)}")]
        changes = _compare_enum(old, new, path)
        kind = new_type or old_type
        if kind == "string":
            changes += _compare_string(old, new, path)
        elif kind in _NUMERIC:
            changes += _compare_number(old, new, path)
        elif kind == "array":
            changes += self._compare_array(old, new, path)
        elif kind == "object":
            changes += self._compare_object(old, new, path)
        return changes

    def _compare_array(self, old: Schema, new: Schema, path: str) -> list[BreakingChange]:
        changes = _compare_count_bounds(old, new, path, "minItems", "maxItems", "items")
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            changes.append(BreakingChange(path, "bound_narrowed", "items must now be unique"))
        old_prefix, new_prefix = old.get("prefixItems", []), new.get("prefixItems", [])
        for index, new_item in enumerate(new_prefix):
            old_item = old_prefix[index] if index < len(old_prefix) else old.get("items", {})
            changes += self.compare(old_item, new_item, f"{path}[{index}]")
        if "items" in new:
            old_items = old.get("items", {})
            if new["items"] is False:
                if old_items is not False:
                    changes.append(BreakingChange(path, "bound_narrowed", "no further items are accepted"))
            elif old_items is not False:
                changes += self.compare(old_items or {}, new["items"], f"{path}[]")
        return changes

    def _compare_object(self, old: Schema, new: Schema, path: str) -> list[BreakingChange]:
        changes: list[BreakingChange] = []
        old_props: Mapping[str, Schema] = old.get("properties", {})
        new_props: Mapping[str, Schema] = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name, old_prop in old_props.items():
            field_path = _join(path, name)
            if name not in new_props:
                changes.append(BreakingChange(field_path, "field_removed", f"field {name!r} was removed"))
                continue
            changes += self.compare(old_prop, new_props[name], field_path)
            if name in new_required and name not in old_required:
                changes.append(
                    BreakingChange(field_path, "field_became_required", f"optional field {name!r} is now required")
                )
        for name in new_props:
            if name not in old_props and name in new_required:
                changes.append(
                    BreakingChange(
                        _join(path, name),
                        "required_field_added",
                        f"new field {name!r} is required (no default)",
                    )
                )
        changes += self._compare_extra_properties(old, new, path)
        changes += _compare_count_bounds(old, new, path, "minProperties", "maxProperties", "properties")
        if "propertyNames" in new:
            changes += self.compare(old.get("propertyNames", {}), new["propertyNames"], f"{path}{{keys}}")
        return changes

    def _compare_extra_properties(self, old: Schema, new: Schema, path: str) -> list[BreakingChange]:
        """Keys outside ``properties``: mapping values (``additionalProperties``, ``patternProperties``)."""
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        old_patterns: Mapping[str, Schema] = old.get("patternProperties", {})
        new_patterns: Mapping[str, Schema] = new.get("patternProperties", {})
        if old_extra is False and not old_patterns:
            return []
        if new_extra is False and not new_patterns:
            return [BreakingChange(path, "additional_properties_restricted", "extra keys are no longer accepted")]
        changes: list[BreakingChange] = []
        if set(new_patterns) - set(old_patterns):
            changes.append(
                BreakingChange(
                    f"{path}{{keys}}",
                    "pattern_changed",
                    f"key pattern(s) {sorted(old_patterns)} became {sorted(new_patterns)}",
                )
            )
        for pattern, new_value in new_patterns.items():
            if pattern in old_patterns:
                changes += self.compare(old_patterns[pattern], new_value, f"{path}{{}}")
        if isinstance(new_extra, Mapping) and old_extra is not False:
            changes += self.compare(old_extra if isinstance(old_extra, Mapping) else {}, new_extra, f"{path}{{}}")
        return changes


def _resolve(schema: Schema, root: Schema) -> Schema:
    """Follow ``$ref`` (and merge single ``allOf`` wrappers); sibling keywords override the target's."""
    seen: set[str] = set()
    current: Schema = schema
    while True:
        ref = current.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                raise ValueError(f"$ref cycle at {ref}")
            seen.add(ref)
            siblings = {key: value for key, value in current.items() if key != "$ref"}
            current = {**_pointer(root, ref), **siblings}
            continue
        all_of = current.get("allOf")
        if isinstance(all_of, list):
            merged: dict[str, Any] = {key: value for key, value in current.items() if key != "allOf"}
            for part in all_of:
                merged = {**_resolve(part, root), **merged}
            current = merged
            continue
        return current


def _pointer(root: Schema, ref: str) -> Schema:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref is supported, got {ref!r}")
    node: Any = root
    for token in ref[1:].split("/")[1:]:
        node = node[token.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, Mapping):
        raise ValueError(f"$ref {ref!r} does not point at a schema")
    return node


def _branches(schema: Schema, root: Schema) -> Iterator[Schema]:
    """The alternatives a schema accepts: ``anyOf``/``oneOf`` members, one per entry of a ``type`` list."""
    for keyword in ("anyOf", "oneOf"):
        members = schema.get(keyword)
        if isinstance(members, list):
            for member in members:
                merged = {key: value for key, value in schema.items() if key not in {keyword, "discriminator"}}
                yield from _branches({**merged, **_resolve(member, root)}, root)
            return
    type_value = schema.get("type")
    if isinstance(type_value, list):
        for single in type_value:
            yield {**schema, "type": single}
        return
    yield schema


def _json_type(schema: Schema) -> str | None:
    type_value = schema.get("type")
    if isinstance(type_value, str):
        return type_value
    values = _enum_values(schema)
    if values:
        kinds = {_type_of_value(value) for value in values}
        if len(kinds) == 1:
            return kinds.pop()
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


def _type_of_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _types_compatible(old: str | None, new: str | None) -> bool:
    """True when every value of JSON type ``old`` has JSON type ``new`` (None: any type)."""
    return new is None or old == new or (old == "integer" and new == "number")


def _enum_values(schema: Schema) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    values = schema.get("enum")
    return list(values) if isinstance(values, list) else None


def _compare_enum(old: Schema, new: Schema, path: str) -> list[BreakingChange]:
    new_values = _enum_values(new)
    if new_values is None:
        return []
    old_values = _enum_values(old)
    if old_values is None:
        return [BreakingChange(path, "enum_narrowed", f"now restricted to {new_values!r}")]
    removed = [value for value in old_values if value not in new_values]
    if removed:
        return [BreakingChange(path, "enum_narrowed", f"values no longer accepted: {removed!r}")]
    return []


def _compare_string(old: Schema, new: Schema, path: str) -> list[BreakingChange]:
    changes = _compare_count_bounds(old, new, path, "minLength", "maxLength", "characters")
    if "pattern" in new and new["pattern"] != old.get("pattern"):
        changes.append(
            BreakingChange(path, "pattern_changed", f"pattern {old.get('pattern')!r} became {new['pattern']!r}")
        )
    if "format" in new and new["format"] != old.get("format"):
        changes.append(BreakingChange(path, "format_changed", f"format {old.get('format')!r} became {new['format']!r}"))
    return changes


def _compare_count_bounds(
    old: Schema, new: Schema, path: str, min_key: str, max_key: str, what: str
) -> list[BreakingChange]:
    changes: list[BreakingChange] = []
    if min_key in new and new[min_key] > old.get(min_key, 0):
        changes.append(
            BreakingChange(path, "bound_narrowed", f"{min_key} {old.get(min_key, 0)} -> {new[min_key]} ({what})")
        )
    if max_key in new and (max_key not in old or new[max_key] < old[max_key]):
        changes.append(
            BreakingChange(path, "bound_narrowed", f"{max_key} {old.get(max_key)} -> {new[max_key]} ({what})")
        )
    return changes


def _compare_number(old: Schema, new: Schema, path: str) -> list[BreakingChange]:
    changes: list[BreakingChange] = []
    old_low, new_low = (
        _bound(old, "minimum", "exclusiveMinimum", lower=True),
        _bound(new, "minimum", "exclusiveMinimum", lower=True),
    )
    if new_low is not None and (old_low is None or _tighter(new_low, old_low, lower=True)):
        changes.append(BreakingChange(path, "bound_narrowed", f"lower bound {old_low} -> {new_low}"))
    old_high, new_high = (
        _bound(old, "maximum", "exclusiveMaximum", lower=False),
        _bound(new, "maximum", "exclusiveMaximum", lower=False),
    )
    if new_high is not None and (old_high is None or _tighter(new_high, old_high, lower=False)):
        changes.append(BreakingChange(path, "bound_narrowed", f"upper bound {old_high} -> {new_high}"))
    if "multipleOf" in new and new["multipleOf"] != old.get("multipleOf"):
        changes.append(
            BreakingChange(path, "bound_narrowed", f"multipleOf {old.get('multipleOf')} -> {new['multipleOf']}")
        )
    return changes


def _bound(schema: Schema, inclusive: str, exclusive: str, *, lower: bool) -> tuple[float, bool] | None:
    """The tightest bound as (value, exclusive?)."""
    candidates: list[tuple[float, bool]] = []
    if inclusive in schema:
        candidates.append((float(schema[inclusive]), False))
    if exclusive in schema and not isinstance(schema[exclusive], bool):
        candidates.append((float(schema[exclusive]), True))
    if not candidates:
        return None
    best = candidates[0]
    for candidate in candidates[1:]:
        if _tighter(candidate, best, lower=lower):
            best = candidate
    return best


def _tighter(a: tuple[float, bool], b: tuple[float, bool], *, lower: bool) -> bool:
    """True when bound ``a`` excludes some value bound ``b`` allows."""
    if a[0] != b[0]:
        return a[0] > b[0] if lower else a[0] < b[0]
    return a[1] and not b[1]


def _describe(schema: Schema) -> str:
    values = _enum_values(schema)
    if values is not None:
        return " | ".join(repr(value) for value in values)
    kind = _json_type(schema)
    if kind is None:
        return "any value"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return kind


def _describe_all(schemas: Sequence[Schema]) -> str:
    return " | ".join(_describe(schema) for schema in schemas) or "nothing"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
