"""The authenticator-app second factor through the HTTP API. Runs wherever AuthScenarios runs: subclasses provide
the same ``auth`` fixture (an AuthHarness). Codes are computed with pyotp from the secret /totp/setup answers and
the harness clock, which the scenarios move step by step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pyotp
import pytest

from chat_auth.testing.harness import PASSWORD, AuthHarness

STEP = 30


@dataclass(frozen=True)
class Enrolled:
    """An account with TOTP on; ``tokens`` are from its first (password-only) sign-in."""

    username: str
    tokens: dict[str, Any]
    secret: str
    recovery_codes: list[str]

    @property
    def headers(self) -> dict[str, str]:
        return AuthHarness.bearer(self.tokens["access_token"])


def code_at(auth: AuthHarness, secret: str, steps: int = 0) -> str:
    """The code the app shows ``steps`` steps from the harness clock's now."""
    return pyotp.TOTP(secret).at(auth.clock(), counter_offset=steps)


def wrong_code(auth: AuthHarness, secret: str) -> str:
    """A six-digit code that no step near now has."""
    near = {code_at(auth, secret, steps) for steps in range(-3, 4)}
    return next(candidate for n in range(10) if (candidate := f"{n}{n}{n}{n}{n}{n}") not in near)


async def enroll(auth: AuthHarness, email: str, username: str) -> Enrolled:
    """Sign up, set up and confirm TOTP, then move to the next step (the confirming code is spent)."""
    tokens = await auth.signed_up(email, username)
    headers = auth.bearer(tokens["access_token"])
    setup = await auth.http.post("/api/auth/totp/setup", headers=headers)
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    confirmed = await auth.http.post("/api/auth/totp/confirm", json={"code": code_at(auth, secret)}, headers=headers)
    assert confirmed.status_code == 200, confirmed.text
    auth.clock.advance(seconds=STEP)
    return Enrolled(username, tokens, secret, confirmed.json()["recovery_codes"])


async def mfa_token(auth: AuthHarness, identifier: str, password: str = PASSWORD) -> str:
    body = await auth.login(identifier, password)
    assert body.get("mfa_required") is True, body
    token: str = body["mfa_token"]
    return token


async def second_step(auth: AuthHarness, token: str, **fields: str) -> httpx.Response:
    return await auth.http.post("/api/auth/login/totp", json={"mfa_token": token, **fields})


class TotpScenarios:
    """Every scenario starts from an empty service."""

    # --- setting up ---------------------------------------------------------------------------------------

    async def test_setup_answers_a_secret_an_otpauth_uri_and_an_svg_qr_code(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("qr@example.com", "qrcode")
        setup = await auth.http.post("/api/auth/totp/setup", headers=auth.bearer(tokens["access_token"]))
        assert setup.status_code == 200
        assert setup.headers["cache-control"] == "no-store"
        body = setup.json()
        uri = urlsplit(body["otpauth_uri"])
        assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
        assert "qrcode" in uri.path
        query = parse_qs(uri.query)
        assert query["secret"] == [body["secret"]]
        assert query["issuer"] == [auth.settings.totp_issuer]
        assert body["qr_svg"].startswith("<svg")
        assert body["qr_svg"].rstrip().endswith("</svg>")

    async def test_setup_alone_changes_nothing_until_a_code_confirms_it(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("pending@example.com", "pending")
        headers = auth.bearer(tokens["access_token"])
        first = (await auth.http.post("/api/auth/totp/setup", headers=headers)).json()["secret"]
        second = (await auth.http.post("/api/auth/totp/setup", headers=headers)).json()["secret"]
        assert first != second
        status = await auth.http.get("/api/auth/totp", headers=headers)
        assert status.json() == {"enabled": False, "recovery_codes_left": 0}
        assert "access_token" in await auth.login("pending")
        stale = await auth.http.post("/api/auth/totp/confirm", json={"code": code_at(auth, first)}, headers=headers)
        assert stale.status_code == 400, "a replaced secret must not confirm"
        assert stale.json()["code"] == "invalid_totp_code"
        assert (await auth.http.get("/api/auth/totp", headers=headers)).json()["enabled"] is False

    async def test_confirming_without_a_setup_is_a_conflict(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("nosetup@example.com", "nosetup")
        response = await auth.http.post(
            "/api/auth/totp/confirm", json={"code": "123456"}, headers=auth.bearer(tokens["access_token"])
        )
        assert response.status_code == 409
        assert response.json()["code"] == "totp_setup_required"

    async def test_setup_and_confirm_turn_totp_on_and_login_then_asks_for_the_second_factor(
        self, auth: AuthHarness
    ) -> None:
        enrolled = await enroll(auth, "two@example.com", "twofactor")
        assert len(enrolled.recovery_codes) == 10
        assert len(set(enrolled.recovery_codes)) == 10
        status = await auth.http.get("/api/auth/totp", headers=enrolled.headers)
        assert status.json() == {"enabled": True, "recovery_codes_left": 10}
        me = await auth.http.get("/api/auth/me", headers=enrolled.headers)
        assert me.json()["totp_enabled"] is True
        login = await auth.http.post("/api/auth/login", json={"identifier": "twofactor", "password": PASSWORD})
        assert login.status_code == 200
        body = login.json()
        assert body["mfa_required"] is True
        assert body["mfa_token"]
        assert "access_token" not in body
        assert "set-cookie" not in login.headers

    async def test_setup_is_refused_while_totp_is_on(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "again@example.com", "again")
        for path in ("/api/auth/totp/setup", "/api/auth/totp/confirm"):
            body = {"code": code_at(auth, enrolled.secret)} if path.endswith("confirm") else None
            response = await auth.http.post(path, json=body, headers=enrolled.headers)
            assert response.status_code == 409, path
            assert response.json()["code"] == "totp_already_enabled"

    async def test_the_totp_routes_need_a_signed_in_caller(self, auth: AuthHarness) -> None:
        for method, path in (
            ("GET", "/api/auth/totp"),
            ("POST", "/api/auth/totp/setup"),
            ("POST", "/api/auth/totp/confirm"),
            ("POST", "/api/auth/totp/disable"),
            ("POST", "/api/auth/totp/recovery-codes"),
        ):
            response = await auth.http.request(method, path, json={"code": "123456"})
            assert response.status_code == 401, path

    async def test_a_wrong_code_does_not_confirm_the_setup(self, auth: AuthHarness) -> None:
        tokens = await auth.signed_up("typo@example.com", "typo")
        headers = auth.bearer(tokens["access_token"])
        secret = (await auth.http.post("/api/auth/totp/setup", headers=headers)).json()["secret"]
        wrong = await auth.http.post("/api/auth/totp/confirm", json={"code": wrong_code(auth, secret)}, headers=headers)
        assert wrong.status_code == 400
        assert wrong.json()["code"] == "invalid_totp_code"
        assert (await auth.http.get("/api/auth/totp", headers=headers)).json()["enabled"] is False
        right = await auth.http.post("/api/auth/totp/confirm", json={"code": code_at(auth, secret)}, headers=headers)
        assert right.status_code == 200

    # --- the second step of a sign-in ---------------------------------------------------------------------

    async def test_a_valid_code_completes_the_sign_in_with_a_new_session(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "fresh@example.com", "fresh")
        before = await auth.http.get("/api/auth/sessions", headers=enrolled.headers)
        token = await mfa_token(auth, "fresh")
        after_password = await auth.http.get("/api/auth/sessions", headers=enrolled.headers)
        assert len(after_password.json()) == len(before.json()), "no session before the second factor"
        response = await second_step(auth, token, code=code_at(auth, enrolled.secret))
        assert response.status_code == 200, response.text
        signed_in = response.json()
        assert "HttpOnly" in response.headers["set-cookie"]
        assert response.headers["cache-control"] == "no-store"
        mfa_sid = jwt.decode(token, options={"verify_signature": False})["sid"]
        assert signed_in["session_id"] not in {mfa_sid, enrolled.tokens["session_id"]}
        me = await auth.http.get("/api/auth/me", headers=auth.bearer(signed_in["access_token"]))
        assert me.status_code == 200
        assert me.json()["username"] == "fresh"
        listed = await auth.http.get("/api/auth/sessions", headers=enrolled.headers)
        methods = {s["id"]: s["auth_method"] for s in listed.json()}
        assert methods[signed_in["session_id"]] == "totp"
        assert len(methods) == len(before.json()) + 1

    async def test_the_same_code_cannot_be_used_twice_even_within_its_window(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "replay@example.com", "replay")
        code = code_at(auth, enrolled.secret)
        first = await second_step(auth, await mfa_token(auth, "replay"), code=code)
        assert first.status_code == 200
        again = await second_step(auth, await mfa_token(auth, "replay"), code=code)
        assert again.status_code == 400
        assert again.json()["code"] == "invalid_totp_code"
        auth.clock.advance(seconds=STEP)  # the code is now one step old: inside the window, still spent
        later = await second_step(auth, await mfa_token(auth, "replay"), code=code)
        assert later.status_code == 400
        fresh = await second_step(auth, await mfa_token(auth, "replay"), code=code_at(auth, enrolled.secret))
        assert fresh.status_code == 200

    async def test_codes_one_step_away_work_and_two_steps_away_do_not(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "skew@example.com", "skew")
        auth.clock.advance(seconds=3 * STEP)
        for steps in (2, -2):
            response = await second_step(
                auth, await mfa_token(auth, "skew"), code=code_at(auth, enrolled.secret, steps)
            )
            assert response.status_code == 400, steps
        for steps in (-1, 1):
            response = await second_step(
                auth, await mfa_token(auth, "skew"), code=code_at(auth, enrolled.secret, steps)
            )
            assert response.status_code == 200, steps

    async def test_a_code_older_than_the_last_one_used_is_refused(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "order@example.com", "order")
        ahead = await second_step(auth, await mfa_token(auth, "order"), code=code_at(auth, enrolled.secret, 1))
        assert ahead.status_code == 200
        behind = await second_step(auth, await mfa_token(auth, "order"), code=code_at(auth, enrolled.secret))
        assert behind.status_code == 400

    async def test_wrong_codes_are_refused_with_429_after_five(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "brute@example.com", "brute")
        token = await mfa_token(auth, "brute")
        for _ in range(5):
            response = await second_step(auth, token, code=wrong_code(auth, enrolled.secret))
            assert response.status_code == 400
            assert response.json()["code"] == "invalid_totp_code"
        blocked = await second_step(auth, token, code=code_at(auth, enrolled.secret))
        assert blocked.status_code == 429
        assert blocked.json()["retry_after"] > 0
        other_token = await second_step(auth, await mfa_token(auth, "brute"), code=code_at(auth, enrolled.secret))
        assert other_token.status_code == 429, "the limit is per account, not per sign-in attempt"
        auth.clock.advance(minutes=15)
        later = await second_step(auth, await mfa_token(auth, "brute"), code=code_at(auth, enrolled.secret))
        assert later.status_code == 200, later.text

    async def test_one_mfa_token_allows_only_five_attempts_even_when_the_owner_signs_in_between(
        self, auth: AuthHarness
    ) -> None:
        enrolled = await enroll(auth, "token@example.com", "tokenlimit")
        attacker = await mfa_token(auth, "tokenlimit")
        for _ in range(4):
            assert (await second_step(auth, attacker, code=wrong_code(auth, enrolled.secret))).status_code == 400
        owner = await second_step(auth, await mfa_token(auth, "tokenlimit"), code=code_at(auth, enrolled.secret))
        assert owner.status_code == 200, "a right code clears the account's count of wrong ones"
        assert (await second_step(auth, attacker, code=wrong_code(auth, enrolled.secret))).status_code == 400
        auth.clock.advance(seconds=STEP)
        sixth = await second_step(auth, attacker, code=code_at(auth, enrolled.secret))
        assert sixth.status_code == 429

    async def test_a_recovery_code_works_once(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "lostphone@example.com", "lostphone")
        recovery = enrolled.recovery_codes[0]
        first = await second_step(auth, await mfa_token(auth, "lostphone"), recovery_code=recovery)
        assert first.status_code == 200, first.text
        again = await second_step(auth, await mfa_token(auth, "lostphone"), recovery_code=recovery)
        assert again.status_code == 400
        assert again.json()["code"] == "invalid_recovery_code"
        typed = enrolled.recovery_codes[1].replace("-", " ").upper()
        loose = await second_step(auth, await mfa_token(auth, "lostphone"), recovery_code=typed)
        assert loose.status_code == 200, "typed with a space and in capitals it still works"
        status = await auth.http.get("/api/auth/totp", headers=auth.bearer(first.json()["access_token"]))
        assert status.json() == {"enabled": True, "recovery_codes_left": 8}

    async def test_exactly_one_of_code_and_recovery_code_is_accepted(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "both@example.com", "both")
        token = await mfa_token(auth, "both")
        both = await second_step(
            auth, token, code=code_at(auth, enrolled.secret), recovery_code=enrolled.recovery_codes[0]
        )
        neither = await second_step(auth, token)
        for response in (both, neither):
            assert response.status_code == 422
            assert response.json()["code"] == "validation_failed"
        assert (await second_step(auth, token, code=code_at(auth, enrolled.secret))).status_code == 200

    async def test_a_used_mfa_token_cannot_be_used_again(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "once@example.com", "oncetoken")
        token = await mfa_token(auth, "oncetoken")
        assert (await second_step(auth, token, code=code_at(auth, enrolled.secret))).status_code == 200
        auth.clock.advance(seconds=STEP)
        again = await second_step(auth, token, code=code_at(auth, enrolled.secret))
        assert again.status_code == 401
        assert again.json()["code"] == "token_used"
        with_recovery = await second_step(auth, token, recovery_code=enrolled.recovery_codes[0])
        assert with_recovery.status_code == 401
        # The replays spent nothing: that recovery code and the current code still work with a fresh token.
        fresh = await second_step(auth, await mfa_token(auth, "oncetoken"), recovery_code=enrolled.recovery_codes[0])
        assert fresh.status_code == 200
        auth.clock.advance(seconds=STEP)
        later = await mfa_token(auth, "oncetoken")
        assert (await second_step(auth, later, code=code_at(auth, enrolled.secret))).status_code == 200

    async def test_an_mfa_token_expires_after_five_minutes(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "slowpoke@example.com", "slowpoke")
        token = await mfa_token(auth, "slowpoke")
        auth.clock.advance(minutes=6)
        response = await second_step(auth, token, code=code_at(auth, enrolled.secret))
        assert response.status_code == 401
        assert response.json()["code"].startswith("token_")

    async def test_an_mfa_token_is_not_an_access_token_nor_the_other_way_round(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "kinds@example.com", "kinds")
        token = await mfa_token(auth, "kinds")
        me = await auth.http.get("/api/auth/me", headers=auth.bearer(token))
        assert me.status_code == 401
        assert me.json()["code"].startswith("token_")
        setup = await auth.http.post("/api/auth/totp/setup", headers=auth.bearer(token))
        assert setup.status_code == 401
        access_as_mfa = await second_step(auth, enrolled.tokens["access_token"], code=code_at(auth, enrolled.secret))
        assert access_as_mfa.status_code == 401
        assert access_as_mfa.json()["code"] == "token_wrong_type"

    async def test_a_password_reset_leaves_totp_on(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "reset@example.com", "resetter")
        await auth.http.post("/api/auth/password/forgot", json={"email": "reset@example.com"})
        code = await auth.last_code("reset@example.com")
        verified = await auth.http.post(
            "/api/auth/password/reset/verify", json={"email": "reset@example.com", "code": code}
        )
        assert verified.status_code == 200
        new_password = "a brand new passphrase"
        reset = await auth.http.post(
            "/api/auth/password/reset",
            json={"reset_token": verified.json()["reset_token"], "new_password": new_password},
        )
        assert reset.status_code == 204
        assert "set-cookie" not in reset.headers
        token = await mfa_token(auth, "resetter", new_password)
        assert (await second_step(auth, token, code=code_at(auth, enrolled.secret))).status_code == 200

    # --- turning it off, recovery codes -------------------------------------------------------------------

    async def test_disabling_needs_a_right_code_or_the_password(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "off@example.com", "switchoff")
        path = "/api/auth/totp/disable"
        for body in ({}, {"code": code_at(auth, enrolled.secret), "password": PASSWORD}):
            response = await auth.http.post(path, json=body, headers=enrolled.headers)
            assert response.status_code == 422, body
        wrong_password = await auth.http.post(path, json={"password": "not my password"}, headers=enrolled.headers)
        assert wrong_password.status_code == 401
        wrong = await auth.http.post(path, json={"code": wrong_code(auth, enrolled.secret)}, headers=enrolled.headers)
        assert wrong.status_code == 400
        assert (await auth.http.get("/api/auth/totp", headers=enrolled.headers)).json()["enabled"] is True
        off = await auth.http.post(path, json={"password": PASSWORD}, headers=enrolled.headers)
        assert off.status_code == 204
        assert (await auth.http.get("/api/auth/totp", headers=enrolled.headers)).json() == {
            "enabled": False,
            "recovery_codes_left": 0,
        }
        assert "access_token" in await auth.login("switchoff")
        again = await auth.http.post(path, json={"password": PASSWORD}, headers=enrolled.headers)
        assert again.status_code == 409
        assert again.json()["code"] == "totp_not_enabled"

    async def test_disabling_with_a_code_turns_it_off_and_it_can_be_set_up_anew(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "code-off@example.com", "codeoff")
        off = await auth.http.post(
            "/api/auth/totp/disable", json={"code": code_at(auth, enrolled.secret)}, headers=enrolled.headers
        )
        assert off.status_code == 204
        assert (await auth.http.get("/api/auth/me", headers=enrolled.headers)).json()["totp_enabled"] is False
        again = await enroll_again(auth, enrolled)
        assert again != enrolled.secret
        assert (await auth.login("codeoff")).get("mfa_required") is True

    async def test_regenerating_recovery_codes_needs_a_code_and_retires_the_old_ones(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "regen@example.com", "regen")
        path = "/api/auth/totp/recovery-codes"
        wrong = await auth.http.post(path, json={"code": wrong_code(auth, enrolled.secret)}, headers=enrolled.headers)
        assert wrong.status_code == 400
        fresh = await auth.http.post(path, json={"code": code_at(auth, enrolled.secret)}, headers=enrolled.headers)
        assert fresh.status_code == 200
        assert fresh.headers["cache-control"] == "no-store"
        new_codes = fresh.json()["recovery_codes"]
        assert len(new_codes) == 10
        assert not set(new_codes) & set(enrolled.recovery_codes)
        old = await second_step(auth, await mfa_token(auth, "regen"), recovery_code=enrolled.recovery_codes[0])
        assert old.status_code == 400
        new = await second_step(auth, await mfa_token(auth, "regen"), recovery_code=new_codes[0])
        assert new.status_code == 200

    # --- passwordless (opt-in) ----------------------------------------------------------------------------

    async def test_passwordless_login_is_not_found_while_it_is_off(self, auth: AuthHarness) -> None:
        enrolled = await enroll(auth, "nopw@example.com", "nopw")
        assert auth.settings.passwordless_totp_login is False
        for body in ({"username": "nopw", "code": code_at(auth, enrolled.secret)}, {}):
            response = await auth.http.post("/api/auth/login/totp-only", json=body)
            assert response.status_code == 404
            assert response.json()["code"] == "not_found"

    async def test_passwordless_login_when_on_signs_in_once_per_code(
        self, auth: AuthHarness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(auth.settings, "passwordless_totp_login", True)
        enrolled = await enroll(auth, "pwless@example.com", "pwless")
        code = code_at(auth, enrolled.secret)
        response = await auth.http.post("/api/auth/login/totp-only", json={"username": "pwless", "code": code})
        assert response.status_code == 200, response.text
        assert response.json()["session_id"] != enrolled.tokens["session_id"]
        replay = await auth.http.post("/api/auth/login/totp-only", json={"username": "pwless", "code": code})
        assert replay.status_code == 401
        second_factor = await second_step(auth, await mfa_token(auth, "pwless"), code=code)
        assert second_factor.status_code == 400, "a code spent here is spent for the second factor too"

    async def test_passwordless_login_answers_alike_for_unknown_accounts_and_wrong_codes(
        self, auth: AuthHarness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(auth.settings, "passwordless_totp_login", True)
        enrolled = await enroll(auth, "alike@example.com", "alike")
        await auth.signed_up("plain@example.com", "plain")
        answers = []
        for username, code in (
            ("alike", wrong_code(auth, enrolled.secret)),
            ("nobody-here", code_at(auth, enrolled.secret)),
            ("plain", code_at(auth, enrolled.secret)),
        ):
            response = await auth.http.post("/api/auth/login/totp-only", json={"username": username, "code": code})
            shown = {key: value for key, value in response.json().items() if key != "instance"}
            answers.append((response.status_code, shown))
        assert answers[0][0] == 401
        assert answers[0] == answers[1] == answers[2], answers

    async def test_passwordless_login_is_limited_per_account_and_per_address(
        self, auth: AuthHarness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(auth.settings, "passwordless_totp_login", True)
        enrolled = await enroll(auth, "target@example.com", "target")
        path = "/api/auth/login/totp-only"
        for n in range(5):
            response = await auth.http.post(
                path,
                json={"username": "target", "code": wrong_code(auth, enrolled.secret)},
                headers=auth.from_ip(f"203.0.113.{n + 1}"),
            )
            assert response.status_code == 401
        right = {"username": "target", "code": code_at(auth, enrolled.secret)}
        blocked = await auth.http.post(path, json=right, headers=auth.from_ip("198.51.100.1"))
        assert blocked.status_code == 429, "the account's budget is spent whichever address asks"
        normal = await second_step(auth, await mfa_token(auth, "target"), code=code_at(auth, enrolled.secret))
        assert normal.status_code == 200, "spraying the passwordless route does not lock the normal second step"
        sprayer = auth.from_ip("203.0.113.99")
        for n in range(5):
            response = await auth.http.post(path, json={"username": f"someone{n}", "code": "123456"}, headers=sprayer)
            assert response.status_code == 401
        spent = await auth.http.post(path, json={"username": "someone-else", "code": "123456"}, headers=sprayer)
        assert spent.status_code == 429
        auth.clock.advance(minutes=15)
        later = await auth.http.post(path, json=right | {"code": code_at(auth, enrolled.secret)}, headers=sprayer)
        assert later.status_code == 200, later.text


async def enroll_again(auth: AuthHarness, enrolled: Enrolled) -> str:
    """Set TOTP up anew on an account that turned it off; the new secret."""
    setup = await auth.http.post("/api/auth/totp/setup", headers=enrolled.headers)
    assert setup.status_code == 200, setup.text
    secret: str = setup.json()["secret"]
    confirmed = await auth.http.post(
        "/api/auth/totp/confirm", json={"code": code_at(auth, secret)}, headers=enrolled.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    auth.clock.advance(seconds=STEP)
    return secret


__all__ = ["Enrolled", "TotpScenarios", "code_at", "enroll", "mfa_token", "second_step", "wrong_code"]
