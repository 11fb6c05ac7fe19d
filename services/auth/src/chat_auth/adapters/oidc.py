"""The OpenID Connect provider client: discovery, the authorization URL, the code exchange, ID-token validation.

Any provider configured by its issuer URL (Google in production, oidc-provider-mock in the tests). authlib builds
the protocol messages and checks the ID-token claims; joserfc (the JOSE library authlib itself uses since 1.6)
verifies the signature against the provider's JWKS; httpx carries the requests. authlib's own httpx client is not
used: with httpx (rather than httpx2) installed it warns at import that the integration is deprecated.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from chat_auth.service.oidc import ProviderIdentity, provider_unavailable, token_invalid
from chat_auth.settings import AuthSettings

log = structlog.get_logger("chat.auth.oidc")

DISCOVERY_PATH = "/.well-known/openid-configuration"
SCOPE = "openid email profile"
ALGORITHMS = ("RS256",)
"""Accepted ID-token algorithms, fixed here and never taken from the token (Google signs with RS256)."""
LEEWAY_SECONDS = 60
MAX_TOKEN_AGE_SECONDS = 600
"""An ID token fresh from the token endpoint was issued moments ago; an older ``iat`` means a replayed one."""
METADATA_MAX_AGE = 3600.0
JWKS_MAX_AGE = 3600.0
JWKS_MIN_REFRESH = 30.0
"""An unknown ``kid`` refetches the JWKS (the provider rotated), at most this often, so forged kids cannot make
us hammer the provider."""
MAX_RESPONSE_BYTES = 512 * 1024


class _Invalid(Exception):
    """One check of the ID token failed; the message says which (logged, never shown)."""


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the discovery document this client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_endpoint_auth_methods: tuple[str, ...] = ("client_secret_basic",)

    @classmethod
    def parse(cls, document: Mapping[str, Any], *, issuer: str) -> ProviderMetadata:
        """Validate a discovery document fetched for ``issuer``: its ``issuer`` must be exactly that URL, and the
        endpoints of an https issuer must be https."""
        if document.get("issuer") != issuer:
            raise ValueError(f"discovery issuer {document.get('issuer')!r} is not the configured {issuer!r}")
        endpoints = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise ValueError(f"discovery document has no usable {name}")
            if issuer.startswith("https://") and not value.startswith("https://"):
                raise ValueError(f"{name} is not https")
            endpoints[name] = value
        methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        return cls(
            issuer=issuer,
            authorization_endpoint=endpoints["authorization_endpoint"],
            token_endpoint=endpoints["token_endpoint"],
            jwks_uri=endpoints["jwks_uri"],
            token_endpoint_auth_methods=tuple(str(m) for m in methods),
        )


def _header(token: str) -> dict[str, Any]:
    try:
        segment = token.split(".", 1)[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise _Invalid("malformed token") from exc
    if not isinstance(header, dict):
        raise _Invalid("malformed header")
    return header


def key_known(keys: KeySet, token: str) -> bool:
    """Whether ``keys`` has the key the token's ``kid`` names (a token without kid: whether there is one key)."""
    kid = _header(token).get("kid")
    if kid is None:
        return len(keys.keys) == 1
    return any(key.kid == kid for key in keys)


def validate_id_token(
    id_token: str,
    *,
    keys: KeySet,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
    access_token: str | None = None,
    algorithms: Collection[str] = ALGORITHMS,
    leeway: int = LEEWAY_SECONDS,
    max_age: int = MAX_TOKEN_AGE_SECONDS,
) -> ProviderIdentity:
    """Check an ID token from the token endpoint (OIDC Core §3.1.3.7) and return who it names.

    Signature by a key of the provider's JWKS with an allowed algorithm (``none``, HMAC and anything else
    refused; ``jwk``/``jku``/``x5u`` headers never consulted), ``iss`` exactly the issuer, ``aud`` exactly the
    client id, ``azp`` (if present) the client id, ``exp`` in the future, ``iat`` recent, ``nonce`` ours,
    ``at_hash`` (if present) matching. Raises ``AuthError`` ``oidc_token_invalid``.
    """
    try:
        return _validate(
            id_token,
            keys=keys,
            issuer=issuer,
            client_id=client_id,
            nonce=nonce,
            now=now,
            access_token=access_token,
            algorithms=algorithms,
            leeway=leeway,
            max_age=max_age,
        )
    except (_Invalid, JoseError, ValueError) as exc:
        log.warning("oidc.id_token_refused", reason=str(exc) or type(exc).__name__)
        raise token_invalid() from exc


def _validate(
    id_token: str,
    *,
    keys: KeySet,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
    access_token: str | None,
    algorithms: Collection[str],
    leeway: int,
    max_age: int,
) -> ProviderIdentity:
    header = _header(id_token)
    if header.get("alg") not in algorithms:
        raise _Invalid(f"algorithm {header.get('alg')!r} not accepted")
    # strict_check_header is off because providers add harmless private header fields; key selection never looks
    # at anything but kid, among keys we fetched from jwks_uri ourselves.
    registry = JWSRegistry(algorithms=list(algorithms), strict_check_header=False)
    token = jwt.decode(id_token, keys, algorithms=list(algorithms), registry=registry)
    claims = token.claims
    options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "nonce": {"essential": True, "value": nonce},
    }
    params = {"nonce": nonce, "client_id": client_id, "access_token": access_token}
    CodeIDToken(claims, token.header, options, params).validate(now=int(now), leeway=leeway)
    # Stricter than the registries: a single audience, exactly ours; a recent iat; a usable subject.
    if claims["aud"] not in (client_id, [client_id]):
        raise _Invalid("audience is not exactly the client id")
    iat = claims["iat"]
    if not isinstance(iat, int | float) or not now - max_age - leeway <= iat <= now + leeway:
        raise _Invalid("iat is not recent")
    subject = claims["sub"]
    if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
        raise _Invalid("unusable subject")
    email = claims.get("email")
    name = claims.get("name")
    preferred = claims.get("preferred_username")
    return ProviderIdentity(
        issuer=issuer,
        subject=subject,
        email=email if isinstance(email, str) else None,
        # Only a JSON true counts: a string or a missing claim is not a verification.
        email_verified=claims.get("email_verified") is True,
        name=name if isinstance(name, str) else None,
        preferred_username=preferred if isinstance(preferred, str) else None,
    )


class HttpOidcProvider:
    """``OidcProvider`` over HTTP for the provider at ``issuer``; discovery and keys are fetched lazily and cached."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._timeout = timeout
        self._transport = transport
        self._clock = clock
        self._monotonic = monotonic
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._keys: tuple[float, KeySet] | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: AuthSettings, **kwargs: Any) -> HttpOidcProvider:
        """The provider the settings name (``oidc_issuer``, ``oidc_client_id``, secret, redirect URI)."""
        secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else ""
        return cls(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=secret,
            redirect_uri=settings.oidc_redirect_uri,
            **kwargs,
        )

    @property
    def issuer(self) -> str:
        return self._issuer

    async def metadata(self) -> ProviderMetadata:
        """The discovery document (``<issuer>/.well-known/openid-configuration``), cached for an hour."""
        cached = self._metadata
        if cached is not None and self._monotonic() - cached[0] < METADATA_MAX_AGE:
            return cached[1]
        async with self._lock:
            cached = self._metadata
            if cached is not None and self._monotonic() - cached[0] < METADATA_MAX_AGE:
                return cached[1]
            document = await self._get_json(self._issuer + DISCOVERY_PATH)
            try:
                metadata = ProviderMetadata.parse(document, issuer=self._issuer)
            except ValueError as exc:
                log.error("oidc.discovery_invalid", issuer=self._issuer, reason=str(exc))
                raise provider_unavailable() from exc
            self._metadata = (self._monotonic(), metadata)
            return metadata

    async def authorization_url(self, *, state: str, nonce: str, code_challenge: str) -> str:
        metadata = await self.metadata()
        url: str = prepare_grant_uri(
            metadata.authorization_endpoint,
            client_id=self._client_id,
            response_type="code",
            redirect_uri=self._redirect_uri,
            scope=SCOPE,
            state=state,
            nonce=nonce,
            code_challenge=code_challenge,
            code_challenge_method="S256",
        )
        return url

    async def exchange(self, *, code: str, code_verifier: str, nonce: str) -> ProviderIdentity:
        metadata = await self.metadata()
        tokens = await self._token_request(metadata, code=code, code_verifier=code_verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            log.warning("oidc.no_id_token")
            raise token_invalid()
        access_token = tokens.get("access_token")
        keys = await self._keys_for(metadata, id_token)
        return validate_id_token(
            id_token,
            keys=keys,
            issuer=self._issuer,
            client_id=self._client_id,
            nonce=nonce,
            now=self._clock(),
            access_token=access_token if isinstance(access_token, str) else None,
        )

    async def _token_request(self, metadata: ProviderMetadata, *, code: str, code_verifier: str) -> dict[str, Any]:
        body: str = prepare_token_request(
            "authorization_code", code=code, redirect_uri=self._redirect_uri, code_verifier=code_verifier
        )
        methods = metadata.token_endpoint_auth_methods
        method = (
            "client_secret_post"
            if "client_secret_basic" not in methods and "client_secret_post" in methods
            else "client_secret_basic"
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        url, headers, body = ClientAuth(self._client_id, self._client_secret, method).prepare(
            "POST", metadata.token_endpoint, headers, body
        )
        try:
            async with self._client() as http:
                response = await http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("oidc.token_endpoint_unreachable", error=type(exc).__name__)
            raise provider_unavailable() from exc
        if response.status_code >= 500:
            log.warning("oidc.token_endpoint_failed", status=response.status_code)
            raise provider_unavailable()
        payload = _json_object(response)
        if response.status_code != 200 or payload is None:
            # invalid_grant and friends: a spent, foreign or forged code, or a PKCE verifier that does not match.
            error = payload.get("error") if payload else None
            log.warning("oidc.code_refused", status=response.status_code, error=str(error)[:64])
            raise token_invalid()
        return payload

    async def _keys_for(self, metadata: ProviderMetadata, id_token: str) -> KeySet:
        try:
            known = self._keys is not None and key_known(self._keys[1], id_token)
        except _Invalid as exc:
            raise token_invalid() from exc
        cached = self._keys
        if cached is not None and known and self._monotonic() - cached[0] < JWKS_MAX_AGE:
            return cached[1]
        async with self._lock:
            cached = self._keys
            if cached is not None and self._monotonic() - cached[0] < JWKS_MIN_REFRESH:
                return cached[1]  # fetched a moment ago: an unknown kid now is not a rotation
            document = await self._get_json(metadata.jwks_uri)
            try:
                keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                log.error("oidc.jwks_invalid", reason=type(exc).__name__)
                raise provider_unavailable() from exc
            self._keys = (self._monotonic(), keys)
            return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._client() as http:
                response = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("oidc.provider_unreachable", url=url, error=type(exc).__name__)
            raise provider_unavailable() from exc
        payload = _json_object(response)
        if response.status_code != 200 or payload is None:
            log.warning("oidc.provider_bad_answer", url=url, status=response.status_code)
            raise provider_unavailable()
        return payload

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._timeout, transport=self._transport, follow_redirects=False)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    if len(response.content) > MAX_RESPONSE_BYTES:
        return None
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


__all__ = ["HttpOidcProvider", "ProviderMetadata", "key_known", "validate_id_token"]
