"""The message bus port and its adapters (Kafka for split mode, in-process for the all-in-one mode)."""

from chat_runtime.bus.port import (
    Bus,
    Handler,
    PoisonRecord,
    RetryableError,
    RetryPolicy,
    Subscription,
)

__all__ = ["Bus", "Handler", "PoisonRecord", "RetryPolicy", "RetryableError", "Subscription"]
