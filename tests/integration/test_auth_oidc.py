"""Provider sign-in end to end: a real OpenID provider (oidc-provider-mock on 127.0.0.1, configured by its issuer
URL exactly as Google is), the auth service on real PostgreSQL, and an httpx client playing the browser: it
follows each redirect by hand, submits the provider's consent form and keeps one cookie jar for both sites."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pyotp
import pytest
from asgi_lifespan import LifespanManager
from joserfc.jwk import KeySet
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from chat_auth.adapters.oidc import HttpOidcProvider, validate_id_token
from chat_auth.adapters.postgres import MIGRATIONS
from chat_auth.adapters.postgres.store import PostgresAuthStore
from chat_auth.bootstrap import AuthModule, build_context
from chat_auth.domain.errors import AuthError
from chat_auth.service.oidc import pkce_challenge
from chat_auth.settings import AuthSettings
from chat_auth.testing.fakes import FakeClock, RecordingMailer
from chat_auth.testing.harness import PASSWORD
from chat_contracts.envelope import Record, decode
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import UserRegistered
from chat_runtime import postgres
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.outbox import OUTBOX, decode_headers
from chat_runtime.settings import load_settings

# oidc-provider-mock 0.3 (test-only; 0.4 needs Python 3.12) calls an authlib API that authlib now deprecates; the
# warning is raised inside the mock's server thread while it issues an ID token.
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")

APP = "http://auth.test"
CLIENT_ID = "chat-web"
CLIENT_SECRET = "mock-client-secret"
REDIRECT_URI = f"{APP}/api/auth/oidc/callback"
CLI_VERIFIER = "cli-verifier-" + "x" * 40


@dataclass
class Browser:
    """One browser: a cookie jar shared by our app (in-process) and the provider (real HTTP on loopback)."""

    http: httpx.AsyncClient
    oidc_provider: str

    async def set_provider_user(self, sub: str, **claims: Any) -> None:
        response = await self.http.put(f"{self.oidc_provider}/users/{sub}", json=claims)
        assert response.status_code == 204, response.text

    async def start(self, **params: str) -> str:
        """GET /oidc/start; the provider's authorization URL it redirects to."""
        response = await self.http.get(f"{APP}/api/auth/oidc/start", params={"return_to": "/rooms", **params})
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(self.oidc_provider + "/oauth2/authorize?")
        return location

    async def consent(self, authorization_url: str, sub: str) -> str:
        """Submit the provider's form as ``sub``; the callback URL it redirects to."""
        page = await self.http.get(authorization_url)
        assert page.status_code == 200, page.text
        assert 'name="sub"' in page.text
        response = await self.http.post(authorization_url, data={"sub": sub})
        assert response.status_code == 302, response.text
        callback: str = response.headers["location"]
        assert callback.startswith(REDIRECT_URI + "?")
        return callback

    async def back(self, callback_url: str, *, html: bool = False) -> httpx.Response:
        headers = {"Accept": "text/html,application/xhtml+xml"} if html else {}
        return await self.http.get(callback_url, headers=headers)

    async def sign_in(self, sub: str, *, html: bool = False, **params: str) -> httpx.Response:
        return await self.back(await self.consent(await self.start(**params), sub), html=html)

    async def access_token(self) -> str:
        """What the web page does after the redirect: refresh with the cookie."""
        response = await self.http.post(f"{APP}/api/auth/token/refresh")
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def me(self, token: str) -> dict[str, Any]:
        response = await self.http.get(f"{APP}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@dataclass
class World:
    module: AuthModule
    app: Any
    oidc_provider: str
    clock: FakeClock
    browsers: list[httpx.AsyncClient]

    async def browser(self) -> Browser:
        transport = httpx.ASGITransport(app=self.app, client=("192.0.2.1", 1234))
        http = httpx.AsyncClient(mounts={APP: transport}, trust_env=False, timeout=10)
        self.browsers.append(http)
        return Browser(http=http, oidc_provider=self.oidc_provider)

    async def outbox(self) -> list[Any]:
        engine = self.module.engine
        assert engine is not None
        async with engine.connect() as connection:
            rows = (await connection.execute(select(OUTBOX).order_by(OUTBOX.c.position))).all()
        return [
            decode(
                Record(
                    topic=row.topic,
                    key=row.record_key.encode(),
                    value=row.record_value,
                    headers=decode_headers(row.headers),
                ),
                USERS_EVENTS,
            ).data
            for row in rows
        ]


@pytest.fixture
async def world(tmp_path: Path, pg_database: str, oidc_provider: str) -> AsyncIterator[World]:
    await asyncio.to_thread(postgres.upgrade, pg_database, MIGRATIONS)
    settings = load_settings(
        AuthSettings,
        data_dir=tmp_path,
        database_url=pg_database,
        migrate_on_start=False,
        oidc_issuer=oidc_provider,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_redirect_uri=REDIRECT_URI,
    )
    engine = postgres.async_engine(pg_database, pool_size=5)
    # Our clock starts at the real time: the provider's ID tokens carry real iat/exp.
    clock = FakeClock(datetime.now(UTC))
    ctx = build_context(settings, store=PostgresAuthStore(engine), mailer=RecordingMailer(), clock=clock)
    provider = HttpOidcProvider.from_settings(settings)
    module = AuthModule(settings=settings, context=ctx, engine=engine, oidc=provider)
    app = build_app([module], bus=InProcessBus(InProcessBroker()), registry=CollectorRegistry())
    async with LifespanManager(app) as manager:
        world = World(module=module, app=manager.app, oidc_provider=oidc_provider, clock=clock, browsers=[])
        try:
            yield world
        finally:
            for http in world.browsers:
                await http.aclose()


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def _fragment(response: httpx.Response) -> tuple[str, dict[str, str]]:
    path, _, fragment = response.headers["location"].partition("#")
    return path, {key: values[0] for key, values in parse_qs(fragment).items()}


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode(_query(url) | changes)))


def _problem(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return response.status_code, response.json()["code"]


def _sub() -> str:
    return f"google-{uuid.uuid4().hex[:12]}"


async def test_first_sign_in_creates_a_verified_account_and_signs_in(world: World) -> None:
    browser = await world.browser()
    sub = _sub()
    await browser.set_provider_user(sub, email="alice@example.com", email_verified=True, name="Alice Liddell")
    authorization_url = await browser.start()
    asked = _query(authorization_url)
    assert asked["response_type"] == "code"
    assert asked["scope"] == "openid email profile"
    assert asked["client_id"] == CLIENT_ID
    assert asked["redirect_uri"] == REDIRECT_URI
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["code_challenge"]) == 43
    assert len(asked["state"]) >= 43
    assert len(asked["nonce"]) >= 43

    response = await browser.back(await browser.consent(authorization_url, sub))

    assert response.status_code == 302
    assert response.headers["location"] == "/rooms", "no token in the URL"
    assert "chat_refresh=" in response.headers["set-cookie"]
    me = await browser.me(await browser.access_token())
    assert me["email"] == "alice@example.com"
    assert me["email_verified"] is True
    assert me["username"] == "alice"
    assert me["display_name"] == "Alice Liddell"
    assert me["has_password"] is False
    (registered,) = await world.outbox()
    assert isinstance(registered, UserRegistered)
    assert (registered.user_id, registered.email_verified) == (uuid.UUID(me["id"]), True)
    async with world.module.context.store.transaction() as tx:
        (identity,) = await tx.identities_of(uuid.UUID(me["id"]))
    assert (identity.issuer, identity.subject) == (world.oidc_provider, sub)


async def test_the_second_sign_in_with_the_same_subject_reaches_the_same_account(world: World) -> None:
    sub = _sub()
    first = await world.browser()
    await first.set_provider_user(sub, email="bea@example.com", email_verified=True)
    await first.sign_in(sub)
    account = (await first.me(await first.access_token()))["id"]
    # Later, on another device, with the address changed at the provider: the subject decides, not the email.
    await first.set_provider_user(sub, email="bea.new@example.com", email_verified=True)
    second = await world.browser()
    response = await second.sign_in(sub)
    assert response.headers["location"] == "/rooms"
    assert (await second.me(await second.access_token()))["id"] == account
    assert len(await world.outbox()) == 1, "no second account"


async def test_a_state_used_twice_is_refused(world: World) -> None:
    browser = await world.browser()
    sub = _sub()
    await browser.set_provider_user(sub, email="cy@example.com", email_verified=True)
    callback = await browser.consent(await browser.start(), sub)
    assert (await browser.back(callback)).status_code == 302
    assert _problem(await browser.back(callback)) == (400, "oidc_state_invalid")


async def test_a_callback_without_the_browser_cookie_is_refused(world: World) -> None:
    victim, attacker = await world.browser(), await world.browser()
    sub = _sub()
    await attacker.set_provider_user(sub, email="mallory@example.com", email_verified=True)
    # Login CSRF: the attacker completes the provider step and hands the callback URL to another browser.
    callback = await attacker.consent(await attacker.start(), sub)
    response = await victim.back(callback)
    assert _problem(response) == (400, "oidc_state_invalid")
    assert "chat_refresh" not in response.headers.get("set-cookie", "")
    assert await world.outbox() == []


async def test_an_expired_state_is_refused(world: World) -> None:
    browser = await world.browser()
    sub = _sub()
    await browser.set_provider_user(sub, email="dee@example.com", email_verified=True)
    callback = await browser.consent(await browser.start(), sub)
    world.clock.advance(minutes=11)
    assert _problem(await browser.back(callback)) == (400, "oidc_state_invalid")


async def test_an_id_token_with_another_attempts_nonce_is_refused(world: World) -> None:
    browser = await world.browser()
    sub = _sub()
    await browser.set_provider_user(sub, email="eve@example.com", email_verified=True)
    # The request reaching the provider carries a nonce we never issued: the ID token names it, and is refused.
    tampered = _with_query(await browser.start(), nonce="nonce-of-another-attempt-0123456789abcdefghij")
    response = await browser.back(await browser.consent(tampered, sub))
    assert _problem(response) == (400, "oidc_token_invalid")
    assert await world.outbox() == []


async def test_a_code_issued_to_another_client_is_refused(world: World) -> None:
    browser = await world.browser()
    sub = _sub()
    await browser.set_provider_user(sub, email="fay@example.com", email_verified=True)
    tampered = _with_query(await browser.start(), client_id="another-client")
    response = await browser.back(await browser.consent(tampered, sub))
    assert _problem(response) == (400, "oidc_token_invalid")


async def test_a_genuine_id_token_for_another_audience_is_refused(world: World, oidc_provider: str) -> None:
    """A correctly signed token the provider issued to another client (another site's login) is not ours."""
    browser = await world.browser()
    sub = _sub()
    await browser.set_provider_user(sub, email="gil@example.com", email_verified=True)
    nonce = "n" * 43
    other_site = HttpOidcProvider(
        issuer=oidc_provider, client_id="another-site", client_secret="x", redirect_uri="http://other.test/cb"
    )
    authorization_url = await other_site.authorization_url(state="s" * 43, nonce=nonce, code_challenge="c" * 43)
    consent = await browser.http.post(authorization_url, data={"sub": sub})
    code = _query(consent.headers["location"])["code"]
    tokens = await browser.http.post(
        f"{oidc_provider}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": "http://other.test/cb"},
        auth=("another-site", "x"),
    )
    id_token = tokens.json()["id_token"]
    keys = KeySet.import_key_set((await browser.http.get(f"{oidc_provider}/jwks")).json())
    as_issued = validate_id_token(
        id_token,
        keys=keys,
        issuer=oidc_provider,
        client_id="another-site",
        nonce=nonce,
        now=datetime.now(UTC).timestamp(),
    )
    assert as_issued.subject == sub, "the token is genuine for the site it was issued to"
    with pytest.raises(AuthError) as caught:
        validate_id_token(
            id_token,
            keys=keys,
            issuer=oidc_provider,
            client_id=CLIENT_ID,
            nonce=nonce,
            now=datetime.now(UTC).timestamp(),
        )
    assert caught.value.code == "oidc_token_invalid"


async def test_an_existing_password_account_is_not_linked_until_the_password_is_proven(world: World) -> None:
    browser = await world.browser()
    registered = await browser.http.post(
        f"{APP}/api/auth/register", json={"email": "Hal@Example.com", "username": "hal", "password": PASSWORD}
    )
    assert registered.status_code == 202
    sub = _sub()
    await browser.set_provider_user(sub, email="hal@example.com", email_verified=True, name="Hal")

    response = await browser.sign_in(sub)

    path, values = _fragment(response)
    assert (path, set(values)) == ("/rooms", {"link_required"})
    assert "chat_refresh" not in response.headers.get("set-cookie", ""), "not signed in by email alone"
    async with world.module.context.store.transaction() as tx:
        hal = await tx.user_by_username("hal")
        assert hal is not None
        assert list(await tx.identities_of(hal.id)) == []
    link_token = values["link_required"]
    wrong = await browser.http.post(
        f"{APP}/api/auth/oidc/link", json={"link_token": link_token, "password": "not the password at all"}
    )
    assert _problem(wrong) == (401, "invalid_credentials")
    linked = await browser.http.post(f"{APP}/api/auth/oidc/link", json={"link_token": link_token, "password": PASSWORD})
    assert linked.status_code == 200, linked.text
    assert linked.json()["user_id"] == str(hal.id)
    me = await browser.me(linked.json()["access_token"])
    assert me["email_verified"] is True, "the provider confirmed the address the password proved"
    again = await browser.http.post(f"{APP}/api/auth/oidc/link", json={"link_token": link_token, "password": PASSWORD})
    assert _problem(again) == (400, "oidc_link_invalid")
    # From now on the provider alone signs in to that account.
    other_device = await world.browser()
    assert (await other_device.sign_in(sub)).headers["location"] == "/rooms"
    assert (await other_device.me(await other_device.access_token()))["id"] == str(hal.id)


async def test_an_account_with_two_factor_still_needs_its_code_after_the_provider(world: World) -> None:
    browser = await world.browser()
    sub = _sub()
    await browser.set_provider_user(sub, email="max@example.com", email_verified=True)
    await browser.sign_in(sub)
    bearer = {"Authorization": f"Bearer {await browser.access_token()}"}
    setup = await browser.http.post(f"{APP}/api/auth/totp/setup", headers=bearer)
    assert setup.status_code == 200, setup.text
    authenticator = pyotp.TOTP(setup.json()["secret"])
    confirmed = await browser.http.post(
        f"{APP}/api/auth/totp/confirm", headers=bearer, json={"code": authenticator.at(world.clock.now)}
    )
    assert confirmed.status_code == 200, confirmed.text
    world.clock.advance(seconds=30)

    response = await browser.sign_in(sub)

    path, values = _fragment(response)
    assert (path, set(values)) == ("/rooms", {"mfa_token"})
    assert "chat_refresh" not in response.headers.get("set-cookie", "")
    finished = await browser.http.post(
        f"{APP}/api/auth/login/totp", json={"mfa_token": values["mfa_token"], "code": authenticator.at(world.clock.now)}
    )
    assert finished.status_code == 200, finished.text
    assert (await browser.me(finished.json()["access_token"]))["email"] == "max@example.com"


async def test_an_unverified_provider_email_is_refused(world: World) -> None:
    browser = await world.browser()
    sub = _sub()
    await browser.set_provider_user(sub, email="ivy@example.com", email_verified=False)
    assert _problem(await browser.sign_in(sub)) == (400, "oidc_email_unverified")
    # A browser navigation comes back to the page, with the reason in the fragment.
    assert _fragment(await browser.sign_in(sub, html=True)) == ("/rooms", {"oidc_error": "oidc_email_unverified"})
    bare = _sub()
    await browser.set_provider_user(bare, email="jo@example.com")  # no email_verified claim at all
    assert _problem(await browser.sign_in(bare)) == (400, "oidc_email_unverified")
    assert await world.outbox() == []


async def test_cancelling_at_the_provider_returns_to_the_page_with_the_reason(world: World) -> None:
    browser = await world.browser()
    authorization_url = await browser.start(return_to="/settings")
    # Google's error redirect carries the state: back to return_to.
    state = _query(authorization_url)["state"]
    cancelled = f"{REDIRECT_URI}?{urlencode({'error': 'access_denied', 'state': state})}"
    response = await browser.back(cancelled, html=True)
    assert _fragment(response) == ("/settings", {"oidc_error": "oidc_access_denied"})
    assert _problem(await browser.back(cancelled)) == (400, "oidc_state_invalid"), "the state was spent"
    # The mock's "Deny" button drops the state: back to the site's root, never to a place the request names.
    await browser.http.get(authorization_url)
    denied = await browser.http.post(authorization_url, data={"action": "deny"})
    assert _query(denied.headers["location"]).get("error") == "access_denied"
    assert _fragment(await browser.back(denied.headers["location"], html=True)) == (
        "/",
        {"oidc_error": "oidc_access_denied"},
    )


async def test_the_cli_exchange_code_works_once(world: World) -> None:
    browser = await world.browser()
    sub = _sub()
    await browser.set_provider_user(sub, email="kim@example.com", email_verified=True)
    response = await browser.sign_in(sub, mode="cli", port="38123", code_challenge=pkce_challenge(CLI_VERIFIER))
    location = response.headers["location"]
    assert location.startswith("http://127.0.0.1:38123/callback?")
    assert "chat_refresh" not in response.headers.get("set-cookie", ""), "the browser is not signed in"
    code = _query(location)["one_time_code"]
    cli = await world.browser()  # the CLI's own HTTP client: no cookies

    exchanged = await cli.http.post(
        f"{APP}/api/auth/oidc/exchange", json={"one_time_code": code, "code_verifier": CLI_VERIFIER}
    )

    assert exchanged.status_code == 200, exchanged.text
    assert (await cli.me(exchanged.json()["access_token"]))["email"] == "kim@example.com"
    again = await cli.http.post(
        f"{APP}/api/auth/oidc/exchange", json={"one_time_code": code, "code_verifier": CLI_VERIFIER}
    )
    assert _problem(again) == (400, "oidc_code_invalid")


async def test_a_cli_code_needs_the_clis_verifier_and_lasts_a_minute(world: World) -> None:
    browser = await world.browser()
    sub = _sub()
    await browser.set_provider_user(sub, email="lee@example.com", email_verified=True)
    challenge = pkce_challenge(CLI_VERIFIER)
    stolen = _query(
        (await browser.sign_in(sub, mode="cli", port="38123", code_challenge=challenge)).headers["location"]
    )
    wrong_verifier = await browser.http.post(
        f"{APP}/api/auth/oidc/exchange",
        json={"one_time_code": stolen["one_time_code"], "code_verifier": "another-verifier-" + "y" * 40},
    )
    assert _problem(wrong_verifier) == (400, "oidc_code_invalid")
    late = _query((await browser.sign_in(sub, mode="cli", port="38123", code_challenge=challenge)).headers["location"])
    world.clock.advance(seconds=61)
    expired = await browser.http.post(
        f"{APP}/api/auth/oidc/exchange", json={"one_time_code": late["one_time_code"], "code_verifier": CLI_VERIFIER}
    )
    assert _problem(expired) == (400, "oidc_code_invalid")
