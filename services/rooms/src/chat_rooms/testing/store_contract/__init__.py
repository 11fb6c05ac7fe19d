"""One suite, every ``RoomsStore`` (the in-memory fake in unit tests, PostgreSQL in integration tests).

A test module subclasses ``StoreContract`` (the subclass's name starts with ``Test``), provides a ``store``
fixture returning a fresh, empty store, and implements ``emitted``. Every test reads back through a new
transaction, so what it checks is what committed. Only what ``chat_rooms.service.ports.Tx`` promises is
checked: where the port names no order, lists are compared as sets.

The suite is one class per area of the port, in a module each (builders.py makes what they store); this one
joins them, so a store passes them all or names the area it fails.
"""

from __future__ import annotations

from chat_rooms.testing.store_contract.bookkeeping import BookkeepingContract
from chat_rooms.testing.store_contract.listings import ListingsContract
from chat_rooms.testing.store_contract.members import MembersContract
from chat_rooms.testing.store_contract.rooms import RoomsContract
from chat_rooms.testing.store_contract.users import UsersContract


class StoreContract(RoomsContract, ListingsContract, MembersContract, UsersContract, BookkeepingContract):
    """The behaviour every ``RoomsStore`` guarantees (see chat_rooms.service.ports.Tx)."""
