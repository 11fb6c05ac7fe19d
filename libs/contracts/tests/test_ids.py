"""Pooled random ids: UUIDs of version 4 that behave as any other, never repeated, and a forked child never hands
out its parent's."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import re
import uuid

from chat_contracts.ids import name_uuid, random_hex, random_uuid


def test_ids_are_version_4_and_distinct() -> None:
    made = [random_uuid() for _ in range(20_000)]
    assert len(set(made)) == len(made)
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in made)


def test_a_pooled_uuid_is_the_uuid_its_bytes_make() -> None:
    for made in (random_uuid() for _ in range(2_000)):
        same = uuid.UUID(bytes=made.bytes, version=4)
        assert (made == same, hash(made) == hash(same), made.int == same.int, made.is_safe) == (
            True,
            True,
            True,
            uuid.SafeUUID.unknown,
        )
        assert uuid.UUID(str(made)) == made == uuid.UUID(hex=made.hex)
        assert pickle.loads(pickle.dumps(made)) == made == copy.deepcopy(made)  # noqa: S301 (bytes made here)
        assert {made: 1}[same] == 1


def test_a_name_based_uuid_is_the_one_uuid5_makes() -> None:
    namespaces = [uuid.uuid4() for _ in range(50)]
    names = ["", "a", "client-1", "ünï ✓ 𝄞", "x" * 200, *(uuid.uuid4().hex for _ in range(20))]
    for namespace in namespaces:
        for name in names:
            made, same = name_uuid(namespace, name), uuid.uuid5(namespace, name)
            assert (made, hash(made), made.version, made.variant) == (same, hash(same), 5, uuid.RFC_4122)
            assert uuid.UUID(str(made)) == made
            assert pickle.loads(pickle.dumps(made)) == made  # noqa: S301 (bytes made here)
    assert name_uuid(namespaces[0], "a") != name_uuid(namespaces[1], "a") != name_uuid(namespaces[1], "b")


def test_hex_ids_are_32_hex_digits_and_distinct() -> None:
    made = [random_hex() for _ in range(20_000)]
    assert len(set(made)) == len(made)
    assert all(re.fullmatch("[0-9a-f]{32}", h) for h in made)


def _child_ids(out: multiprocessing.Queue[list[str]]) -> None:
    out.put([random_uuid().hex for _ in range(3)])


def test_a_forked_child_does_not_repeat_the_ids_its_parent_makes_next() -> None:
    random_uuid()  # the parent has a pool with ids left in it
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[list[str]] = context.Queue()
    child = context.Process(target=_child_ids, args=(out,))
    child.start()
    theirs = out.get(timeout=30)
    child.join(30)
    ours = [random_uuid().hex for _ in range(3)]
    assert not set(theirs) & set(ours)
