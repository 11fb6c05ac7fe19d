"""Provider sign-in without a provider: the pure pieces, ID-token checks with local keys, the HTTP client on a
mock transport, and the routes on the fake store with a scripted provider."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from argon2 import PasswordHasher as Argon2
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from prometheus_client import CollectorRegistry

from chat_auth.adapters.oidc import HttpOidcProvider, ProviderMetadata, validate_id_token
from chat_auth.bootstrap import AuthModule, build_context
from chat_auth.domain.errors import AuthError
from chat_auth.domain.passwords import PasswordHasher
from chat_auth.entrypoints.http_oidc import BROWSER_COOKIE
from chat_auth.service.oidc import (
    ProviderIdentity,
    check_return_to,
    display_name_for,
    pkce_challenge,
    username_base,
    username_candidates,
)
from chat_auth.settings import AuthSettings
from chat_auth.testing.fakes import FakeAuthStore, FakeClock, RecordingMailer
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import load_settings

ISSUER = "https://accounts.example.com"
CLIENT_ID = "chat-web.apps.example.com"
NONCE = "n-0S6_WzA2Mj-4f3Kp9Qx7Lb5Rt1Yv8Ue2Hc6Gd0Jm"
NOW = 1_800_000_000
FAST_HASHER = PasswordHasher(Argon2(time_cost=1, memory_cost=8, parallelism=1))


# --- return_to, PKCE, usernames -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "/"),
        ("", "/"),
        ("/", "/"),
        ("/rooms", "/rooms"),
        ("/rooms/42?tab=files&x=%2F", "/rooms/42?tab=files&x=%2F"),
    ],
)
def test_a_same_site_path_is_a_valid_return_to(given: str | None, expected: str) -> None:
    assert check_return_to(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "//evil.example/rooms",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "rooms",
        "/rooms#frag",
        "/rooms\nSet-Cookie: x=1",
        "/a b",
        "/\x00",
        "/" + "a" * 1024,
    ],
)
def test_anything_but_a_same_site_path_is_refused_as_return_to(given: str) -> None:
    with pytest.raises(AuthError) as caught:
        check_return_to(given)
    assert caught.value.code == "invalid_return_to"


def test_the_pkce_challenge_is_s256_of_the_verifier_as_in_rfc_7636() -> None:
    # RFC 7636, Appendix B
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (ProviderIdentity(ISSUER, "1", email="ada@example.com", preferred_username="Ada_L"), "ada.l"),
        (ProviderIdentity(ISSUER, "1", email="Ada.Lovelace+chat@example.com"), "ada.lovelace"),
        (ProviderIdentity(ISSUER, "1", email=None, name="Zoë Ångström"), "zoe.angstrom"),
        (ProviderIdentity(ISSUER, "1", email="___@example.com", name="Bo"), "bo"),
        (ProviderIdentity(ISSUER, "1", email="李@example.com"), "user"),
        (ProviderIdentity(ISSUER, "1", email="x" * 60 + "@example.com"), "x" * 28),
    ],
)
def test_a_username_is_derived_from_the_preferred_username_the_email_or_the_name(
    identity: ProviderIdentity, expected: str
) -> None:
    assert username_base(identity) == expected


def test_username_candidates_are_valid_and_add_digits_when_needed() -> None:
    assert list(username_candidates("ada", random_tries=0)) == ["ada", *(f"ada{n}" for n in range(2, 10))]
    # "admin" is reserved and "al" too short: both start at a suffix
    assert next(username_candidates("admin")) == "admin2"
    assert next(username_candidates("al")) == "al2"
    random_ones = list(username_candidates("x" * 28, random_tries=5))[9:]
    assert len(random_ones) == 5
    assert all(len(name) == 32 and name[28:].isdigit() for name in random_ones)


def test_the_display_name_is_the_providers_name_unless_it_is_unusable() -> None:
    assert display_name_for(ProviderIdentity(ISSUER, "1", name="Ada Lovelace"), "ada") == "Ada Lovelace"
    assert display_name_for(ProviderIdentity(ISSUER, "1", name="bad\u202ename"), "ada") == "ada"
    assert display_name_for(ProviderIdentity(ISSUER, "1"), "ada") == "ada"


# --- ID token validation ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "key-1", "alg": "RS256", "use": "sig"})


@pytest.fixture(scope="module")
def other_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "key-1", "alg": "RS256", "use": "sig"})


def _public_set(*keys: RSAKey) -> KeySet:
    return KeySet.import_key_set({"keys": [key.as_dict(private=False) for key in keys]})


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "1185739",
        "iat": NOW - 5,
        "exp": NOW + 3600,
        "nonce": NONCE,
        "email": "ada@example.com",
        "email_verified": True,
        "name": "Ada Lovelace",
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _sign(key: RSAKey, claims: dict[str, Any], **header: Any) -> str:
    return jwt.encode({"alg": "RS256", "kid": key.kid, **header}, claims, key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _check(token: str, keys: KeySet, **kwargs: Any) -> ProviderIdentity:
    options: dict[str, Any] = {"issuer": ISSUER, "client_id": CLIENT_ID, "nonce": NONCE, "now": NOW} | kwargs
    return validate_id_token(token, keys=keys, **options)


def test_a_valid_id_token_names_the_person(signing_key: RSAKey) -> None:
    identity = _check(_sign(signing_key, _claims()), _public_set(signing_key))
    assert identity == ProviderIdentity(
        issuer=ISSUER, subject="1185739", email="ada@example.com", email_verified=True, name="Ada Lovelace"
    )


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"aud": "someone-else"}, "another client's token"),
        ({"aud": [CLIENT_ID, "someone-else"]}, "an extra, untrusted audience"),
        ({"azp": "someone-else"}, "authorized for another party"),
        ({"iss": ISSUER + ".evil"}, "another issuer"),
        ({"iss": "accounts.example.com"}, "an issuer that is not exactly the configured one"),
        ({"exp": NOW - 120}, "expired beyond the leeway"),
        ({"exp": None}, "no exp"),
        ({"iat": None}, "no iat"),
        ({"iat": NOW - 3600}, "issued long ago: replayed"),
        ({"iat": NOW + 600}, "issued in the future"),
        ({"nonce": "another-attempt"}, "another attempt's nonce"),
        ({"nonce": None}, "no nonce"),
        ({"sub": None}, "no subject"),
        ({"sub": ""}, "an empty subject"),
    ],
)
def test_an_id_token_with_a_wrong_claim_is_refused(signing_key: RSAKey, changes: dict[str, Any], why: str) -> None:
    with pytest.raises(AuthError) as caught:
        _check(_sign(signing_key, _claims(**changes)), _public_set(signing_key))
    assert caught.value.code == "oidc_token_invalid", why


def test_an_id_token_signed_by_an_unknown_key_with_a_known_kid_is_refused(
    signing_key: RSAKey, other_key: RSAKey
) -> None:
    with pytest.raises(AuthError):
        _check(_sign(other_key, _claims()), _public_set(signing_key))


def test_an_embedded_jwk_header_is_never_trusted(signing_key: RSAKey, other_key: RSAKey) -> None:
    token = _sign(other_key, _claims(), jwk=other_key.as_dict(private=False))
    with pytest.raises(AuthError):
        _check(token, _public_set(signing_key))


def test_an_unsigned_or_hmac_id_token_is_refused(signing_key: RSAKey) -> None:
    unsigned = f"{_b64(json.dumps({'alg': 'none'}).encode())}.{_b64(json.dumps(_claims()).encode())}."
    with pytest.raises(AuthError):
        _check(unsigned, _public_set(signing_key))
    # The classic confusion: HS256 keyed with the provider's public key, which anyone can fetch.
    header = _b64(json.dumps({"alg": "HS256", "kid": signing_key.kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    secret = signing_key.as_pem(private=False)
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(AuthError):
        _check(f"{header}.{payload}.{_b64(mac)}", _public_set(signing_key))


def test_a_changed_payload_or_signature_is_refused(signing_key: RSAKey) -> None:
    header, _, signature = _sign(signing_key, _claims()).split(".")
    forged_payload = _b64(json.dumps(_claims(sub="someone-else")).encode())
    for token in (f"{header}.{forged_payload}.{signature}", f"{header}.{forged_payload}.", "not-a-token"):
        with pytest.raises(AuthError):
            _check(token, _public_set(signing_key))


def test_only_a_json_true_verifies_the_email(signing_key: RSAKey) -> None:
    for value in ("true", 1, None):
        identity = _check(_sign(signing_key, _claims(email_verified=value)), _public_set(signing_key))
        assert identity.email_verified is False


def test_discovery_must_name_exactly_the_configured_issuer() -> None:
    document = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/certs",
    }
    assert ProviderMetadata.parse(document, issuer=ISSUER).token_endpoint == f"{ISSUER}/token"
    with pytest.raises(ValueError, match="issuer"):
        ProviderMetadata.parse(document | {"issuer": ISSUER + "/"}, issuer=ISSUER)
    with pytest.raises(ValueError, match="https"):
        ProviderMetadata.parse(document | {"token_endpoint": "http://accounts.example.com/token"}, issuer=ISSUER)


# --- the HTTP client on a mock transport --------------------------------------------------------------------


@dataclass
class _ProviderScript:
    """A provider behind httpx.MockTransport: counts requests, signs ID tokens with ``key``."""

    key: RSAKey
    published: list[RSAKey]
    issuer: str = ISSUER
    claims: dict[str, Any] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{ISSUER}/auth",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/certs",
                },
            )
        if path == "/certs":
            return httpx.Response(200, json={"keys": [key.as_dict(private=False) for key in self.published]})
        if path == "/token":
            form = parse_qs(request.content.decode())
            if form.get("code") != ["good-code"]:
                return httpx.Response(400, json={"error": "invalid_grant"})
            claims = _claims(iat=int(time.time()), exp=int(time.time()) + 600) | self.claims
            return httpx.Response(200, json={"access_token": "at", "id_token": _sign(self.key, claims)})
        return httpx.Response(404)

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]


def _client(script: _ProviderScript, monotonic: Callable[[], float] = time.monotonic) -> HttpOidcProvider:
    return HttpOidcProvider(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        client_secret="s3cret",
        redirect_uri="https://chat.example.com/api/auth/oidc/callback",
        transport=httpx.MockTransport(script.handle),
        monotonic=monotonic,
    )


async def test_the_authorization_url_asks_for_the_code_flow_with_pkce_state_and_nonce(signing_key: RSAKey) -> None:
    script = _ProviderScript(signing_key, [signing_key])
    provider = _client(script)
    url = await provider.authorization_url(state="st", nonce="nn", code_challenge="ch")
    await provider.authorization_url(state="st2", nonce="nn2", code_challenge="ch2")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ISSUER}/auth"
    assert {key: values[0] for key, values in parse_qs(parts.query).items()} == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": "https://chat.example.com/api/auth/oidc/callback",
        "scope": "openid email profile",
        "state": "st",
        "nonce": "nn",
        "code_challenge": "ch",
        "code_challenge_method": "S256",
    }
    assert script.paths() == ["/.well-known/openid-configuration"], "discovery is cached"


async def test_the_code_exchange_authenticates_the_client_and_sends_the_verifier(signing_key: RSAKey) -> None:
    script = _ProviderScript(signing_key, [signing_key])
    identity = await _client(script).exchange(code="good-code", code_verifier="v" * 43, nonce=NONCE)
    assert identity.subject == "1185739"
    token_request = next(request for request in script.requests if request.url.path == "/token")
    form = parse_qs(token_request.content.decode())
    assert form["grant_type"] == ["authorization_code"]
    assert form["code_verifier"] == ["v" * 43]
    assert form["redirect_uri"] == ["https://chat.example.com/api/auth/oidc/callback"]
    expected = base64.b64encode(f"{CLIENT_ID}:s3cret".encode()).decode()
    assert token_request.headers["authorization"] == f"Basic {expected}"


async def test_a_refused_code_is_token_invalid_and_an_unreachable_provider_unavailable(signing_key: RSAKey) -> None:
    script = _ProviderScript(signing_key, [signing_key])
    with pytest.raises(AuthError) as caught:
        await _client(script).exchange(code="spent-code", code_verifier="v" * 43, nonce=NONCE)
    assert caught.value.code == "oidc_token_invalid"

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    offline = HttpOidcProvider(
        issuer=ISSUER, client_id=CLIENT_ID, client_secret="s", redirect_uri="x", transport=httpx.MockTransport(down)
    )
    with pytest.raises(AuthError) as caught:
        await offline.authorization_url(state="s", nonce="n", code_challenge="c")
    assert (caught.value.code, caught.value.status) == ("oidc_provider_unavailable", 503)


async def test_a_discovery_document_for_another_issuer_is_refused(signing_key: RSAKey) -> None:
    script = _ProviderScript(signing_key, [signing_key], issuer="https://evil.example")
    with pytest.raises(AuthError) as caught:
        await _client(script).authorization_url(state="s", nonce="n", code_challenge="c")
    assert caught.value.code == "oidc_provider_unavailable"


async def test_a_rotated_key_is_fetched_but_unknown_kids_do_not_hammer_the_provider(signing_key: RSAKey) -> None:
    old = RSAKey.generate_key(2048, parameters={"kid": "old", "alg": "RS256"})
    script = _ProviderScript(old, [old])
    clock = [1000.0]
    provider = _client(script, monotonic=lambda: clock[0])
    await provider.exchange(code="good-code", code_verifier="v" * 43, nonce=NONCE)
    # The provider rotates: it now signs with key-1 and publishes both.
    script.key, script.published = signing_key, [old, signing_key]
    clock[0] += 5
    with pytest.raises(AuthError):
        await provider.exchange(code="good-code", code_verifier="v" * 43, nonce=NONCE)  # fetched 5 s ago: no refetch
    clock[0] += 60
    await provider.exchange(code="good-code", code_verifier="v" * 43, nonce=NONCE)
    assert script.paths().count("/certs") == 2


# --- the routes on the fake store, with a scripted provider ----------------------------------------------------


@dataclass
class ScriptedProvider:
    """Hands out whatever identity the test set for a code; remembers what the service sent."""

    identities: dict[str, ProviderIdentity] = field(default_factory=dict)
    authorize: list[dict[str, str]] = field(default_factory=list)
    exchanges: list[dict[str, str]] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return ISSUER

    async def authorization_url(self, *, state: str, nonce: str, code_challenge: str) -> str:
        self.authorize.append({"state": state, "nonce": nonce, "code_challenge": code_challenge})
        return f"{ISSUER}/auth?{urlencode({'state': state})}"

    async def exchange(self, *, code: str, code_verifier: str, nonce: str) -> ProviderIdentity:
        self.exchanges.append({"code": code, "code_verifier": code_verifier, "nonce": nonce})
        return self.identities[code]


@dataclass
class App:
    http: httpx.AsyncClient
    store: FakeAuthStore
    provider: ScriptedProvider

    async def sign_in(self, identity: ProviderIdentity, **start: str) -> httpx.Response:
        """Start, let the provider vouch for ``identity``, and come back as a browser would."""
        started = await self.http.get("/api/auth/oidc/start", params={"return_to": "/rooms", **start})
        assert started.status_code == 302, started.text
        state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
        code = f"code-{uuid.uuid4()}"
        self.provider.identities[code] = identity
        return await self.http.get(
            "/api/auth/oidc/callback", params={"state": state, "code": code}, headers={"Accept": "text/html"}
        )


async def _app(tmp_path: Path, provider: ScriptedProvider | None, **settings: Any) -> AsyncIterator[App]:
    config = load_settings(AuthSettings, data_dir=tmp_path, migrate_on_start=False, **settings)
    store = FakeAuthStore()
    ctx = build_context(config, store=store, mailer=RecordingMailer(), clock=FakeClock(), hasher=FAST_HASHER)
    module = AuthModule(settings=config, context=ctx, oidc=provider)
    app = build_app([module], bus=InProcessBus(InProcessBroker()), registry=CollectorRegistry())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.7", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as http:
            yield App(http=http, store=store, provider=provider or ScriptedProvider())


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async for value in _app(tmp_path, ScriptedProvider(), oidc_issuer=ISSUER, oidc_client_id=CLIENT_ID):
        yield value


@pytest.fixture
async def unconfigured(tmp_path: Path) -> AsyncIterator[App]:
    async for value in _app(tmp_path, None):
        yield value


def _fragment(response: httpx.Response) -> tuple[str, dict[str, str]]:
    location = response.headers["location"]
    path, _, fragment = location.partition("#")
    return path, {key: values[0] for key, values in parse_qs(fragment).items()}


ADA = ProviderIdentity(ISSUER, "sub-ada", email="ada@example.com", email_verified=True, name="Ada Lovelace")


async def test_every_oidc_route_is_404_when_no_provider_is_configured(unconfigured: App) -> None:
    http = unconfigured.http
    for response in (
        await http.get("/api/auth/oidc/start"),
        await http.get("/api/auth/oidc/callback", params={"state": "s", "code": "c"}),
        await http.post("/api/auth/oidc/exchange", json={"one_time_code": "x" * 43, "code_verifier": "v" * 43}),
        await http.post("/api/auth/oidc/link", json={"link_token": "x" * 43, "password": "p"}),
    ):
        assert (response.status_code, response.json()["code"]) == (404, "oidc_disabled")


async def test_start_stores_a_verifier_whose_challenge_went_to_the_provider(app: App) -> None:
    response = await app.sign_in(ADA)
    assert response.status_code == 302
    sent, used = app.provider.authorize[0], app.provider.exchanges[0]
    assert pkce_challenge(used["code_verifier"]) == sent["code_challenge"]
    assert used["nonce"] == sent["nonce"]
    assert len(sent["state"]) >= 43
    assert sent["state"] != sent["nonce"]
    cookie = next(header for header in response.request.headers.get_list("cookie"))
    assert BROWSER_COOKIE in cookie


async def test_an_off_site_return_to_is_refused_before_anything_is_stored(app: App) -> None:
    response = await app.http.get("/api/auth/oidc/start", params={"return_to": "//evil.example"})
    assert (response.status_code, response.json()["code"]) == (422, "invalid_return_to")
    assert not app.store.state.oidc
    assert not app.provider.authorize


async def test_the_browser_binding_cookie_is_httponly_lax_and_scoped_to_the_oidc_routes(app: App) -> None:
    response = await app.http.get("/api/auth/oidc/start")
    header = response.headers["set-cookie"].lower()
    assert header.startswith(f"{BROWSER_COOKIE}=")
    for attribute in ("httponly", "samesite=lax", "path=/api/auth/oidc", "max-age=600"):
        assert attribute in header


async def test_a_taken_username_gets_a_number(app: App) -> None:
    await app.sign_in(ADA)
    await app.sign_in(ProviderIdentity(ISSUER, "sub-2", email="ada@elsewhere.example", email_verified=True))
    names = sorted(user.username for user in app.store.state.users.values())
    assert names == ["ada", "ada2"]


async def test_an_account_with_totp_still_needs_its_code(app: App) -> None:
    await app.sign_in(ADA)
    (user,) = app.store.state.users.values()
    app.store.state.users[user.id] = replace(user, totp_enabled_at=user.created_at, totp_secret_encrypted=b"x")
    response = await app.sign_in(ADA)
    path, values = _fragment(response)
    assert (path, set(values)) == ("/rooms", {"mfa_token"})
    assert "chat_refresh" not in response.headers.get("set-cookie", "")


async def test_a_disabled_account_is_refused(app: App) -> None:
    await app.sign_in(ADA)
    (user,) = app.store.state.users.values()
    app.store.state.users[user.id] = replace(user, disabled_at=user.created_at)
    assert _fragment(await app.sign_in(ADA)) == ("/rooms", {"oidc_error": "account_disabled"})


async def test_an_account_without_a_password_is_never_offered_a_link(app: App) -> None:
    await app.sign_in(ADA)
    other_google_account = replace(ADA, subject="sub-other")
    assert _fragment(await app.sign_in(other_google_account)) == ("/rooms", {"oidc_error": "oidc_account_conflict"})
    assert len(app.store.state.identities) == 1


async def test_cli_mode_needs_a_port_and_an_s256_challenge(app: App) -> None:
    response = await app.http.get("/api/auth/oidc/start", params={"mode": "cli", "port": "38123"})
    assert (response.status_code, response.json()["code"]) == (422, "invalid_cli_request")
    response = await app.http.get("/api/auth/oidc/start", params={"mode": "cli", "port": "80", "code_challenge": "c"})
    assert response.status_code == 422
