"""Transactional outbox for the PostgreSQL services: enqueue in the change's transaction, relay to the bus.

Writers call ``enqueue(connection, envelope, topic=...)`` inside the transaction that makes the change and
``relay.wake()`` after it committed (``notify_relay`` from a process that runs no relay); one ``OutboxRelay`` per
database publishes what committed, in order per key, at least once (see
docs/decisions/0005-transactional-outbox.md).
"""

from chat_runtime.outbox.history import records_since
from chat_runtime.outbox.relay import (
    DEFAULT_POLL_INTERVAL,
    LOCK_KEY,
    NOTIFY_CHANNEL,
    OutboxMetrics,
    OutboxRelay,
    notify_relay,
)
from chat_runtime.outbox.store import (
    MAX_RECORD_BYTES,
    OUTBOX,
    decode_headers,
    encode_headers,
    enqueue,
    outbox_table,
)

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "LOCK_KEY",
    "MAX_RECORD_BYTES",
    "NOTIFY_CHANNEL",
    "OUTBOX",
    "OutboxMetrics",
    "OutboxRelay",
    "decode_headers",
    "encode_headers",
    "enqueue",
    "notify_relay",
    "outbox_table",
    "records_since",
]
