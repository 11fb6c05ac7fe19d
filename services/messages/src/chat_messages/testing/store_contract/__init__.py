"""One suite, every ``MessageStore`` (the in-memory fake in unit tests, MongoDB in integration tests).

A test module subclasses ``StoreContract`` (the subclass's name starts with ``Test``) and provides a ``store``
fixture returning a fresh, empty store. The suite talks to the store through ``MessageStore`` only and checks
only what chat_messages.service.ports promises: where the port names no order, lists are compared as sets.

The suite is one class per area of the port, in a module each (builders.py makes what they store); this one
joins them, so a store passes them all or names the area it fails.
"""

from __future__ import annotations

from chat_messages.testing.store_contract.changes import ChangesContract
from chat_messages.testing.store_contract.inserts import InsertsContract
from chat_messages.testing.store_contract.markers import MarkersContract
from chat_messages.testing.store_contract.projections import ProjectionsContract
from chat_messages.testing.store_contract.reading import ReadingContract
from chat_messages.testing.store_contract.retention import RetentionContract


class StoreContract(
    ProjectionsContract, InsertsContract, ChangesContract, ReadingContract, MarkersContract, RetentionContract
):
    """The behaviour every ``MessageStore`` guarantees (see chat_messages.service.ports.MessageStore)."""
