"""The compatibility checker flags what would make new consumers reject old records, and nothing else."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chat_contracts.compat import BreakingChange, breaking_changes, is_compatible


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def changes(old: type[BaseModel], new: type[BaseModel]) -> list[BreakingChange]:
    return breaking_changes(old.model_json_schema(), new.model_json_schema())


def kinds_at(old: type[BaseModel], new: type[BaseModel]) -> set[tuple[str, str]]:
    return {(change.path, change.kind) for change in changes(old, new)}


def test_identical_schemas_are_compatible() -> None:
    class Old(Strict):
        a: int
        b: str | None = None

    assert is_compatible(Old.model_json_schema(), Old.model_json_schema())


def test_removing_a_field_is_a_breaking_change() -> None:
    class Old(Strict):
        a: int
        b: str

    class New(Strict):
        a: int

    assert kinds_at(Old, New) == {("b", "field_removed")}


def test_removing_an_optional_field_is_a_breaking_change() -> None:
    class Old(Strict):
        a: int
        b: str | None = None

    class New(Strict):
        a: int

    assert kinds_at(Old, New) == {("b", "field_removed")}


def test_changing_a_fields_type_is_a_breaking_change() -> None:
    class Old(Strict):
        a: int

    class New(Strict):
        a: str

    assert kinds_at(Old, New) == {("a", "type_changed")}


def test_changing_a_string_into_a_uuid_is_a_breaking_change() -> None:
    class Old(Strict):
        a: str

    class New(Strict):
        a: uuid.UUID

    assert kinds_at(Old, New) == {("a", "format_changed")}


def test_making_an_optional_field_required_is_a_breaking_change() -> None:
    class Old(Strict):
        a: int = 0

    class New(Strict):
        a: int

    assert kinds_at(Old, New) == {("a", "field_became_required")}


def test_no_longer_accepting_null_is_a_breaking_change() -> None:
    class Old(Strict):
        a: str | None

    class New(Strict):
        a: str

    result = changes(Old, New)
    assert [(change.path, change.kind) for change in result] == [("a", "type_changed")]
    assert "null" in result[0].detail


def test_adding_a_required_field_is_a_breaking_change() -> None:
    class Old(Strict):
        a: int

    class New(Strict):
        a: int
        b: str

    assert kinds_at(Old, New) == {("b", "required_field_added")}


def test_adding_an_optional_field_is_compatible() -> None:
    class Old(Strict):
        a: int

    class New(Strict):
        a: int
        b: str | None = None
        c: list[int] = Field(default_factory=list, max_length=3)

    assert changes(Old, New) == []


def test_removing_a_literal_value_is_a_breaking_change() -> None:
    class Old(Strict):
        status: Literal["online", "away", "offline"]

    class New(Strict):
        status: Literal["online", "offline"]

    result = changes(Old, New)
    assert [(change.path, change.kind) for change in result] == [("status", "enum_narrowed")]
    assert "'away'" in result[0].detail


def test_adding_a_literal_value_is_compatible() -> None:
    class Old(Strict):
        status: Literal["online", "offline"]

    class New(Strict):
        status: Literal["online", "away", "offline"]

    assert changes(Old, New) == []


def test_restricting_a_free_string_to_literals_is_a_breaking_change() -> None:
    class Old(Strict):
        status: str

    class New(Strict):
        status: Literal["online"]

    assert kinds_at(Old, New) == {("status", "enum_narrowed")}


def test_changing_the_type_discriminator_is_a_breaking_change() -> None:
    class Old(Strict):
        type: Literal["message.created"] = "message.created"

    class New(Strict):
        type: Literal["message.posted"] = "message.posted"

    assert kinds_at(Old, New) == {("type", "enum_narrowed")}


def test_lowering_a_max_length_is_a_breaking_change() -> None:
    class Old(Strict):
        body: str = Field(max_length=100)

    class New(Strict):
        body: str = Field(max_length=50)

    assert kinds_at(Old, New) == {("body", "bound_narrowed")}


def test_raising_a_max_length_or_lowering_a_min_length_is_compatible() -> None:
    class Old(Strict):
        body: str = Field(min_length=2, max_length=100)

    class New(Strict):
        body: str = Field(min_length=1, max_length=200)

    assert changes(Old, New) == []


def test_bounding_an_unbounded_string_is_a_breaking_change() -> None:
    class Old(Strict):
        body: str

    class New(Strict):
        body: str = Field(max_length=100)

    assert kinds_at(Old, New) == {("body", "bound_narrowed")}


def test_adding_a_pattern_is_a_breaking_change() -> None:
    class Old(Strict):
        token: str

    class New(Strict):
        token: str = Field(pattern=r"^[a-z]+$")

    assert kinds_at(Old, New) == {("token", "pattern_changed")}


def test_raising_a_minimum_is_a_breaking_change() -> None:
    class Old(Strict):
        seq: int = Field(ge=0)

    class New(Strict):
        seq: int = Field(ge=1)

    assert kinds_at(Old, New) == {("seq", "bound_narrowed")}


def test_switching_an_inclusive_bound_to_the_same_exclusive_bound_is_a_breaking_change() -> None:
    class Old(Strict):
        seq: int = Field(ge=1)

    class New(Strict):
        seq: int = Field(gt=1)

    assert kinds_at(Old, New) == {("seq", "bound_narrowed")}


def test_widening_an_integer_to_a_number_is_compatible_but_not_the_reverse() -> None:
    class Integer(Strict):
        n: int

    class Number(Strict):
        n: float

    assert changes(Integer, Number) == []
    assert kinds_at(Number, Integer) == {("n", "type_changed")}


def test_dropping_a_union_member_is_a_breaking_change() -> None:
    class Old(Strict):
        value: int | str

    class New(Strict):
        value: int

    assert kinds_at(Old, New) == {("value", "type_changed")}


def test_accepting_another_type_is_compatible() -> None:
    class Old(Strict):
        value: int

    class New(Strict):
        value: int | str | None = None

    assert changes(Old, New) == []


def test_changes_inside_referenced_nested_models_are_found_with_their_path() -> None:
    class InnerOld(Strict):
        x: int
        y: int

    class InnerNew(Strict):
        x: str

    class Old(Strict):
        inner: InnerOld

    class New(Strict):
        inner: InnerNew

    assert "$defs" in Old.model_json_schema()
    assert kinds_at(Old, New) == {("inner.x", "type_changed"), ("inner.y", "field_removed")}


def test_changes_inside_optional_nested_models_and_list_items_are_found() -> None:
    class ItemOld(Strict):
        name: str

    class ItemNew(Strict):
        name: str
        rank: int

    class Old(Strict):
        items: list[ItemOld] | None = None

    class New(Strict):
        items: list[ItemNew] | None = None

    assert kinds_at(Old, New) == {("items[].rank", "required_field_added")}


def test_narrowing_mapping_values_is_a_breaking_change() -> None:
    class Old(Strict):
        counts: dict[str, int]

    class New(Strict):
        counts: dict[str, int] = Field(max_length=10)

    class Narrower(Strict):
        counts: dict[str, bool]

    assert kinds_at(Old, New) == {("counts", "bound_narrowed")}
    assert kinds_at(Old, Narrower) == {("counts{}", "type_changed")}


def test_forbidding_extra_fields_is_a_breaking_change() -> None:
    class Old(BaseModel):
        a: int

    class New(Strict):
        a: int

    assert kinds_at(Old, New) == {("", "additional_properties_restricted")}


def test_recursive_models_are_compared_without_looping() -> None:
    class NodeOld(Strict):
        label: str
        children: list[NodeOld] = Field(default_factory=list)

    class NodeNew(Strict):
        label: str = Field(max_length=10)
        children: list[NodeNew] = Field(default_factory=list)

    assert ("label", "bound_narrowed") in kinds_at(NodeOld, NodeNew)
    assert changes(NodeOld, NodeOld) == []


def test_hand_written_schemas_with_type_lists_and_boolean_schemas_are_understood() -> None:
    old: dict[str, Any] = {"type": "object", "properties": {"a": {"type": ["string", "null"]}, "b": True}}
    new: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}, "b": False}}
    kinds = {(change.path, change.kind) for change in breaking_changes(old, new)}
    assert kinds == {("a", "type_changed"), ("b", "type_changed")}


def test_a_breaking_change_reads_as_path_kind_and_detail() -> None:
    change = BreakingChange("inner.x", "field_removed", "field 'x' was removed")
    assert str(change) == "inner.x: field_removed: field 'x' was removed"
    assert str(BreakingChange("", "type_changed", "integer became string")).startswith("<root>: ")
