"""Token verification: the attack suite, the accepted shapes, key caching and the JWKS sources.

Tokens are minted here with PyJWT and ``cryptography`` (the way the auth service mints them) or forged by hand
where an attack needs a token no honest library would produce. Nothing here touches the network.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import FrozenInstanceError, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chat_runtime.tokens import (
    JWKS_PATH,
    MAX_TOKEN_LENGTH,
    TOKEN_ERROR_CODES,
    CallableJwksSource,
    HttpJwksSource,
    JwksUnavailable,
    StaticJwksSource,
    TokenError,
    TokenVerifier,
    VerifiedToken,
)

ISSUER = "https://chat.example/api/auth"
AUDIENCE = "chat"
NOW = 1_800_000_000.0
JWKS_URL = f"https://auth.internal{JWKS_PATH}"
USER_ID = uuid.UUID("6f1c2b8e-3d4a-4f5b-8c6d-7e8f9a0b1c2d")
SESSION_ID = uuid.UUID("0a1b2c3d-4e5f-4a6b-9c7d-8e9fa0b1c2d3")
REQUIRED = ("iss", "aud", "sub", "sid", "jti", "typ", "iat", "nbf", "exp", "username", "email_verified")
MISSING = object()


# --- minting and forging ------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Signer:
    """An Ed25519 key as the auth service holds it: a kid, a private key, a public JWK."""

    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, kid: str) -> Signer:
        return cls(kid, Ed25519PrivateKey.generate())

    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def jwk(self) -> dict[str, Any]:
        x = b64url(self.public_bytes())
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def sign(self, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> str:
        return jwt.encode(
            dict(claims), self.private_key, algorithm="EdDSA", headers={"kid": self.kid, **(headers or {})}
        )

    def forge(self, claims: Mapping[str, Any]) -> str:
        """Validly signed claims that PyJWT would refuse to encode (a numeric iss, say)."""
        return self.sign_raw({"alg": "EdDSA", "typ": "JWT", "kid": self.kid}, json.dumps(claims).encode())

    def sign_raw(self, header: Mapping[str, Any], payload: bytes) -> str:
        """A compact JWS over exactly these header and payload bytes, validly signed by this key."""
        return compact(header, payload, self.private_key.sign)


def compact(header: Mapping[str, Any], payload: bytes, sign: Callable[[bytes], bytes] | bytes) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(payload)}".encode()
    signature = sign if isinstance(sign, bytes) else sign(signing_input)
    return f"{signing_input.decode()}.{b64url(signature)}"


def jwks(*signers: Signer, extra: list[Any] | None = None) -> dict[str, Any]:
    return {"keys": [signer.jwk() for signer in signers] + (extra or [])}


def claims(**changes: Any) -> dict[str, Any]:
    """A valid access token's claims at NOW; a change to MISSING removes that claim."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(USER_ID),
        "sid": str(SESSION_ID),
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW) + 900,
        "username": "ada",
        "email_verified": True,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not MISSING}


def unb64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def second_spelling(segment: str) -> str:
    """The same bytes with non-zero unused trailing bits: decodes alike, but is not the canonical encoding."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) ^ 1]


def tamper(token: str, segment: int, change: Callable[[str], str]) -> str:
    parts = token.split(".")
    parts[segment] = change(parts[segment])
    return ".".join(parts)


def flip_last_byte(segment: str) -> str:
    raw = bytearray(unb64url(segment))
    raw[-1] ^= 0x01
    return b64url(bytes(raw))


# --- fakes --------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingSource:
    """A JWKS source that counts fetches, can fail, and can hold a fetch open until released."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.fetches = 0
        self.failing = False
        self.gate: asyncio.Event | None = None

    async def fetch(self) -> Mapping[str, Any]:
        self.fetches += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise JwksUnavailable("auth service unreachable")
        return self.document


@pytest.fixture
def signer() -> Signer:
    return Signer.generate("key-2026-01")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(signer: Signer) -> CountingSource:
    return CountingSource(jwks(signer))


def make_verifier(source: Any, clock: Clock, **options: Any) -> TokenVerifier:
    return TokenVerifier(jwks=source, issuer=ISSUER, audience=AUDIENCE, clock=clock, **options)


@pytest.fixture
def verifier(source: CountingSource, clock: Clock) -> TokenVerifier:
    return make_verifier(source, clock)


async def refused(verifier: TokenVerifier, token: str, *, typ: str = "access") -> TokenError:
    with pytest.raises(TokenError) as caught:
        await verifier.verify(token, typ=typ)
    return caught.value


# --- accepted tokens ----------------------------------------------------------------------------------------


async def test_a_valid_access_token_yields_its_verified_claims(verifier: TokenVerifier, signer: Signer) -> None:
    payload = claims()
    verified = await verifier.verify(signer.sign(payload))

    assert verified == VerifiedToken(
        sub=USER_ID,
        sid=SESSION_ID,
        jti=payload["jti"],
        typ="access",
        issued_at=datetime.fromtimestamp(NOW, tz=UTC),
        expires_at=datetime.fromtimestamp(NOW + 900, tz=UTC),
        username="ada",
        email_verified=True,
        kid=signer.kid,
    )
    assert verified.issued_at.tzinfo is UTC
    assert verified.seconds_left(now=NOW + 100) == 800


async def test_verified_claims_cannot_be_modified(verifier: TokenVerifier, signer: Signer) -> None:
    verified = await verifier.verify(signer.sign(claims()))

    with pytest.raises(FrozenInstanceError):
        verified.sub = uuid.uuid4()  # type: ignore[misc]


async def test_a_token_signed_by_the_second_key_of_a_rotating_jwks_is_accepted(clock: Clock) -> None:
    old, new = Signer.generate("key-old"), Signer.generate("key-new")
    verifier = make_verifier(StaticJwksSource(jwks(old, new)), clock)

    assert (await verifier.verify(new.sign(claims()))).sub == USER_ID
    assert (await verifier.verify(old.sign(claims()))).sub == USER_ID


async def test_an_mfa_token_is_accepted_where_an_mfa_token_is_asked_for(
    verifier: TokenVerifier, signer: Signer
) -> None:
    token = signer.sign(claims(typ="mfa", username=MISSING, email_verified=MISSING))

    verified = await verifier.verify(token, typ="mfa")

    assert (verified.typ, verified.username, verified.email_verified) == ("mfa", None, None)


async def test_an_audience_list_that_contains_ours_is_accepted(verifier: TokenVerifier, signer: Signer) -> None:
    assert await verifier.verify(signer.sign(claims(aud=["billing", AUDIENCE])))


async def test_an_uppercase_uuid_is_the_same_uuid(verifier: TokenVerifier, signer: Signer) -> None:
    verified = await verifier.verify(signer.sign(claims(sub=str(USER_ID).upper())))

    assert verified.sub == USER_ID


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        pytest.param({"exp": int(NOW) - 29}, None, id="expired-29s-ago-within-30s-leeway"),
        pytest.param({"exp": int(NOW) - 30}, "token_expired", id="expired-30s-ago-at-the-leeway"),
        pytest.param({"nbf": int(NOW) + 30}, None, id="valid-in-30s-within-leeway"),
        pytest.param({"nbf": int(NOW) + 31}, "token_not_yet_valid", id="valid-in-31s-beyond-leeway"),
        pytest.param({"iat": int(NOW) + 30}, None, id="issued-30s-ahead-within-leeway"),
        pytest.param({"iat": int(NOW) + 31}, "token_not_yet_valid", id="issued-31s-ahead-beyond-leeway"),
    ],
)
async def test_the_leeway_is_honoured_exactly_at_its_edge(
    verifier: TokenVerifier, signer: Signer, changes: dict[str, Any], refusal: str | None
) -> None:
    token = signer.sign(claims(**changes))

    if refusal is None:
        assert await verifier.verify(token)
    else:
        assert (await refused(verifier, token)).code == refusal


async def test_without_leeway_a_token_is_expired_at_its_exp_second(
    source: CountingSource, clock: Clock, signer: Signer
) -> None:
    verifier = make_verifier(source, clock, leeway_seconds=0)

    assert await verifier.verify(signer.sign(claims(exp=int(NOW) + 1)))
    assert (await refused(verifier, signer.sign(claims(exp=int(NOW))))).code == "token_expired"


# --- the attack suite: algorithms ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_an_unsigned_alg_none_token_is_refused(verifier: TokenVerifier, signer: Signer, alg: str) -> None:
    token = compact({"alg": alg, "typ": "JWT", "kid": signer.kid}, json.dumps(claims()).encode(), b"")

    assert (await refused(verifier, token)).code == "token_algorithm_not_allowed"


@pytest.mark.parametrize("secret_form", ["raw", "jwk-x", "pem", "jwk-json"])
async def test_an_hs256_token_keyed_with_our_public_key_is_refused(
    verifier: TokenVerifier, signer: Signer, secret_form: str
) -> None:
    public = signer.private_key.public_key()
    secret = {
        "raw": signer.public_bytes(),
        "jwk-x": signer.jwk()["x"].encode(),
        "pem": public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        "jwk-json": json.dumps(signer.jwk()).encode(),
    }[secret_form]

    token = compact(
        {"alg": "HS256", "typ": "JWT", "kid": signer.kid},
        json.dumps(claims()).encode(),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )

    assert (await refused(verifier, token)).code == "token_algorithm_not_allowed"


async def test_an_rs256_token_is_refused_even_under_a_trusted_kid(verifier: TokenVerifier, signer: Signer) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": signer.kid})

    assert (await refused(verifier, token)).code == "token_algorithm_not_allowed"


async def test_an_es256_token_is_refused_even_under_a_trusted_kid(verifier: TokenVerifier, signer: Signer) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": signer.kid})

    assert (await refused(verifier, token)).code == "token_algorithm_not_allowed"


@pytest.mark.parametrize("alg", ["Ed25519", "EdDSA ", "eddsa", "ES256K", "", None, ["EdDSA"], 1, MISSING])
async def test_an_unknown_or_misspelt_algorithm_is_refused(
    verifier: TokenVerifier, signer: Signer, alg: object
) -> None:
    header = {"typ": "JWT", "kid": signer.kid} | ({} if alg is MISSING else {"alg": alg})
    # Validly signed by the trusted key: only the header's alg is wrong.
    token = signer.sign_raw(header, json.dumps(claims()).encode())

    assert (await refused(verifier, token)).code == "token_algorithm_not_allowed"


# --- the attack suite: keys ---------------------------------------------------------------------------------


async def test_a_token_with_an_unknown_kid_is_refused(verifier: TokenVerifier) -> None:
    stranger = Signer.generate("key-nobody-published")

    assert (await refused(verifier, stranger.sign(claims()))).code == "token_unknown_key"


async def test_a_token_claiming_a_trusted_kid_but_signed_by_another_key_is_refused(
    verifier: TokenVerifier, signer: Signer
) -> None:
    impostor = Signer.generate(signer.kid)

    assert (await refused(verifier, impostor.sign(claims()))).code == "token_bad_signature"


async def test_a_token_signed_by_a_retired_key_is_refused_once_the_jwks_drops_it(clock: Clock) -> None:
    retired, current = Signer.generate("key-retired"), Signer.generate("key-current")
    published = jwks(retired, current)
    verifier = make_verifier(CallableJwksSource(lambda: published), clock)
    token = retired.sign(claims(exp=int(NOW) + 3600))
    assert await verifier.verify(token)

    published = jwks(current)
    clock.advance(600)

    assert (await refused(verifier, token)).code == "token_unknown_key"


async def test_a_key_embedded_in_the_jwk_header_is_not_used(verifier: TokenVerifier, signer: Signer) -> None:
    attacker = Signer.generate("attacker")
    own_kid = attacker.sign(claims(), headers={"jwk": attacker.jwk()})
    borrowed_kid = Signer(signer.kid, attacker.private_key).sign(claims(), headers={"jwk": attacker.jwk()})

    assert (await refused(verifier, own_kid)).code == "token_unknown_key"
    assert (await refused(verifier, borrowed_kid)).code == "token_bad_signature"


async def test_an_x5c_certificate_chain_in_the_header_is_not_used(verifier: TokenVerifier, signer: Signer) -> None:
    attacker = Signer(signer.kid, Ed25519PrivateKey.generate())
    token = attacker.sign(claims(), headers={"x5c": [b64url(attacker.public_bytes())]})

    assert (await refused(verifier, token)).code == "token_bad_signature"


async def test_jku_and_x5u_headers_pointing_elsewhere_are_never_fetched(clock: Clock, signer: Signer) -> None:
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(200, json=jwks(signer))

    attacker = Signer.generate("attacker")
    token = attacker.sign(
        claims(), headers={"jku": "https://evil.example/jwks.json", "x5u": "https://evil.example/cert.pem"}
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        verifier = make_verifier(HttpJwksSource(JWKS_URL, client=client), clock)

        assert (await refused(verifier, token)).code == "token_unknown_key"

    assert requested
    assert set(requested) == {JWKS_URL}


async def test_a_kid_naming_a_key_the_jwks_could_not_vouch_for_is_refused(clock: Clock, signer: Signer) -> None:
    rsa_public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    unusable = [
        {**jwt.algorithms.RSAAlgorithm.to_jwk(rsa_public, as_dict=True), "kid": "rsa"},
        {"kty": "OKP", "crv": "X25519", "kid": "x25519", "x": b64url(bytes(32))},
        {"kty": "OKP", "crv": "Ed448", "kid": "ed448", "x": b64url(bytes(57))},
        {**Signer.generate("enc").jwk(), "use": "enc"},
        {**Signer.generate("hs").jwk(), "alg": "HS256"},
        {**Signer.generate("wrap-only").jwk(), "key_ops": ["wrapKey"]},
        {**Signer.generate("short").jwk(), "x": b64url(bytes(31))},
        {**Signer.generate("padded").jwk(), "x": signer.jwk()["x"] + "="},
        {**Signer.generate("second-spelling").jwk(), "x": second_spelling(signer.jwk()["x"])},
        {key: value for key, value in Signer.generate("no-x").jwk().items() if key != "x"},
        {**Signer.generate("nokid").jwk(), "kid": ""},
        "not a jwk",
    ]
    verifier = make_verifier(StaticJwksSource(jwks(signer, extra=unusable)), clock)

    assert await verifier.verify(signer.sign(claims()))
    for kid in ("rsa", "x25519", "ed448", "enc", "hs", "wrap-only", "short", "padded", "second-spelling", "no-x"):
        forged = Signer(kid, Ed25519PrivateKey.generate()).sign(claims())
        assert (await refused(verifier, forged)).code == "token_unknown_key", kid


async def test_a_published_private_key_is_never_trusted(clock: Clock) -> None:
    leaked = Signer.generate("leaked")
    private_bytes = leaked.private_key.private_bytes_raw()
    verifier = make_verifier(StaticJwksSource({"keys": [{**leaked.jwk(), "d": b64url(private_bytes)}]}), clock)

    assert (await refused(verifier, leaked.sign(claims()))).code == "token_unknown_key"


async def test_two_keys_published_under_one_kid_make_that_kid_untrusted(clock: Clock) -> None:
    first, second = Signer.generate("same"), Signer.generate("same")
    other = Signer.generate("other")
    verifier = make_verifier(StaticJwksSource(jwks(first, second, other)), clock)

    assert (await refused(verifier, first.sign(claims()))).code == "token_unknown_key"
    assert (await refused(verifier, second.sign(claims()))).code == "token_unknown_key"
    assert await verifier.verify(other.sign(claims()))


@pytest.mark.parametrize("kid", [MISSING, "", 7, None, ["key-2026-01"], "k" * 257])
async def test_a_token_without_a_usable_kid_is_malformed(verifier: TokenVerifier, signer: Signer, kid: object) -> None:
    header = {"alg": "EdDSA", "typ": "JWT"} | ({} if kid is MISSING else {"kid": kid})
    token = signer.sign_raw(header, json.dumps(claims()).encode())

    assert (await refused(verifier, token)).code == "token_malformed"


# --- the attack suite: integrity ----------------------------------------------------------------------------


async def test_a_tampered_payload_is_refused(verifier: TokenVerifier, signer: Signer) -> None:
    token = signer.sign(claims())
    other_user = str(uuid.uuid4())

    def become_someone_else(segment: str) -> str:
        payload = json.loads(unb64url(segment))
        return b64url(json.dumps({**payload, "sub": other_user}).encode())

    assert (await refused(verifier, tamper(token, 1, become_someone_else))).code == "token_bad_signature"


async def test_a_tampered_header_is_refused(verifier: TokenVerifier, signer: Signer) -> None:
    token = signer.sign(claims())

    def add_member(segment: str) -> str:
        header = json.loads(unb64url(segment))
        return b64url(json.dumps({**header, "cty": "JWT"}).encode())

    assert (await refused(verifier, tamper(token, 0, add_member))).code == "token_bad_signature"


async def test_a_tampered_signature_is_refused(verifier: TokenVerifier, signer: Signer) -> None:
    token = tamper(signer.sign(claims()), 2, flip_last_byte)

    assert (await refused(verifier, token)).code == "token_bad_signature"


async def test_an_empty_signature_is_refused(verifier: TokenVerifier, signer: Signer) -> None:
    token = tamper(signer.sign(claims()), 2, lambda _: "")

    assert (await refused(verifier, token)).code == "token_bad_signature"


async def test_a_signature_truncated_by_whole_bytes_is_refused(verifier: TokenVerifier, signer: Signer) -> None:
    token = tamper(signer.sign(claims()), 2, lambda segment: b64url(unb64url(segment)[:-3]))

    assert (await refused(verifier, token)).code == "token_bad_signature"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda token: "", id="empty"),
        pytest.param(lambda token: "garbage", id="garbage"),
        pytest.param(lambda token: token.rsplit(".", 1)[0], id="signature-segment-dropped"),
        pytest.param(lambda token: token[:-1], id="truncated-mid-character"),
        pytest.param(lambda token: token + ".extra", id="four-segments"),
        pytest.param(lambda token: f"Bearer {token}", id="bearer-prefix"),
        pytest.param(lambda token: f" {token}", id="leading-space"),
        pytest.param(lambda token: f"{token}\n", id="trailing-newline"),
        pytest.param(lambda token: token + "==", id="padded"),
        pytest.param(lambda token: tamper(token, 0, lambda _: b64url(b"not json")), id="header-not-json"),
        pytest.param(lambda token: tamper(token, 0, lambda _: b64url(b"[]")), id="header-not-object"),
        pytest.param(lambda token: tamper(token, 1, lambda _: ""), id="payload-empty"),
        pytest.param(
            lambda token: tamper(token, 2, lambda segment: base64.b64encode(unb64url(segment)).decode()),
            id="signature-in-standard-base64",
        ),
    ],
)
async def test_a_mangled_token_is_malformed(
    verifier: TokenVerifier, signer: Signer, make: Callable[[str], str]
) -> None:
    token = signer.sign(claims(jti="a" * 64))
    mangled = make(token)
    assert mangled != token

    assert (await refused(verifier, mangled)).code == "token_malformed"


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'"access"', b"[" * 3000 + b"]" * 3000])
async def test_a_validly_signed_payload_that_is_not_a_claims_object_is_malformed(
    verifier: TokenVerifier, signer: Signer, payload: bytes
) -> None:
    token = signer.sign_raw({"alg": "EdDSA", "typ": "JWT", "kid": signer.kid}, payload)

    assert (await refused(verifier, token)).code == "token_malformed"


@pytest.mark.parametrize("extension", [{"crit": ["exp"], "exp": 1}, {"b64": False, "crit": ["b64"]}, {"zip": "DEF"}])
async def test_a_header_extension_we_do_not_implement_is_refused(
    verifier: TokenVerifier, signer: Signer, extension: dict[str, Any]
) -> None:
    header = {"alg": "EdDSA", "typ": "JWT", "kid": signer.kid, **extension}
    token = signer.sign_raw(header, json.dumps(claims()).encode())

    assert (await refused(verifier, token)).code == "token_malformed"


async def test_an_oversized_token_is_refused_before_any_key_is_fetched(
    verifier: TokenVerifier, source: CountingSource, signer: Signer
) -> None:
    token = signer.sign(claims(padding="x" * MAX_TOKEN_LENGTH))

    assert (await refused(verifier, token)).code == "token_malformed"
    assert source.fetches == 0


async def test_refusal_messages_never_repeat_the_token(verifier: TokenVerifier, signer: Signer) -> None:
    candidates = [
        signer.sign(claims(iss="https://evil.example")),
        signer.sign(claims(sub="not-a-uuid")),
        signer.sign(claims(typ="refresh")),
        tamper(signer.sign(claims()), 2, flip_last_byte),
        Signer.generate("stranger").sign(claims()),
    ]
    for token in candidates:
        error = await refused(verifier, token)
        for text in (str(error), repr(error), error.message):
            assert all(part not in text for part in token.split(".")), error.code
            assert "evil" not in text
            assert "not-a-uuid" not in text


# --- the attack suite: claims -------------------------------------------------------------------------------


async def test_an_expired_token_is_refused(verifier: TokenVerifier, signer: Signer) -> None:
    token = signer.sign(claims(iat=int(NOW) - 1000, nbf=int(NOW) - 1000, exp=int(NOW) - 100))

    assert (await refused(verifier, token)).code == "token_expired"


async def test_a_token_not_valid_yet_is_refused(verifier: TokenVerifier, signer: Signer) -> None:
    token = signer.sign(claims(nbf=int(NOW) + 300, exp=int(NOW) + 1200))

    assert (await refused(verifier, token)).code == "token_not_yet_valid"


async def test_a_token_issued_in_the_future_is_refused(verifier: TokenVerifier, signer: Signer) -> None:
    token = signer.sign(claims(iat=int(NOW) + 300, exp=int(NOW) + 1200))

    assert (await refused(verifier, token)).code == "token_not_yet_valid"


@pytest.mark.parametrize(
    "issuer", ["https://evil.example/api/auth", f"{ISSUER}/", ISSUER.upper(), f"{ISSUER}.evil.example", ""]
)
async def test_a_token_from_another_issuer_is_refused(verifier: TokenVerifier, signer: Signer, issuer: str) -> None:
    assert (await refused(verifier, signer.sign(claims(iss=issuer)))).code == "token_wrong_issuer"


@pytest.mark.parametrize("audience", ["billing", "Chat", "chat ", [], ["billing", "admin"]])
async def test_a_token_for_another_audience_is_refused(
    verifier: TokenVerifier, signer: Signer, audience: object
) -> None:
    assert (await refused(verifier, signer.sign(claims(aud=audience)))).code == "token_wrong_audience"


@pytest.mark.parametrize("kind", ["refresh", "mfa", "reset", "verification", "ACCESS", ""])
async def test_only_an_access_token_is_accepted_where_an_access_token_is_asked_for(
    verifier: TokenVerifier, signer: Signer, kind: str
) -> None:
    assert (await refused(verifier, signer.sign(claims(typ=kind)))).code == "token_wrong_type"


@pytest.mark.parametrize("kind", ["mfa", "reset"])
async def test_an_access_token_is_not_accepted_where_another_kind_is_asked_for(
    verifier: TokenVerifier, signer: Signer, kind: str
) -> None:
    assert (await refused(verifier, signer.sign(claims()), typ=kind)).code == "token_wrong_type"


@pytest.mark.parametrize("name", REQUIRED)
async def test_an_access_token_missing_a_required_claim_is_refused(
    verifier: TokenVerifier, signer: Signer, name: str
) -> None:
    error = await refused(verifier, signer.sign(claims(**{name: MISSING})))

    assert error.code == "token_missing_claim"
    assert name in error.message


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"sub": "not-a-uuid"}, id="sub-not-a-uuid"),
        pytest.param({"sub": "42"}, id="sub-a-number-string"),
        pytest.param({"sub": "z" * 36}, id="sub-36-characters-not-a-uuid"),
        pytest.param({"sub": 42}, id="sub-a-number"),
        pytest.param({"sub": f"{{{USER_ID}}}"}, id="sub-in-braces"),
        pytest.param({"sub": USER_ID.hex}, id="sub-without-hyphens"),
        pytest.param({"sub": f"urn:uuid:{USER_ID}"}, id="sub-as-urn"),
        pytest.param({"sid": "session-1"}, id="sid-not-a-uuid"),
        pytest.param({"sid": None}, id="sid-null"),
        pytest.param({"jti": ""}, id="jti-empty"),
        pytest.param({"jti": 7}, id="jti-a-number"),
        pytest.param({"iss": 7}, id="iss-a-number"),
        pytest.param({"aud": 7}, id="aud-a-number"),
        pytest.param({"aud": [AUDIENCE, 7]}, id="aud-list-with-a-number"),
        pytest.param({"typ": ["access"]}, id="typ-a-list"),
        pytest.param({"exp": "tomorrow"}, id="exp-a-string"),
        pytest.param({"exp": True}, id="exp-a-boolean"),
        pytest.param({"exp": float("nan")}, id="exp-nan"),
        pytest.param({"exp": float("inf")}, id="exp-infinite"),
        pytest.param({"exp": 10**20}, id="exp-beyond-year-9999"),
        pytest.param({"iat": -1}, id="iat-before-1970"),
        pytest.param({"nbf": None}, id="nbf-null"),
        pytest.param({"username": ""}, id="username-empty"),
        pytest.param({"username": 7}, id="username-a-number"),
        pytest.param({"email_verified": "true"}, id="email-verified-a-string"),
        pytest.param({"email_verified": 1}, id="email-verified-a-number"),
    ],
)
async def test_a_claim_of_the_wrong_shape_is_refused(
    verifier: TokenVerifier, signer: Signer, changes: dict[str, Any]
) -> None:
    assert (await refused(verifier, signer.forge(claims(**changes)))).code == "token_invalid_claim"


# --- key caching --------------------------------------------------------------------------------------------


async def test_many_verifications_share_one_fetch(
    verifier: TokenVerifier, source: CountingSource, signer: Signer
) -> None:
    for _ in range(20):
        await verifier.verify(signer.sign(claims()))

    assert source.fetches == 1


async def test_refused_tokens_that_name_no_key_never_cause_a_fetch(
    verifier: TokenVerifier, source: CountingSource, signer: Signer
) -> None:
    for token in ("garbage", compact({"alg": "none", "kid": signer.kid}, b"{}", b""), "a.b.c"):
        with pytest.raises(TokenError):
            await verifier.verify(token)

    assert source.fetches == 0


async def test_an_unknown_kid_refreshes_the_keys_and_finds_a_newly_rotated_key(
    verifier: TokenVerifier, source: CountingSource, signer: Signer, clock: Clock
) -> None:
    await verifier.verify(signer.sign(claims()))
    rotated = Signer.generate("key-2026-02")
    source.document = jwks(signer, rotated)
    clock.advance(30)

    assert await verifier.verify(rotated.sign(claims()))
    assert source.fetches == 2


async def test_refreshes_for_unknown_kids_are_rate_limited(
    verifier: TokenVerifier, source: CountingSource, signer: Signer, clock: Clock
) -> None:
    await verifier.verify(signer.sign(claims()))
    await refused(verifier, Signer.generate("random-early").sign(claims()))
    assert source.fetches == 1  # the keys were fetched just now; a refresh could not know more

    clock.advance(30)
    for n in range(50):
        error = await refused(verifier, Signer.generate(f"random-{n}").sign(claims()))
        assert error.code == "token_unknown_key"
        clock.advance(0.5)
    assert source.fetches == 2

    clock.advance(5)
    await refused(verifier, Signer.generate("random-late").sign(claims()))

    assert source.fetches == 3


async def test_keys_are_fetched_again_once_older_than_max_cache_age(
    verifier: TokenVerifier, source: CountingSource, signer: Signer, clock: Clock
) -> None:
    token = signer.sign(claims(exp=int(NOW) + 3600))
    await verifier.verify(token)
    clock.advance(599)
    await verifier.verify(token)
    assert source.fetches == 1

    clock.advance(1)
    await verifier.verify(token)

    assert source.fetches == 2


async def test_concurrent_verifications_share_one_fetch(
    verifier: TokenVerifier, source: CountingSource, signer: Signer
) -> None:
    source.gate = asyncio.Event()
    tokens = [signer.sign(claims()) for _ in range(25)]

    pending = asyncio.gather(*(verifier.verify(token) for token in tokens))
    await asyncio.sleep(0)
    source.gate.set()
    verified = await pending

    assert len(verified) == 25
    assert source.fetches == 1


async def test_concurrent_unknown_kids_share_one_refresh(
    verifier: TokenVerifier, source: CountingSource, signer: Signer, clock: Clock
) -> None:
    await verifier.verify(signer.sign(claims()))
    clock.advance(30)
    source.gate = asyncio.Event()
    strangers = [Signer.generate(f"random-{n}").sign(claims()) for n in range(10)]

    pending = asyncio.gather(*(verifier.verify(token) for token in strangers), return_exceptions=True)
    await asyncio.sleep(0)
    source.gate.set()
    outcomes = await pending

    assert all(isinstance(outcome, TokenError) and outcome.code == "token_unknown_key" for outcome in outcomes)
    assert source.fetches == 2


async def test_a_fetch_failure_without_keys_is_unavailability_not_a_bad_token(
    verifier: TokenVerifier, source: CountingSource, signer: Signer
) -> None:
    source.failing = True

    with pytest.raises(JwksUnavailable) as caught:
        await verifier.verify(signer.sign(claims()))

    assert TokenError not in type(caught.value).__mro__
    assert caught.value.code == "jwks_unavailable"
    assert caught.value.retry_after == 1.0
    assert repr(caught.value).endswith("retry_after=1.0)")
    assert isinstance(caught.value.__cause__, JwksUnavailable)


async def test_without_keys_fetches_are_retried_at_most_once_a_second(
    verifier: TokenVerifier, source: CountingSource, signer: Signer, clock: Clock
) -> None:
    source.failing = True
    token = signer.sign(claims())
    for _ in range(10):
        with pytest.raises(JwksUnavailable):
            await verifier.verify(token)
    assert source.fetches == 1

    clock.advance(1)
    source.failing = False

    assert await verifier.verify(token)
    assert source.fetches == 2


async def test_stale_keys_keep_working_while_the_issuer_is_down_until_max_stale_age(
    verifier: TokenVerifier, source: CountingSource, signer: Signer, clock: Clock
) -> None:
    await verifier.verify(signer.sign(claims()))
    source.failing = True

    clock.advance(600)
    assert await verifier.verify(signer.sign(claims(exp=int(clock.now) + 900)))
    clock.advance(10)
    assert await verifier.verify(signer.sign(claims(exp=int(clock.now) + 900)))
    assert source.fetches == 2  # the failed refresh is not retried within min_refresh_interval

    clock.advance(1800 - 610)
    with pytest.raises(JwksUnavailable):
        await verifier.verify(signer.sign(claims(exp=int(clock.now) + 900)))


async def test_a_document_that_is_not_a_jwks_counts_as_unavailable(
    verifier: TokenVerifier, source: CountingSource, signer: Signer
) -> None:
    source.document = {"keys": "none here"}

    with pytest.raises(JwksUnavailable):
        await verifier.verify(signer.sign(claims()))


async def test_an_empty_key_set_trusts_no_token(clock: Clock, signer: Signer) -> None:
    verifier = make_verifier(StaticJwksSource({"keys": []}), clock)

    assert (await refused(verifier, signer.sign(claims()))).code == "token_unknown_key"


async def test_a_cancelled_fetch_does_not_hold_back_the_next_verification(
    verifier: TokenVerifier, source: CountingSource, signer: Signer
) -> None:
    source.gate = asyncio.Event()
    first = asyncio.create_task(verifier.verify(signer.sign(claims())))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    source.gate.set()

    assert await verifier.verify(signer.sign(claims()))
    assert source.fetches == 2


@pytest.mark.parametrize(
    "options",
    [
        {"leeway_seconds": -1},
        {"min_refresh_interval": -1},
        {"max_cache_age": 0},
        {"max_cache_age": 600, "max_stale_age": 599},
    ],
)
def test_nonsensical_verifier_settings_are_refused(
    source: CountingSource, clock: Clock, options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="must"):
        make_verifier(source, clock, **options)


@pytest.mark.parametrize(("issuer", "audience"), [("", AUDIENCE), (ISSUER, "")])
def test_a_verifier_needs_an_issuer_and_an_audience(source: CountingSource, issuer: str, audience: str) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        TokenVerifier(jwks=source, issuer=issuer, audience=audience)


# --- JWKS sources -------------------------------------------------------------------------------------------


async def test_a_callable_source_serves_whatever_the_auth_module_publishes_now(clock: Clock) -> None:
    first, second = Signer.generate("first"), Signer.generate("second")
    current = {"document": jwks(first)}
    verifier = make_verifier(CallableJwksSource(lambda: current["document"]), clock, min_refresh_interval=0)
    assert await verifier.verify(first.sign(claims()))

    current["document"] = jwks(first, second)

    assert await verifier.verify(second.sign(claims()))


async def test_a_callable_source_may_be_asynchronous(clock: Clock, signer: Signer) -> None:
    async def publish() -> Mapping[str, Any]:
        return jwks(signer)

    verifier = make_verifier(CallableJwksSource(publish), clock)

    assert await verifier.verify(signer.sign(claims()))


async def test_the_http_source_fetches_the_configured_url_as_json(clock: Clock, signer: Signer) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=jwks(signer))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        verifier = make_verifier(HttpJwksSource(JWKS_URL, client=client), clock)
        assert await verifier.verify(signer.sign(claims()))

    assert [(r.method, str(r.url), r.headers["accept"]) for r in seen] == [("GET", JWKS_URL, "application/json")]


def answer(status: int = 200, content: bytes = b"{}", **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, content=content, headers=headers)


def cannot_connect(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(answer(500, b"oops"), id="server-error"),
        pytest.param(answer(404, b"{}"), id="not-found"),
        pytest.param(answer(302, b"", location="https://evil.example/jwks.json"), id="redirect-not-followed"),
        pytest.param(answer(200, b"<html>"), id="not-json"),
        pytest.param(answer(200, b"[]"), id="not-an-object"),
        pytest.param(answer(200, b'{"keys": [' + b" " * MAX_TOKEN_LENGTH * 8 + b"]}"), id="too-large"),
        pytest.param(cannot_connect, id="connection-refused"),
    ],
)
async def test_the_http_source_turns_every_failure_into_unavailability(
    handler: Callable[[httpx.Request], httpx.Response],
) -> None:
    requests: list[str] = []

    def recording(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        return handler(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(recording)) as client:
        with pytest.raises(JwksUnavailable):
            await HttpJwksSource(JWKS_URL, client=client).fetch()

    assert requests == [JWKS_URL]


@pytest.mark.parametrize("options", [{"timeout": 0}, {"max_bytes": 0}])
def test_the_http_source_refuses_nonsensical_limits(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        HttpJwksSource(JWKS_URL, **options)


async def test_the_http_source_gives_up_after_its_timeout() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json={"keys": []})  # pragma: no cover - never reached

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as client:
        with pytest.raises(JwksUnavailable):
            await HttpJwksSource(JWKS_URL, client=client, timeout=0.05).fetch()


async def test_the_http_source_without_a_client_opens_its_own() -> None:
    # Port 1 on the loopback interface refuses at once: no traffic leaves the machine.
    with pytest.raises(JwksUnavailable):
        await HttpJwksSource(f"http://127.0.0.1:1{JWKS_PATH}", timeout=2).fetch()


# --- documentation ------------------------------------------------------------------------------------------


def test_every_error_code_is_documented_in_the_decision_record() -> None:
    record = Path(__file__).resolve().parents[3] / "docs" / "decisions" / "0004-access-tokens.md"
    text = record.read_text(encoding="utf-8")

    assert {code for code in TOKEN_ERROR_CODES if f"`{code}`" not in text} == set()
    assert "`jwks_unavailable`" in text
