"""A session that ends, ends everywhere at once: for every way a session ends, its tokens are refused by every
service's REST API and at the Socket.IO handshake within 2 seconds, in the all-in-one product and in split mode on
Kafka; and a verifier that starts again still knows the sessions that ended before it started."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from chat_localinfra.smtp import SmtpInbox

from .product import Product, free_port, product, product_env, serving_product
from .session_endings import bearer, refused_everywhere, session_endings_scenario
from .split import Split, split

__all__ = ["product", "split"]  # the fixtures, imported for pytest


async def test_every_way_a_session_ends_refuses_its_tokens_everywhere_in_the_all_in_one_mode(
    product: Product,
) -> None:
    timings = await session_endings_scenario([product], operator_env=os.environ)
    print("refused everywhere after: " + ", ".join(timings))


async def test_every_way_a_session_ends_refuses_its_tokens_on_every_service_and_gateway_in_split_mode(
    split: Split,
) -> None:
    timings = await session_endings_scenario([split.at(0), split.at(1)], operator_env=split.children["auth"].env)
    print("refused everywhere after: " + ", ".join(timings))


async def test_verifiers_that_start_again_still_refuse_a_session_that_ended_before_in_split_mode(
    split: Split,
) -> None:
    entries = [split.at(0), split.at(1)]
    ada = await entries[0].sign_up("ada")
    await entries[0].http.post("/api/auth/logout", headers=bearer(ada["access_token"]))
    await refused_everywhere(entries, ada["access_token"], since=time.monotonic())

    for name in ("rooms", "messages", "gateway-b"):
        await split.restart(name)  # ready again means it has read back the sessions that ended

    await refused_everywhere(entries, ada["access_token"], since=time.monotonic())


async def test_the_all_in_one_product_started_again_still_refuses_a_session_that_ended_before(
    tmp_path: Path,
    postgres_url: str,
    mongo_url: str,
    mongo_database_name: str,
    smtp_server: tuple[str, int, SmtpInbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    port = free_port()
    env = product_env(
        base=f"http://127.0.0.1:{port}",
        data_dir=tmp_path,
        postgres_url=postgres_url,
        databases=(f"e2e_auth_{suffix}", f"e2e_rooms_{suffix}"),
        mongo_url=mongo_url,
        smtp_server=smtp_server,
        CHAT_MESSAGES_MONGO_DATABASE=mongo_database_name,
    )
    async with serving_product(port, env, smtp_server[2], monkeypatch) as first_run:
        ada = await first_run.sign_up("ada")
        await first_run.http.post("/api/auth/logout", headers=bearer(ada["access_token"]))
        await refused_everywhere([first_run], ada["access_token"], since=time.monotonic())

    # The in-process bus of the first run is gone; the ending is only in the auth service's outbox now.
    async with serving_product(port, env, smtp_server[2], monkeypatch) as second_run:
        await refused_everywhere([second_run], ada["access_token"], since=time.monotonic())
