"""One suite, every ``AuthStore`` (the in-memory fake in unit tests, PostgreSQL in integration tests).

A test module subclasses ``StoreContract`` (the subclass's name starts with ``Test``), provides a ``store``
fixture returning a fresh, empty store, and implements ``emitted``. Every test reads back through a new
transaction, so what it checks is what committed.

The suite is one class per area of the port, in a module each (builders.py makes what they store); this one
joins them, so a store passes them all or names the area it fails.
"""

from __future__ import annotations

from chat_auth.testing.store_contract.accounts import AccountsContract
from chat_auth.testing.store_contract.bookkeeping import BookkeepingContract
from chat_auth.testing.store_contract.builders import T0, a_code, a_session, a_token, a_user, an_event, roll_back
from chat_auth.testing.store_contract.codes import CodesContract
from chat_auth.testing.store_contract.keys import KeysContract
from chat_auth.testing.store_contract.sessions import SessionsContract

__all__ = ["T0", "StoreContract", "a_code", "a_session", "a_token", "a_user", "an_event", "roll_back"]


class StoreContract(AccountsContract, SessionsContract, CodesContract, KeysContract, BookkeepingContract):
    """The behaviour every ``AuthStore`` guarantees (see chat_auth.service.ports.Tx)."""
