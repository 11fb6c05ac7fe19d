"""What the Kafka client costs per record: aiokafka, the bus adapter's client, against confluent-kafka (Python over
librdkafka, which is C), on the same broker, in the same run, interleaved.

    uv run python -m bench.kafka_clients                                # aiokafka only
    uv run --with confluent-kafka python -m bench.kafka_clients         # both (confluent-kafka is not a dependency)

Each measurement is a process of its own that does what a service of split mode does with its records: it
publishes the bus's own records (a ``message.send`` command, its envelope and headers, keyed by one of 20 rooms
over 12 partitions) at ``BENCH_KC_RATE`` a second for ``BENCH_KC_SECONDS``, awaiting each record's
acknowledgement (idempotent, acks=all, as the bus's producer), and reads them back as a member of a consumer
group. Figures: the process's CPU per record (user and system, every thread: librdkafka works in threads of its
own), the broker's CPU per record, and the process's CPU per second at rest afterwards (5 s, the clients idle but
connected). ``BENCH_KC_ROUNDS`` rounds, the clients alternating first; medians.

confluent-kafka is read through a thread of its own that calls ``consume`` and a thread that serves delivery
reports into the event loop: the shape an asyncio adapter over it would have.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.serving import cpu_seconds
from chat_contracts import messages_commands as cmd
from chat_contracts.envelope import Envelope, Record, encode
from chat_localinfra import ensure_started, status

CLIENTS = ("aiokafka", "confluent-kafka")
PARTITIONS = 12
ROOMS = 20
REST_SECONDS = 5.0


@dataclass(frozen=True)
class Sizes:
    rate: int = field(default_factory=lambda: int(os.environ.get("BENCH_KC_RATE", "400")))
    seconds: float = field(default_factory=lambda: float(os.environ.get("BENCH_KC_SECONDS", "10")))
    rounds: int = field(default_factory=lambda: int(os.environ.get("BENCH_KC_ROUNDS", "3")))

    @property
    def records(self) -> int:
        return int(self.rate * self.seconds)


def records(count: int) -> list[Record]:
    """``count`` of the bus's own ``message.send`` records, over ``ROOMS`` rooms in turn."""
    rooms = [uuid.uuid4() for _ in range(ROOMS)]
    sender = uuid.uuid4()
    made = []
    for n in range(count):
        command = cmd.SendMessage(
            room_id=rooms[n % ROOMS],
            sender_id=sender,
            client_msg_id=uuid.uuid4().hex,
            body=f"message {n} of the Kafka client benchmark, about as long as a line of chat",
            request_id=uuid.uuid4().hex,
            room_version=1,
        )
        envelope = Envelope.wrap(command, source="gateway", key=str(command.room_id), correlation_id=uuid.uuid4().hex)
        made.append(encode(envelope, topic="bench"))
    return made


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def paced(count: int, rate: int, send: Callable[[int], Awaitable[None]]) -> None:
    """Start ``send(n)`` for n < ``count`` on an absolute schedule of ``rate`` a second; wait for every one."""
    began = time.perf_counter()
    pending = []
    for n in range(count):
        delay = began + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.ensure_future(send(n)))
    await asyncio.gather(*pending)


@dataclass
class Measured:
    client_ms: float
    """The client process's CPU per record."""
    broker_ms: float
    rest_ms_per_s: float


async def _measure(run: Callable[[], Awaitable[None]], sizes: Sizes, broker: int) -> Measured:
    cpu, broker_cpu = process_cpu(), cpu_seconds(broker)
    await run()
    used, broker_used = process_cpu() - cpu, cpu_seconds(broker) - broker_cpu
    rest_cpu = process_cpu()
    await asyncio.sleep(REST_SECONDS)  # the clients connected and idle
    return Measured(
        client_ms=used * 1000 / sizes.records,
        broker_ms=broker_used * 1000 / sizes.records,
        rest_ms_per_s=(process_cpu() - rest_cpu) * 1000 / REST_SECONDS,
    )


class Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
    """Set once the group has given the consumer its partitions."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned:
            self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


async def with_aiokafka(bootstrap: str, topic: str, sizes: Sizes, broker: int) -> Measured:
    batch = records(sizes.records)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=topic,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        isolation_level="read_committed",
    )
    assigned = Assigned()
    await producer.start()
    await consumer.start()
    consumer.subscribe([topic], listener=assigned)
    try:
        await assigned.wait()
        received = 0
        everything = asyncio.Event()

        async def read() -> None:
            nonlocal received
            while received < sizes.records:
                taken = await consumer.getmany(timeout_ms=200, max_records=500)
                received += sum(len(part) for part in taken.values())
            everything.set()

        async def send(n: int) -> None:
            record = batch[n]
            delivered = await producer.send(
                topic, record.value, key=record.key, headers=[(k, v) for k, v in record.headers]
            )
            await delivered

        async def run() -> None:
            reader = asyncio.create_task(read())
            await paced(sizes.records, sizes.rate, send)
            await everything.wait()
            await reader

        return await _measure(run, sizes, broker)
    finally:
        await consumer.stop()
        await producer.stop()


async def with_confluent(bootstrap: str, topic: str, sizes: Sizes, broker: int) -> Measured:
    kafka: Any = importlib.import_module("confluent_kafka")
    batch = records(sizes.records)
    loop = asyncio.get_running_loop()
    producer = kafka.Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 0}
    )
    consumer = kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": topic,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "isolation.level": "read_committed",
        }
    )
    stopping = threading.Event()
    assigned = asyncio.Event()
    everything = asyncio.Event()
    consumer.subscribe([topic], on_assign=lambda _consumer, _partitions: loop.call_soon_threadsafe(assigned.set))

    def read() -> None:
        received = 0
        while not stopping.is_set():
            taken = consumer.consume(num_messages=500, timeout=0.2)
            before, received = received, received + sum(1 for message in taken if message.error() is None)
            if before < sizes.records <= received:
                loop.call_soon_threadsafe(everything.set)

    def serve_reports() -> None:
        while not stopping.is_set():
            producer.poll(0.1)

    threads = [threading.Thread(target=read, daemon=True), threading.Thread(target=serve_reports, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        await assigned.wait()

        async def send(n: int) -> None:
            record = batch[n]
            delivered: asyncio.Future[None] = loop.create_future()

            def report(error: Any, _message: Any) -> None:
                def settle() -> None:
                    if error is None:
                        delivered.set_result(None)
                    else:
                        delivered.set_exception(RuntimeError(str(error)))

                loop.call_soon_threadsafe(settle)

            producer.produce(topic, record.value, key=record.key, headers=list(record.headers), on_delivery=report)
            await delivered

        async def run() -> None:
            await paced(sizes.records, sizes.rate, send)
            await everything.wait()

        return await _measure(run, sizes, broker)
    finally:
        stopping.set()
        for thread in threads:
            thread.join()
        consumer.close()
        producer.flush(5)


async def one(client: str, bootstrap: str, broker: int) -> Measured:
    """One measurement on a topic of its own."""
    sizes = Sizes()
    topic = f"bench-kafka-clients-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    run = with_aiokafka if client == "aiokafka" else with_confluent
    return await run(bootstrap, topic, sizes, broker)


def confluent_available() -> bool:
    try:
        importlib.import_module("confluent_kafka")
    except ImportError:
        return False
    return True


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--one":  # a measurement's own process
        measured = asyncio.run(one(sys.argv[2], sys.argv[3], int(os.environ["BENCH_KC_BROKER_PID"])))
        print(json.dumps(measured.__dict__))
        return
    sizes = Sizes()
    urls = ensure_started("kafka")
    broker = next(s.pid for s in status("kafka") if s.running and s.pid is not None)
    clients = [c for c in CLIENTS if c == "aiokafka" or confluent_available()]
    print(
        f"Kafka clients, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {sizes.records} records at {sizes.rate}/s, "
        f"{sizes.rounds} rounds, clients {', '.join(clients)}",
        flush=True,
    )
    if "confluent-kafka" not in clients:
        print("  (confluent-kafka is not installed: run with `uv run --with confluent-kafka` to compare)")
    results: dict[str, list[Measured]] = {c: [] for c in clients}
    for turn in range(sizes.rounds):
        for client in clients if turn % 2 == 0 else list(reversed(clients)):
            done = subprocess.run(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "bench.kafka_clients", "--one", client, str(urls.kafka_bootstrap)],
                env={**os.environ, "BENCH_KC_BROKER_PID": str(broker)},
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parent.parent,
            )
            measured = Measured(**json.loads(done.stdout.strip().splitlines()[-1]))
            results[client].append(measured)
            print(
                f"  round {turn + 1} {client}: client {measured.client_ms:.3f} ms/record, broker "
                f"{measured.broker_ms:.3f} ms/record, client at rest {measured.rest_ms_per_s:.1f} ms/s",
                flush=True,
            )
    print("\n| client | client CPU ms per record | broker CPU ms per record | client at rest, ms of CPU per s |")
    print("| --- | ---: | ---: | ---: |")
    for client, runs in results.items():
        client_ms = statistics.median(r.client_ms for r in runs)
        broker_ms = statistics.median(r.broker_ms for r in runs)
        rest = statistics.median(r.rest_ms_per_s for r in runs)
        print(f"| {client} | {client_ms:.3f} | {broker_ms:.3f} | {rest:.1f} |")


if __name__ == "__main__":
    main()
