"""Signing keys: one active, retired ones published until the tokens they signed have expired, withdrawn ones
(leaked) refused everywhere at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from chat_auth.domain.model import SigningKey
from chat_auth.domain.tokens import jwks, new_signing_key
from chat_auth.service import events
from chat_auth.service.context import AuthContext
from chat_auth.service.ports import AuthStore, Tx

log = structlog.get_logger("chat.auth.keys")


async def active_key(ctx: AuthContext, tx: Tx) -> SigningKey:
    """The key to sign with now, creating the first one on a new database.

    A rotated-in key is published at once but used for signing only after ``key_activation_delay_seconds``,
    so every verifier's cached JWKS already holds it when the first token signed with it arrives. The key
    it replaces is retired then, and stays published for the grace period. With no key ready (the signing
    one was withdrawn), the oldest live key signs at once, or a new one if none is left.
    """
    now = ctx.clock()
    live = [key for key in await tx.signing_keys() if key.retired_at is None]  # newest first
    if not live:
        key = new_signing_key(ctx.sealer, now)
        await tx.add_signing_key(key)
        log.info("auth.signing_key_created", kid=key.kid)
        return key
    ready = now - timedelta(seconds=ctx.settings.key_activation_delay_seconds)
    active = next((key for key in live if key.created_at <= ready), live[-1])
    for older in live[live.index(active) + 1 :]:
        await tx.retire_signing_key(older.kid, now)
        log.info("auth.signing_key_retired", kid=older.kid, successor=active.kid)
    return active


async def rotate(ctx: AuthContext) -> str:
    """Publish a new key; it signs once every verifier has seen it. Returns its kid."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        key = new_signing_key(ctx.sealer, now)
        await tx.add_signing_key(key)
        grace = max(timedelta(seconds=ctx.settings.retired_key_grace_seconds), ctx.access_ttl * 2)
        removed = await tx.delete_signing_keys_retired_before(now - grace)
    log.info(
        "auth.signing_key_published",
        kid=key.kid,
        removed=removed,
        signs_after=ctx.settings.key_activation_delay_seconds,
    )
    return key.kid


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """What withdrawing a key did."""

    kid: str
    already: bool
    """It had been withdrawn before: nothing changed and nothing was announced again."""
    successor: str | None = None
    """The key that signs from now on, when the withdrawn one was signing."""


async def withdraw(ctx: AuthContext, kid: str) -> Withdrawal | None:
    """Withdraw a (leaked) key at once: out of the JWKS, ``key.withdrawn`` announced so that every verifier refuses
    its tokens, and, if it was signing, another key signing from now on without the activation delay.
    None when there is no key ``kid`` (never was, or deleted after its grace)."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        key = await tx.signing_key(kid)
        if key is None:
            return None
        if key.withdrawn_at is not None:
            return Withdrawal(kid=kid, already=True)
        was_signing = (await active_key(ctx, tx)).kid == kid
        await tx.withdraw_signing_key(kid, now)
        await events.signing_key_withdrawn(tx, kid, now)
        successor = (await active_key(ctx, tx)).kid if was_signing else None
    log.warning("auth.signing_key_withdrawn", kid=kid, successor=successor)
    return Withdrawal(kid=kid, already=False, successor=successor)


class OwnKeys:
    """The auth service's own verifier's keys, straight from its database: the JWKS
    (:class:`~chat_runtime.tokens.JwksSource`) and, read with it, the withdrawn kids
    (:class:`~chat_runtime.tokens.WithdrawnKeys`), so the auth service refuses a withdrawn key's tokens with
    the same code as every other verifier, as soon as its verifier reads the keys again."""

    def __init__(self, store: AuthStore) -> None:
        self._store = store
        self._withdrawn: frozenset[str] = frozenset()

    @property
    def withdrawals(self) -> int:
        return len(self._withdrawn)

    def withdrawn(self, kid: str) -> bool:
        return kid in self._withdrawn

    async def fetch(self) -> Mapping[str, Any]:
        async with self._store.transaction() as tx:
            keys = await tx.signing_keys()
            self._withdrawn = frozenset(await tx.withdrawn_signing_kids())
        return jwks(keys)


async def published_keys(ctx: AuthContext) -> dict[str, Any]:
    """The JWKS: the active key and every retired key still within its grace period."""
    async with ctx.store.transaction() as tx:
        await active_key(ctx, tx)
        keys = await tx.signing_keys()
    return jwks(keys)
