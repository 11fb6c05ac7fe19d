"""Signing keys: one active, retired ones published until the tokens they signed have expired."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from chat_auth.domain.model import SigningKey
from chat_auth.domain.tokens import jwks, new_signing_key
from chat_auth.service.context import AuthContext
from chat_auth.service.ports import Tx

log = structlog.get_logger("chat.auth.keys")


async def active_key(ctx: AuthContext, tx: Tx) -> SigningKey:
    """The key to sign with now, creating the first one on a new database.

    A rotated-in key is published at once but used for signing only after ``key_activation_delay_seconds``,
    so every verifier's cached JWKS already holds it when the first token signed with it arrives. The key
    it replaces is retired then, and stays published for the grace period.
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


async def published_keys(ctx: AuthContext) -> dict[str, Any]:
    """The JWKS: the active key and every retired key still within its grace period."""
    async with ctx.store.transaction() as tx:
        await active_key(ctx, tx)
        keys = await tx.signing_keys()
    return jwks(keys)
