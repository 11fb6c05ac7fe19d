"""Random identifiers without a system call each: version-4 UUIDs (and hex ids) cut from a pool of ``os.urandom``
bytes; and name-based (version 5) UUIDs made as fast.

``uuid.uuid4()`` reads 16 bytes from the kernel for every id; a message makes four or five ids (request, envelopes,
the message itself), and on a virtual machine each read is a costly system call. The pool reads 256 ids' worth at
once from the same source, so the ids are as unpredictable as ``uuid4``'s. Each thread has its own pool, and a
forked child starts a new one, so no two processes or threads hand out the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid

_IDS_PER_READ = 256


class _Pool(threading.local):
    def __init__(self) -> None:
        self.buffer = b""
        self.at = 0


_pool = _Pool()


def _forget_after_fork() -> None:
    global _pool  # a forked child must not reuse its parent's bytes
    _pool = _Pool()


os.register_at_fork(after_in_child=_forget_after_fork)


_VARIANT_AND_VERSION_CLEAR = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_VERSION_4_SET = (0x8000 << 48) | (4 << 76)
"""The variant (RFC 4122) and version (4) bits, as ``uuid.UUID(bytes=..., version=4)`` sets them."""
_VERSION_5_SET = (0x8000 << 48) | (5 << 76)
_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def _take(size: int) -> bytes:
    pool = _pool
    if pool.at + size > len(pool.buffer):
        pool.buffer = os.urandom(16 * _IDS_PER_READ)
        pool.at = 0
    start = pool.at
    pool.at = start + size
    return pool.buffer[start : start + size]


def random_uuid() -> uuid.UUID:
    """A random (version 4) UUID, as ``uuid.uuid4()`` makes.

    Made the way ``uuid.UUID.__init__`` makes one, without its argument checks: the checks were two thirds of the
    cost, and a message makes several ids. ``UUID`` keeps its value in two slots, ``int`` and ``is_safe``
    (tests/test_ids.py holds this equal to ``UUID(bytes=..., version=4)``)."""
    made = _new(uuid.UUID)
    _set(made, "int", (int.from_bytes(_take(16)) & _VARIANT_AND_VERSION_CLEAR) | _VERSION_4_SET)
    _set(made, "is_safe", _UNKNOWN)
    return made


def name_uuid(namespace: uuid.UUID, name: str) -> uuid.UUID:
    """The name-based (version 5, SHA-1) UUID of ``name`` in ``namespace``: ``uuid.uuid5(namespace, name)``, made
    as ``random_uuid`` makes its ids (tests/test_ids.py holds the two equal)."""
    digest = hashlib.sha1(namespace.bytes + name.encode(), usedforsecurity=False).digest()
    made = _new(uuid.UUID)
    _set(made, "int", (int.from_bytes(digest[:16]) & _VARIANT_AND_VERSION_CLEAR) | _VERSION_5_SET)
    _set(made, "is_safe", _UNKNOWN)
    return made


def random_hex() -> str:
    """32 random hexadecimal digits, the form of ``uuid4().hex`` (request and correlation ids, which are text)."""
    return _take(16).hex()
