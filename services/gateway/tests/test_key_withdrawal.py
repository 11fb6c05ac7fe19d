"""A withdrawn signing key: the gateway closes the sockets that authenticated with one of its tokens, saying why,
and refuses its tokens at the handshake and on ``auth:refresh``."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime

from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import SigningKeyWithdrawn
from chat_runtime.bus.inprocess import InProcessBus
from chat_runtime.testing.tokens import KID

from .harness import Cluster, until
from .test_live import refusal

ADA, BOB = uuid.uuid4(), uuid.uuid4()


def naming_key(token: str, kid: str) -> str:
    """``token`` with its header naming another key (its signature no longer matters: the kid is checked first)."""
    header = json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": kid}).encode()
    _, payload, signature = token.split(".")
    return ".".join((base64.urlsafe_b64encode(header).rstrip(b"=").decode(), payload, signature))


async def test_sockets_of_a_withdrawn_key_are_closed_and_its_tokens_refused_at_the_handshake(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    ada = await cluster.connect(gateway, ADA)
    bob = await cluster.connect(gateway, BOB)
    token = cluster.token(ADA)

    withdrawn = SigningKeyWithdrawn(kid=KID, occurred_at=datetime.now(UTC))
    await InProcessBus(cluster.broker).publish(USERS_EVENTS, withdrawn, source="auth")
    await until(lambda: not ada.sio.connected and not bob.sio.connected)

    assert ada.events("session:ended") == [{"reason": "token_key_withdrawn"}]
    assert bob.events("session:ended") == [{"reason": "token_key_withdrawn"}]
    assert (await refusal(gateway, token))["code"] == "token_key_withdrawn"


async def test_withdrawing_another_key_leaves_the_sockets_open(cluster: Cluster) -> None:
    gateway = await cluster.start("gw-a")
    ada = await cluster.connect(gateway, ADA)

    other = SigningKeyWithdrawn(kid="another-key", occurred_at=datetime.now(UTC))
    await InProcessBus(cluster.broker).publish(USERS_EVENTS, other, source="auth")
    # The gateway has read it once a token naming that key is refused as withdrawn rather than unknown.
    forged = naming_key(cluster.token(ADA), "another-key")
    async with asyncio.timeout(10):
        while (await refusal(gateway, forged))["code"] != "token_key_withdrawn":
            await asyncio.sleep(0.05)

    assert ada.sio.connected
    assert ada.events("session:ended") == []
    answer = await ada.call("auth:refresh", {"token": cluster.token(ADA)})
    assert answer["ok"] is True, answer
