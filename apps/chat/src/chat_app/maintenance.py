"""`chat migrate`: bring each service's store to the schema this version expects, then exit.

auth and rooms apply their Alembic migrations (creating the database if needed); messages creates its MongoDB
indexes (GridFS included). Each step is idempotent, so the command is safe to run before every deploy; the
services also do it on start unless ``CHAT_<SERVICE>_MIGRATE_ON_START=false``. Each step logs what it did, with
the store's name bound: ``postgres.migrated`` (whether it created the database, the revisions applied, from →
to) or ``postgres.already_at_head``, and ``messages.indexes_ensured``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import structlog
from structlog.contextvars import bound_contextvars

from chat_app.compose import require_installed
from chat_runtime.settings import load_settings

Store = Literal["auth", "rooms", "messages"]
STORES: tuple[Store, ...] = ("auth", "rooms", "messages")

log = structlog.get_logger("chat.migrate")


async def migrate(stores: Sequence[Store]) -> None:
    """Bring each of ``stores`` to this version's schema, one after the other."""
    require_installed(stores)
    for store in stores:
        with bound_contextvars(store=store):
            if store == "auth":
                from chat_auth.adapters.postgres import MIGRATIONS as AUTH_MIGRATIONS
                from chat_auth.settings import AuthSettings
                from chat_runtime import postgres

                await postgres.prepare(load_settings(AuthSettings).database_url, AUTH_MIGRATIONS)
            elif store == "rooms":
                from chat_rooms.adapters.postgres import MIGRATIONS as ROOMS_MIGRATIONS
                from chat_rooms.settings import RoomsSettings
                from chat_runtime import postgres

                await postgres.prepare(load_settings(RoomsSettings).database_url, ROOMS_MIGRATIONS)
            else:
                await _messages_indexes()


async def _messages_indexes() -> None:
    from chat_messages.adapters import mongo
    from chat_messages.adapters.gridfs_store import GridFsAttachmentStore
    from chat_messages.adapters.mongo_store import MongoMessageStore
    from chat_messages.settings import MessagesSettings

    settings = load_settings(MessagesSettings)
    client = mongo.client(settings.mongo_url)
    try:
        db = client[settings.mongo_database]
        await MongoMessageStore(db).ensure_indexes()
        await GridFsAttachmentStore(db).ensure_indexes()
        log.info("messages.indexes_ensured", database=settings.mongo_database)
    finally:
        await client.close()
