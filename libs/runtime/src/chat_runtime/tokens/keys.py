"""Which keys of a JWKS document a verifier trusts: Ed25519 signing keys with a key id, nothing else."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any, Final

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chat_runtime.tokens.errors import JwksUnavailable

log = structlog.get_logger("chat.tokens")

ALGORITHM: Final = "EdDSA"
MAX_KID_LENGTH: Final = 256
_ED25519_PUBLIC_KEY_BYTES: Final = 32
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
# Members that exist only on private JWKs (RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2).
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url strictly: one spelling per byte string, no stray characters."""
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise ValueError("not base64url") from exc
    # Non-zero trailing bits give a second spelling of the same bytes; refuse it.
    if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") != segment:
        raise ValueError("not canonical base64url")
    return decoded


def trusted_keys(document: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 verification keys of a JWKS document by ``kid``; other keys are skipped, not fatal.

    Raises :class:`JwksUnavailable` when the document itself is not a JWKS (no ``keys`` list).
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("the JWKS document has no 'keys' list")
    keys: dict[str, Ed25519PublicKey] = {}
    duplicated: set[str] = set()
    for index, jwk in enumerate(document["keys"]):
        parsed = _parse_jwk(jwk)
        if isinstance(parsed, str):
            log.info("tokens.jwk_skipped", index=index, reason=parsed)
            continue
        kid, key = parsed
        if kid in keys or kid in duplicated:
            duplicated.add(kid)
            keys.pop(kid, None)
            continue
        keys[kid] = key
    for kid in sorted(duplicated):
        # Two keys under one kid make kid ambiguous; trusting either would be a guess, so trust neither.
        log.error("tokens.jwk_duplicate_kid", kid=kid)
    return keys


def _parse_jwk(jwk: object) -> tuple[str, Ed25519PublicKey] | str:
    """(kid, key) for a JWK this verifier may use, otherwise why not."""
    if not isinstance(jwk, Mapping):
        return "not an object"
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return "not an Ed25519 key"
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
        return "no usable kid"
    if any(member in jwk for member in _PRIVATE_MEMBERS):
        # A published private key is compromised: anyone could sign with it.
        log.error("tokens.jwk_private_key_published", kid=kid)
        return "carries private key material"
    if jwk.get("alg", ALGORITHM) != ALGORITHM:
        return "alg is not EdDSA"
    if jwk.get("use", "sig") != "sig":
        return "use is not sig"
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return "key_ops does not allow verify"
    x = jwk.get("x")
    if not isinstance(x, str):
        return "no x"
    try:
        raw = b64url_decode(x)
    except ValueError:
        return "x is not base64url"
    if len(raw) != _ED25519_PUBLIC_KEY_BYTES:
        return "x is not 32 bytes"
    try:
        return kid, Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:  # pragma: no cover - OpenSSL accepts any 32 bytes today
        return "x is not an Ed25519 public key"
