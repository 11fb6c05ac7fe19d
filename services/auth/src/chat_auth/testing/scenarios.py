"""The auth service's behaviour through its HTTP API. Runs on the in-memory fake store (unit tests) and on
PostgreSQL with real SMTP (integration tests): subclasses provide the ``auth`` fixture (an AuthHarness).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chat_auth.service import accounts
from chat_auth.testing.harness import PASSWORD, AuthHarness
from chat_contracts.envelope import decode, encode
from chat_contracts.topics import USERS_EVENTS
from chat_contracts.users import UserDeleted, UserRegistered, UserSessionsRevoked, UserUpdated
from chat_runtime.tokens import StaticJwksSource, TokenVerifier

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _without_instance(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "instance"}


def _unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


class AuthScenarios:
    """Every scenario starts from an empty service."""

    # --- registration and verification -------------------------------------------------------------------

    async def test_a_new_account_verifies_its_email_and_signs_in(self, auth: AuthHarness) -> None:
        response = await auth.register("ada@example.com", "ada")
        assert response.status_code == 202
        code = await auth.last_code("ada@example.com")
        verified = await auth.http.post("/api/auth/email/verify", json={"email": "ADA@example.com", "code": code})
        assert verified.status_code == 200
        tokens = await auth.login("ada")
        me = await auth.http.get("/api/auth/me", headers=auth.bearer(tokens["access_token"]))
        assert me.status_code == 200
        assert me.json()["email_verified"] is True
        assert me.json()["username"] == "ada"

    async def test_an_unverified_account_can_sign_in_and_its_token_says_so(self, auth: AuthHarness) -> None:
        await auth.register("bob@example.com", "bob")
        tokens = await auth.login("bob@example.com")
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        assert claims["email_verified"] is False

    async def test_registering_a_taken_email_answers_exactly_like_a_new_one(self, auth: AuthHarness) -> None:
        first = await auth.register("eve@example.com", "eve")
        again = await auth.register("EVE@example.com", "eve2")
        assert (again.status_code, again.json()) == (first.status_code, first.json())
        notices = await auth.mail("eve@example.com")
        assert "already has one" in notices[-1].text
        taken = await auth.http.post("/api/auth/login", json={"identifier": "eve2", "password": PASSWORD})
        assert taken.status_code == 401

    async def test_a_taken_username_is_a_conflict(self, auth: AuthHarness) -> None:
        await auth.register("one@example.com", "Same")
        response = await auth.register("two@example.com", "same")
        assert response.status_code == 409
        assert response.json()["code"] == "username_taken"

    async def test_weak_and_malformed_input_is_refused_with_a_clear_code(self, auth: AuthHarness) -> None:
        cases = [
            ({"password": "short"}, "password_too_short"),
            ({"password": "x" * 129}, "password_too_long"),
            ({"password": "password123"}, "password_too_common"),
            ({"password": "Password2024"}, "password_too_common"),
            ({"username": "room"}, "username_reserved"),
            ({"username": "a b"}, "invalid_username"),
            ({"email": "not-an-email"}, "invalid_email"),
        ]
        for override, code in cases:
            body = {"email": "w@example.com", "username": "weak", "password": PASSWORD, **override}
            response = await auth.http.post("/api/auth/register", json=body)
            assert response.status_code == 422, (override, response.text)
            assert response.json()["code"] == code, override
            assert response.headers["content-type"] == "application/problem+json"

    async def test_unknown_fields_are_rejected(self, auth: AuthHarness) -> None:
        body = {"email": "u@example.com", "username": "u1", "password": PASSWORD, "is_admin": True}
        response = await auth.http.post("/api/auth/register", json=body)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_failed"

    async def test_a_verification_code_works_once(self, auth: AuthHarness) -> None:
        await auth.register("once@example.com", "once")
        code = await auth.last_code("once@example.com")
        body = {"email": "once@example.com", "code": code}
        assert (await auth.http.post("/api/auth/email/verify", json=body)).status_code == 200
        again = await auth.http.post("/api/auth/email/verify", json=body)
        assert again.status_code == 400
        assert again.json()["code"] == "invalid_code"

    async def test_a_verification_code_expires_after_ten_minutes(self, auth: AuthHarness) -> None:
        await auth.register("late@example.com", "late")
        code = await auth.last_code("late@example.com")
        auth.clock.advance(minutes=10, seconds=1)
        response = await auth.http.post("/api/auth/email/verify", json={"email": "late@example.com", "code": code})
        assert response.json()["code"] == "invalid_code"

    async def test_wrong_codes_burn_the_code_after_five_attempts(self, auth: AuthHarness) -> None:
        await auth.register("guess@example.com", "guess")
        code = await auth.last_code("guess@example.com")
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(5):
            response = await auth.http.post(
                "/api/auth/email/verify", json={"email": "guess@example.com", "code": wrong}
            )
            assert response.json()["code"] in {"invalid_code", "rate_limited"}
        right = await auth.http.post("/api/auth/email/verify", json={"email": "guess@example.com", "code": code})
        assert right.status_code in {400, 429}

    async def test_code_checks_are_rate_limited_per_account(self, auth: AuthHarness) -> None:
        await auth.register("rl@example.com", "rlimit")
        statuses = []
        for i in range(7):
            response = await auth.http.post(
                "/api/auth/email/verify", json={"email": "rl@example.com", "code": f"{i:06d}"}
            )
            statuses.append(response.status_code)
        assert statuses[-1] == 429
        assert (
            await auth.http.post("/api/auth/email/verify", json={"email": "rl@example.com", "code": "000000"})
        ).json()["retry_after"] > 0

    async def test_resending_codes_is_limited_to_three_per_window(self, auth: AuthHarness) -> None:
        await auth.register("resend@example.com", "resend")
        statuses = [
            (await auth.http.post("/api/auth/email/resend", json={"email": "resend@example.com"})).status_code
            for _ in range(4)
        ]
        assert statuses == [202, 202, 202, 429]
        auth.clock.advance(minutes=15)
        again = await auth.http.post("/api/auth/email/resend", json={"email": "resend@example.com"})
        assert again.status_code == 202

    async def test_an_oversized_body_is_refused_before_it_is_read(self, auth: AuthHarness) -> None:
        body = {"email": "big@example.com", "username": "big", "password": "p" * 100, "display_name": "x" * 70_000}
        response = await auth.http.post("/api/auth/register", json=body)
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"

    async def test_every_operation_is_documented_with_a_summary_and_its_problems(self, auth: AuthHarness) -> None:
        spec = (await auth.http.get("/openapi.json")).json()
        operations = [
            (path, method, op)
            for path, item in spec["paths"].items()
            if path.startswith("/api/auth/") and path != "/api/auth/"
            for method, op in item.items()
        ]
        assert len(operations) >= 20
        for path, method, op in operations:
            assert op.get("summary"), (method, path)
            problems = [code for code in op["responses"] if code.startswith(("4", "5")) and code != "422"]
            if path != "/api/auth/.well-known/jwks.json":
                assert problems or "422" in op["responses"], (method, path)
        assert "Problem" in spec["components"]["schemas"]

    # --- signing in --------------------------------------------------------------------------------------

    async def test_a_wrong_password_and_an_unknown_account_answer_alike(self, auth: AuthHarness) -> None:
        await auth.register("known@example.com", "known")
        wrong = await auth.http.post(
            "/api/auth/login", json={"identifier": "known@example.com", "password": "nope-nope"}
        )
        unknown = await auth.http.post(
            "/api/auth/login", json={"identifier": "ghost@example.com", "password": "nope-nope"}
        )
        assert wrong.status_code == unknown.status_code == 401
        assert _without_instance(wrong.json()) == _without_instance(unknown.json())

    async def test_failed_logins_earn_growing_delays_that_expire(self, auth: AuthHarness) -> None:
        await auth.register("slow@example.com", "slow")
        attacker = auth.from_ip("203.0.113.9")
        for _ in range(5):
            response = await auth.http.post(
                "/api/auth/login", json={"identifier": "slow", "password": "wrong-pass"}, headers=attacker
            )
            assert response.status_code == 401
        blocked = await auth.http.post(
            "/api/auth/login", json={"identifier": "slow", "password": PASSWORD}, headers=attacker
        )
        assert blocked.status_code == 429
        assert blocked.json()["code"] == "login_throttled"
        assert blocked.json()["retry_after"] >= 1
        owner = await auth.http.post(
            "/api/auth/login",
            json={"identifier": "slow", "password": PASSWORD},
            headers=auth.from_ip("198.51.100.7"),
        )
        assert owner.status_code == 200, "failures from one address must not lock the owner out elsewhere"
        auth.clock.advance(seconds=2)
        later = await auth.http.post(
            "/api/auth/login", json={"identifier": "slow", "password": PASSWORD}, headers=attacker
        )
        assert later.status_code == 200

    async def test_every_login_opens_a_new_session(self, auth: AuthHarness) -> None:
        first = await auth.signed_up("s@example.com", "sess")
        second = await auth.login("sess")
        assert first["session_id"] != second["session_id"]

    # --- refresh tokens ----------------------------------------------------------------------------------

    async def test_refreshing_rotates_the_refresh_token(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("r@example.com", "rot")
        response = await auth.http.post("/api/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert response.status_code == 200
        fresh = response.json()
        assert fresh["refresh_token"] != tokens["refresh_token"]
        assert fresh["session_id"] == tokens["session_id"]
        me = await auth.http.get("/api/auth/me", headers=auth.bearer(fresh["access_token"]))
        assert me.status_code == 200

    async def test_reusing_a_spent_refresh_token_ends_the_whole_session(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("reuse@example.com", "reuse")
        first = await auth.http.post("/api/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]})
        replay = await auth.http.post("/api/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert replay.status_code == 401
        assert replay.json()["code"] == "refresh_token_reused"
        successor = await auth.http.post(
            "/api/auth/token/refresh", json={"refresh_token": first.json()["refresh_token"]}
        )
        assert successor.status_code == 401
        me = await auth.http.get("/api/auth/me", headers=auth.bearer(first.json()["access_token"]))
        assert me.status_code == 401
        revoked = [e.data for e in await auth.events() if isinstance(e.data, UserSessionsRevoked)]
        assert revoked[-1].reason == "refresh_reuse"
        assert revoked[-1].session_ids == (uuid.UUID(tokens["session_id"]),)

    async def test_the_web_client_refreshes_with_an_http_only_cookie(self, auth: AuthHarness) -> None:
        await auth.signed_up("web@example.com", "web")
        response = await auth.http.post("/api/auth/login", json={"identifier": "web", "password": PASSWORD})
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
        assert "Path=/api/auth" in cookie
        refreshed = await auth.http.post("/api/auth/token/refresh")
        assert refreshed.status_code == 200, refreshed.text

    # --- sessions ----------------------------------------------------------------------------------------

    async def test_logging_out_ends_the_session_for_its_access_and_refresh_tokens(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("out@example.com", "out")
        assert (
            await auth.http.post("/api/auth/logout", headers=auth.bearer(tokens["access_token"]))
        ).status_code == 204
        me = await auth.http.get("/api/auth/me", headers=auth.bearer(tokens["access_token"]))
        assert me.status_code == 401
        assert me.json()["code"] == "session_revoked"
        refresh = await auth.http.post("/api/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refresh.status_code == 401

    async def test_sessions_can_be_listed_and_ended_one_by_one_or_all_but_this_one(self, auth: AuthHarness) -> None:
        phone = await auth.signed_up("many@example.com", "many")
        laptop = await auth.login("many")
        tablet = await auth.login("many")
        listed = await auth.http.get("/api/auth/sessions", headers=auth.bearer(laptop["access_token"]))
        assert {s["id"] for s in listed.json()} == {
            phone["session_id"],
            laptop["session_id"],
            tablet["session_id"],
        }
        assert [s["current"] for s in listed.json() if s["id"] == laptop["session_id"]] == [True]
        ended = await auth.http.delete(
            f"/api/auth/sessions/{phone['session_id']}", headers=auth.bearer(laptop["access_token"])
        )
        assert ended.status_code == 204
        others = await auth.http.post("/api/auth/sessions/end-others", headers=auth.bearer(laptop["access_token"]))
        assert others.json() == {"sessions_ended": 1}
        assert (await auth.http.get("/api/auth/me", headers=auth.bearer(tablet["access_token"]))).status_code == 401
        assert (await auth.http.get("/api/auth/me", headers=auth.bearer(laptop["access_token"]))).status_code == 200

    async def test_someone_elses_session_cannot_be_ended(self, auth: AuthHarness) -> None:
        alice = await auth.signed_up("alice@example.com", "alice")
        bob = await auth.signed_up("bob2@example.com", "bob2")
        response = await auth.http.delete(
            f"/api/auth/sessions/{alice['session_id']}", headers=auth.bearer(bob["access_token"])
        )
        assert response.status_code == 404

    async def test_logout_all_ends_every_session_and_tells_the_gateways(self, auth: AuthHarness) -> None:
        one = await auth.signed_up("all@example.com", "everywhere")
        two = await auth.login("everywhere")
        assert (
            await auth.http.post("/api/auth/logout-all", headers=auth.bearer(two["access_token"]))
        ).status_code == 204
        for tokens in (one, two):
            assert (await auth.http.get("/api/auth/me", headers=auth.bearer(tokens["access_token"]))).status_code == 401
        revoked = [e.data for e in await auth.events() if isinstance(e.data, UserSessionsRevoked)]
        assert revoked[-1].reason == "logout_all"
        assert set(revoked[-1].session_ids or ()) == {
            uuid.UUID(one["session_id"]),
            uuid.UUID(two["session_id"]),
        }

    async def test_disabling_an_account_ends_every_session_and_refuses_sign_in_until_enabled(
        self, auth: AuthHarness
    ) -> None:
        one = await auth.signed_up("off@example.com", "switchedoff")
        two = await auth.login("switchedoff")

        disabled = await accounts.set_disabled(auth.context, identifier="OFF@example.com", disabled=True)

        assert disabled is not None
        assert disabled.disabled_at is not None
        for tokens in (one, two):
            me = await auth.http.get("/api/auth/me", headers=auth.bearer(tokens["access_token"]))
            assert (me.status_code, me.json()["code"]) == (401, "session_revoked")
        revoked = [e.data for e in await auth.events() if isinstance(e.data, UserSessionsRevoked)]
        assert revoked[-1].reason == "account_disabled"
        assert set(revoked[-1].session_ids or ()) == {uuid.UUID(one["session_id"]), uuid.UUID(two["session_id"])}
        refused = await auth.http.post("/api/auth/login", json={"identifier": "switchedoff", "password": PASSWORD})
        assert (refused.status_code, refused.json()["code"]) == (403, "account_disabled")

        assert await accounts.set_disabled(auth.context, identifier="switchedoff", disabled=False) is not None
        assert (await auth.login("switchedoff"))["access_token"]
        assert await accounts.set_disabled(auth.context, identifier="nobody", disabled=True) is None

    # --- passwords ---------------------------------------------------------------------------------------

    async def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(self, auth: AuthHarness) -> None:
        here = await auth.signed_up("pw@example.com", "pwchange")
        there = await auth.login("pwchange")
        new_password = "a completely new passphrase"
        wrong = await auth.http.post(
            "/api/auth/password/change",
            json={"current_password": "wrong-wrong", "new_password": new_password},
            headers=auth.bearer(here["access_token"]),
        )
        assert wrong.status_code == 401
        changed = await auth.http.post(
            "/api/auth/password/change",
            json={"current_password": PASSWORD, "new_password": new_password},
            headers=auth.bearer(here["access_token"]),
        )
        assert changed.json() == {"sessions_ended": 1}
        assert (await auth.http.get("/api/auth/me", headers=auth.bearer(there["access_token"]))).status_code == 401
        assert (await auth.http.get("/api/auth/me", headers=auth.bearer(here["access_token"]))).status_code == 200
        old = await auth.http.post("/api/auth/login", json={"identifier": "pwchange", "password": PASSWORD})
        assert old.status_code == 401
        await auth.login("pwchange", new_password)

    async def test_forgot_password_answers_alike_for_known_and_unknown_addresses(self, auth: AuthHarness) -> None:
        await auth.register("has@example.com", "has")
        known = await auth.http.post("/api/auth/password/forgot", json={"email": "has@example.com"})
        unknown = await auth.http.post("/api/auth/password/forgot", json={"email": "nobody@example.com"})
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json()) == (202, known.json())
        assert await auth.mail("nobody@example.com") == []

    async def test_a_password_reset_signs_out_everywhere_and_does_not_sign_in(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("lost@example.com", "lost")
        await auth.http.post("/api/auth/password/forgot", json={"email": "lost@example.com"})
        code = await auth.last_code("lost@example.com")
        verified = await auth.http.post(
            "/api/auth/password/reset/verify", json={"email": "lost@example.com", "code": code}
        )
        assert verified.status_code == 200
        reset_token = verified.json()["reset_token"]
        new_password = "found it again at last"
        reset = await auth.http.post(
            "/api/auth/password/reset", json={"reset_token": reset_token, "new_password": new_password}
        )
        assert reset.status_code == 204
        assert "set-cookie" not in reset.headers
        assert (await auth.http.get("/api/auth/me", headers=auth.bearer(tokens["access_token"]))).status_code == 401
        again = await auth.http.post(
            "/api/auth/password/reset",
            json={"reset_token": reset_token, "new_password": "another one entirely"},
        )
        assert again.status_code == 401
        await auth.login("lost", new_password)
        revoked = [e.data for e in await auth.events() if isinstance(e.data, UserSessionsRevoked)]
        assert revoked[-1].reason == "password_reset"

    # --- profile -----------------------------------------------------------------------------------------

    async def test_profile_changes_are_saved_and_announced(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("prof@example.com", "prof")
        response = await auth.http.patch(
            "/api/auth/me",
            json={"display_name": "Prof. X", "username": "professor"},
            headers=auth.bearer(tokens["access_token"]),
        )
        assert response.status_code == 200
        assert response.json()["username"] == "professor"
        updates = [e.data for e in await auth.events() if isinstance(e.data, UserUpdated)]
        assert updates[-1].display_name == "Prof. X"
        assert updates[-1].username == "professor"

    async def test_an_avatar_is_sniffed_and_served_safely(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("pic@example.com", "pic")
        headers = auth.bearer(tokens["access_token"])
        uploaded = await auth.http.put(
            "/api/auth/me/avatar", content=PNG, headers={**headers, "Content-Type": "text/html"}
        )
        assert uploaded.status_code == 200, uploaded.text
        url = uploaded.json()["avatar_url"]
        image = await auth.http.get(url)
        assert image.content == PNG
        assert image.headers["content-type"] == "image/png"
        assert image.headers["x-content-type-options"] == "nosniff"
        svg = await auth.http.put("/api/auth/me/avatar", content=b"<svg onload=alert(1)>", headers=headers)
        assert svg.status_code == 415
        huge = await auth.http.put("/api/auth/me/avatar", content=PNG + b"\x00" * (3 * 1024 * 1024), headers=headers)
        assert huge.status_code == 413

    async def test_deleting_the_account_needs_the_password_and_ends_everything(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("bye@example.com", "bye")
        headers = auth.bearer(tokens["access_token"])
        assert (
            await auth.http.post("/api/auth/me/delete", json={"password": "wrong-one"}, headers=headers)
        ).status_code == 401
        assert (
            await auth.http.post("/api/auth/me/delete", json={"password": PASSWORD}, headers=headers)
        ).status_code == 204
        assert (await auth.http.get("/api/auth/me", headers=headers)).status_code == 401
        assert (
            await auth.http.post("/api/auth/login", json={"identifier": "bye", "password": PASSWORD})
        ).status_code == 401
        assert any(isinstance(e.data, UserDeleted) for e in await auth.events())

    # --- events ------------------------------------------------------------------------------------------

    async def test_every_emitted_event_matches_its_contract(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("ev@example.com", "events")
        await auth.http.patch("/api/auth/me", json={"display_name": "E"}, headers=auth.bearer(tokens["access_token"]))
        await auth.http.post("/api/auth/logout", headers=auth.bearer(tokens["access_token"]))
        emitted = await auth.events()
        assert {type(e.data) for e in emitted} >= {UserRegistered, UserUpdated, UserSessionsRevoked}
        for envelope in emitted:
            assert envelope.source == "auth"
            assert decode(encode(envelope, topic=USERS_EVENTS.name), USERS_EVENTS) == envelope

    # --- tokens ------------------------------------------------------------------------------------------

    async def test_access_tokens_verify_against_the_published_keys(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("jwks@example.com", "jwks")
        document = (await auth.http.get("/api/auth/.well-known/jwks.json")).json()
        verifier = TokenVerifier(
            jwks=StaticJwksSource(document),
            issuer=auth.settings.issuer,
            audience=auth.settings.audience,
            clock=lambda: auth.clock().timestamp(),
        )
        verified = await verifier.verify(tokens["access_token"])
        assert str(verified.sub) == tokens["user_id"]
        assert str(verified.sid) == tokens["session_id"]
        assert verified.username == "jwks"
        assert document["keys"][0]["alg"] == "EdDSA"
        assert "d" not in document["keys"][0]

    async def test_the_attack_suite_is_refused_without_a_server_error(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("target@example.com", "target")
        access = tokens["access_token"]
        claims = jwt.decode(access, options={"verify_signature": False})
        header = jwt.get_unverified_header(access)
        jwk = (await auth.http.get("/api/auth/.well-known/jwks.json")).json()["keys"][0]
        public_bytes = base64.urlsafe_b64decode(jwk["x"] + "==")
        head, body, signature = access.split(".")
        tampered_claims = {**claims, "sub": str(uuid.uuid4())}
        attacks: dict[str, str] = {
            "alg none": _unsigned(claims, {"alg": "none", "typ": "JWT", "kid": header["kid"]}),
            "HS256 with the public key": jwt.encode(
                claims, public_bytes, algorithm="HS256", headers={"kid": header["kid"]}
            ),
            "unknown kid": jwt.encode(
                claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "unknown"}
            ),
            "tampered payload": f"{head}.{_b64(json.dumps(tampered_claims).encode())}.{signature}",
            "tampered signature": f"{head}.{body}.{signature[:-4]}AAAA",
            "empty signature": f"{head}.{body}.",
            "garbage": "not.a.token",
            "wrong issuer": await auth.forge({**claims, "iss": "https://evil.example"}),
            "wrong audience": await auth.forge({**claims, "aud": "someone-else"}),
            "expired": await auth.forge(
                {
                    **claims,
                    "exp": claims["iat"] - 3600,
                    "nbf": claims["iat"] - 7200,
                    "iat": claims["iat"] - 7200,
                }
            ),
            "not yet valid": await auth.forge({**claims, "nbf": claims["iat"] + 3600}),
            "mfa token as access": await auth.forge({**claims, "typ": "mfa"}),
            "reset token as access": await auth.forge({**claims, "typ": "reset"}),
            "refresh token as access": tokens["refresh_token"],
            "missing sid": await auth.forge({k: v for k, v in claims.items() if k != "sid"}),
            "unknown session": await auth.forge({**claims, "sid": str(uuid.uuid4())}),
        }
        await auth.http.post("/api/auth/password/forgot", json={"email": "target@example.com"})
        code = await auth.last_code("target@example.com")
        reset = await auth.http.post(
            "/api/auth/password/reset/verify", json={"email": "target@example.com", "code": code}
        )
        attacks["real reset token as access"] = reset.json()["reset_token"]
        for name, token in attacks.items():
            response = await auth.http.get("/api/auth/me", headers=auth.bearer(token))
            assert response.status_code == 401, (name, response.status_code, response.text)
            assert response.json()["code"].startswith(("token_", "session_")), (name, response.json())
        assert len(attacks) >= 15
        await auth.http.post(
            "/api/auth/password/reset",
            json={"reset_token": reset.json()["reset_token"], "new_password": "after the reset 1"},
        )
        after_reset = await auth.http.get("/api/auth/me", headers=auth.bearer(access))
        assert after_reset.status_code == 401, "a token from before a password reset must stop working"

    async def test_a_refresh_token_cannot_be_used_as_a_reset_token(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("mix@example.com", "mix")
        for token in (tokens["refresh_token"], tokens["access_token"]):
            response = await auth.http.post(
                "/api/auth/password/reset", json={"reset_token": token, "new_password": "another passphrase"}
            )
            assert response.status_code == 401

    async def test_rotating_the_signing_key_keeps_existing_tokens_valid(self, auth: AuthHarness, rotate: Any) -> None:
        before = await auth.signed_up("rot8@example.com", "rot8")
        auth.clock.advance(seconds=1)
        new_kid = await rotate()
        published = (await auth.http.get("/api/auth/.well-known/jwks.json")).json()
        assert new_kid in {key["kid"] for key in published["keys"]}, "published before it signs"
        early = await auth.login("rot8")
        assert jwt.get_unverified_header(early["access_token"])["kid"] != new_kid
        auth.clock.advance(seconds=auth.settings.key_activation_delay_seconds)
        after = await auth.login("rot8")
        assert jwt.get_unverified_header(after["access_token"])["kid"] == new_kid
        assert jwt.get_unverified_header(before["access_token"])["kid"] != new_kid
        for tokens in (before, after):
            assert (await auth.http.get("/api/auth/me", headers=auth.bearer(tokens["access_token"]))).status_code == 200
        document = (await auth.http.get("/api/auth/.well-known/jwks.json")).json()
        assert len(document["keys"]) == 2


__all__ = ["AuthScenarios", "httpx"]
