"""What each index of the messages collection costs the Mongo-wire server per inserted message.

    uv run python -m bench.store_indexes

A fresh SecantusDB of its own (started as `make run` starts it, bench/soak.py's ``fresh_server``) gets one
collection per index set, each with the messages collection's indexes up to that point (``INDEXES``, the search
index aside, as on that server), and the messages service's client writes the messages service's documents
(``message_document``: 20 rooms, ordinary bodies, journaled) to them in ordered batches. The index sets take turns
(BENCH_INDEXES_ROUNDS rounds of BENCH_INDEXES_BATCHES batches each), so each sees the same machine; the figures are
the medians over the rounds: the server's CPU per document (utime + stime from /proc/<pid>/stat) and the wall time
per document. The `(room_id, client_msg_id)` index is the one that databases made since message ids are derived
from the client_msg_id no longer have (decisions/0016).

Environment:
    BENCH_INDEXES_ROUNDS    turns of every index set (default 7)
    BENCH_INDEXES_BATCHES   batches per turn (default 40)
    BENCH_INDEXES_BATCH     documents per batch (default 16)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo import IndexModel

from bench.serving import cpu_seconds
from bench.soak import fresh_server
from chat_messages.adapters import mongo
from chat_messages.adapters.mongo_documents import message_document
from chat_messages.adapters.mongo_indexes import (
    INDEXES,
    MESSAGES_BY_CLIENT_MSG_ID,
    MESSAGES_BY_REPLY,
    MESSAGES_BY_REPLY_BEFORE,
    MESSAGES_BY_SEQ,
)
from chat_messages.domain import text
from chat_messages.domain.model import Message, message_id_for

ROOMS = 20
BODY = "see you at the standup tomorrow, I'll bring the notes from the review"


def _index(name: str) -> IndexModel:
    model: IndexModel = next(model for model in INDEXES["messages"] if model.document["name"] == name)
    return model


SETS: dict[str, list[str]] = {
    "_id only": [],
    "+ (room_id, seq) unique": [MESSAGES_BY_SEQ],
    "+ (room_id, client_msg_id) unique": [MESSAGES_BY_SEQ, MESSAGES_BY_CLIENT_MSG_ID],
    "+ (room_id, reply_to, seq): before decisions/0016": [
        MESSAGES_BY_SEQ,
        MESSAGES_BY_CLIENT_MSG_ID,
        MESSAGES_BY_REPLY_BEFORE,
    ],
    "(room_id, seq), (room_id, reply_to, seq): 0016": [MESSAGES_BY_SEQ, MESSAGES_BY_REPLY_BEFORE],
    "(room_id, seq), (reply_key) sparse: since 0017": [MESSAGES_BY_SEQ, MESSAGES_BY_REPLY],
}
"""Index sets besides ``_id``, by label; the last three are the messages collection before decisions/0016, since
0016 and since 0017. The documents are the service's (``message_document``) and answer no message, as the
throughput benchmark's do: they have no ``reply_key``, so the sparse index has no entry for them."""


class Writer:
    """Messages of 20 rooms, seqs dense per room, ids derived as the service derives them."""

    def __init__(self) -> None:
        self.rooms = [uuid.uuid4() for _ in range(ROOMS)]
        self.seqs = dict.fromkeys(self.rooms, 0)
        self.sent = 0

    def documents(self, count: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            room = self.rooms[self.sent % ROOMS]
            self.sent += 1
            self.seqs[room] += 1
            client_msg_id = f"bench-{self.sent}"
            message = Message(
                id=message_id_for(room, client_msg_id),
                room_id=room,
                seq=self.seqs[room],
                sender_id=uuid.uuid4(),
                client_msg_id=client_msg_id,
                body=BODY,
                created_at=datetime.now(UTC),
                tokens=text.tokens(BODY),
            )
            out.append(message_document(message))
        return out


async def main() -> dict[str, dict[str, Any]]:
    rounds = int(os.environ.get("BENCH_INDEXES_ROUNDS", "7"))
    batches = int(os.environ.get("BENCH_INDEXES_BATCHES", "40"))
    batch = int(os.environ.get("BENCH_INDEXES_BATCH", "16"))
    print(f"store indexes: {rounds} rounds of {batches} batches of {batch} messages per index set", flush=True)
    async with fresh_server("indexes") as server:
        client = mongo.client(server.url)
        try:
            db = client["bench_indexes"]
            writers = {label: Writer() for label in SETS}
            for n, (label, names) in enumerate(SETS.items()):
                collection = db[f"messages{n}"]
                if names:
                    await collection.create_indexes([_index(name) for name in names])
                await collection.insert_many(writers[label].documents(batch * 10), ordered=True)  # warm
            cpu: dict[str, list[float]] = {label: [] for label in SETS}
            wall: dict[str, list[float]] = {label: [] for label in SETS}
            for turn in range(rounds):
                order = list(SETS) if turn % 2 == 0 else list(reversed(SETS))
                for label in order:
                    collection = db[f"messages{list(SETS).index(label)}"]
                    began, cpu_began = time.perf_counter(), cpu_seconds(server.pid)
                    for _ in range(batches):
                        await collection.insert_many(writers[label].documents(batch), ordered=True)
                    documents = batches * batch
                    cpu[label].append((cpu_seconds(server.pid) - cpu_began) / documents * 1000)
                    wall[label].append((time.perf_counter() - began) / documents * 1000)
        finally:
            await client.close()
    report: dict[str, dict[str, Any]] = {}
    for label in SETS:
        report[label] = {
            "server_cpu_ms_per_message": round(statistics.median(cpu[label]), 3),
            "server_cpu_ms_range": [round(min(cpu[label]), 3), round(max(cpu[label]), 3)],
            "wall_ms_per_message": round(statistics.median(wall[label]), 3),
        }
        row = report[label]
        print(
            f"  {label:50s} server CPU {row['server_cpu_ms_per_message']:.3f} ms/message "
            f"({row['server_cpu_ms_range'][0]:.3f}–{row['server_cpu_ms_range'][1]:.3f}), "
            f"wall {row['wall_ms_per_message']:.3f} ms/message",
            flush=True,
        )
    return report


if __name__ == "__main__":
    asyncio.run(main())
