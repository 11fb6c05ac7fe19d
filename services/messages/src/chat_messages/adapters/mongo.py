"""The messages service's own MongoDB database."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient


def client(url: str) -> AsyncMongoClient[dict[str, Any]]:
    """A MongoDB client with majority writes (an acknowledged write survives a primary failover), timezone-aware
    datetimes and UUIDs stored as standard BSON binary (subtype 4)."""
    return AsyncMongoClient(
        url, w="majority", tz_aware=True, serverSelectionTimeoutMS=5000, uuidRepresentation="standard"
    )


async def ping(mongo: AsyncMongoClient[dict[str, Any]]) -> None:
    """Raise unless the server answers ``ping``."""
    await mongo.admin.command("ping")
