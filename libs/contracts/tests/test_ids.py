"""Pooled random UUIDs: version 4, never repeated, and a forked child never hands out its parent's."""

from __future__ import annotations

import multiprocessing
import uuid

from chat_contracts.ids import random_uuid


def test_ids_are_version_4_and_distinct() -> None:
    made = [random_uuid() for _ in range(20_000)]
    assert len(set(made)) == len(made)
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in made)


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
