"""Random identifiers without a system call each: version-4 UUIDs cut from a pool of ``os.urandom`` bytes.

``uuid.uuid4()`` reads 16 bytes from the kernel for every id; a message makes four or five ids (request, envelopes,
the message itself), and on a virtual machine each read is a costly system call. The pool reads 256 ids' worth at
once from the same source, so the ids are as unpredictable as ``uuid4``'s. Each thread has its own pool, and a
forked child starts a new one, so no two processes or threads hand out the same bytes.
"""

from __future__ import annotations

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


def random_uuid() -> uuid.UUID:
    """A random (version 4) UUID, as ``uuid.uuid4()`` makes."""
    pool = _pool
    if pool.at >= len(pool.buffer):
        pool.buffer = os.urandom(16 * _IDS_PER_READ)
        pool.at = 0
    start = pool.at
    pool.at = start + 16
    return uuid.UUID(bytes=pool.buffer[start : start + 16], version=4)
