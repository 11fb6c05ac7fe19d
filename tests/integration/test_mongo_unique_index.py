"""Unique indexes on the Mongo-wire server behave as MongoDB's do."""

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError


async def test_a_unique_index_rejects_a_second_document_with_the_same_key(
    mongo_url: str, mongo_database_name: str
) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        users = client[mongo_database_name]["users"]
        await users.create_index("email", unique=True)
        await users.insert_one({"email": "ada@example.org", "name": "Ada"})

        with pytest.raises(DuplicateKeyError) as rejected:
            await users.insert_one({"email": "ada@example.org", "name": "Impostor"})

        assert rejected.value.code == 11000
        assert await users.count_documents({"email": "ada@example.org"}) == 1
        assert (await users.find_one({"email": "ada@example.org"}, {"_id": 0})) == {
            "email": "ada@example.org",
            "name": "Ada",
        }
    finally:
        await client.close()
