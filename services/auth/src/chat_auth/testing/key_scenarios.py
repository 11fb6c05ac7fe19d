"""Withdrawing a leaked signing key, through the auth service's use case and HTTP API. Runs on the fake store and
on PostgreSQL like :class:`~chat_auth.testing.scenarios.AuthScenarios` (mixed into the same test classes)."""

from __future__ import annotations

from typing import Any

import jwt

from chat_auth.service import keys
from chat_auth.testing.harness import AuthHarness
from chat_contracts.users import SigningKeyWithdrawn


def kid_of(tokens: dict[str, Any]) -> str:
    return str(jwt.get_unverified_header(tokens["access_token"])["kid"])


async def published_kids(auth: AuthHarness) -> set[str]:
    document = (await auth.http.get("/api/auth/.well-known/jwks.json")).json()
    return {key["kid"] for key in document["keys"]}


async def me(auth: AuthHarness, tokens: dict[str, Any]) -> tuple[int, str | None]:
    answer = await auth.http.get("/api/auth/me", headers=auth.bearer(tokens["access_token"]))
    return answer.status_code, answer.json().get("code")


async def withdrawals(auth: AuthHarness) -> list[SigningKeyWithdrawn]:
    return [e.data for e in await auth.events() if isinstance(e.data, SigningKeyWithdrawn)]


class KeyWithdrawalScenarios:
    async def test_withdrawing_the_signing_key_refuses_its_tokens_and_a_new_key_signs_at_once(
        self, auth: AuthHarness
    ) -> None:
        before = await auth.signed_up("leak@example.com", "leak")
        leaked = kid_of(before)
        assert await me(auth, before) == (200, None)
        withdrawn_at = auth.clock()

        withdrawal = await keys.withdraw(auth.context, leaked)

        assert withdrawal is not None
        assert withdrawal.successor is not None
        assert not withdrawal.already
        assert await published_kids(auth) == {withdrawal.successor}, "out of the JWKS at once"
        auth.clock.advance(seconds=1)  # the auth service reads its keys again at most once a second
        assert await me(auth, before) == (401, "token_key_withdrawn")
        after = await auth.login("leak")
        assert kid_of(after) == withdrawal.successor, "the new key signs without the activation delay"
        assert await me(auth, after) == (200, None)
        assert [(w.kid, w.occurred_at) for w in await withdrawals(auth)] == [(leaked, withdrawn_at)]

    async def test_a_rotated_in_key_takes_over_at_once_when_the_signing_key_is_withdrawn(
        self, auth: AuthHarness
    ) -> None:
        tokens = await auth.signed_up("pend@example.com", "pend")
        auth.clock.advance(seconds=1)
        pending = await keys.rotate(auth.context)
        assert kid_of(await auth.login("pend")) == kid_of(tokens), "not signing yet"

        withdrawal = await keys.withdraw(auth.context, kid_of(tokens))

        assert withdrawal is not None
        assert withdrawal.successor == pending
        assert kid_of(await auth.login("pend")) == pending
        assert await published_kids(auth) == {pending}

    async def test_withdrawing_a_retired_key_leaves_the_signing_key_alone(self, auth: AuthHarness) -> None:
        old = await auth.signed_up("ret@example.com", "ret")
        auth.clock.advance(seconds=1)
        current = await keys.rotate(auth.context)
        auth.clock.advance(seconds=auth.settings.key_activation_delay_seconds)
        new = await auth.login("ret")
        assert kid_of(new) == current

        withdrawal = await keys.withdraw(auth.context, kid_of(old))

        assert withdrawal is not None
        assert withdrawal.successor is None
        assert await published_kids(auth) == {current}
        auth.clock.advance(seconds=1)
        assert await me(auth, old) == (401, "token_key_withdrawn")
        assert await me(auth, new) == (200, None)

    async def test_withdrawing_twice_changes_nothing_and_an_unknown_kid_is_none(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("twice@example.com", "twice")
        first = await keys.withdraw(auth.context, kid_of(tokens))
        assert first is not None

        again = await keys.withdraw(auth.context, kid_of(tokens))

        assert again == keys.Withdrawal(kid=kid_of(tokens), already=True)
        assert await published_kids(auth) == {first.successor}
        assert len(await withdrawals(auth)) == 1, "announced once"
        assert await keys.withdraw(auth.context, "no-such-kid") is None
