"""The TOTP rules on their own: steps, the window, replay protection, storage forms, provisioning."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from cryptography.exceptions import InvalidTag

from chat_auth.domain import totp
from chat_auth.domain.model import Failures
from chat_auth.domain.secrets import Sealer
from chat_auth.domain.throttle import Limit

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 11, 21, 12, 0, 10, tzinfo=UTC)
PEPPER = b"pepper for tests"
LIMIT = Limit(5, timedelta(minutes=15))


def _code(steps: int = 0, at: datetime = NOW) -> str:
    return pyotp.TOTP(SECRET).at(at, counter_offset=steps)


def test_a_step_is_thirty_seconds_counted_from_the_unix_epoch() -> None:
    assert totp.step_at(datetime(1970, 1, 1, 0, 0, 59, tzinfo=UTC)) == 1
    assert totp.step_at(NOW) == int(NOW.timestamp()) // 30
    assert totp.step_at(NOW.replace(second=29, microsecond=999_999)) == totp.step_at(NOW)
    assert totp.step_at(NOW.replace(second=30)) == totp.step_at(NOW) + 1


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        totp.step_at(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


def test_codes_agree_with_what_an_authenticator_app_shows() -> None:
    for steps in (-1, 0, 1):
        assert totp.code_at_step(SECRET, totp.step_at(NOW) + steps) == _code(steps)


def test_the_current_code_matches_its_own_step() -> None:
    assert totp.matching_step(SECRET, _code(), now=NOW, last_step=None) == totp.step_at(NOW)


def test_codes_one_step_either_side_match_and_two_steps_do_not() -> None:
    current = totp.step_at(NOW)
    assert totp.matching_step(SECRET, _code(-1), now=NOW, last_step=None) == current - 1
    assert totp.matching_step(SECRET, _code(1), now=NOW, last_step=None) == current + 1
    assert totp.matching_step(SECRET, _code(-2), now=NOW, last_step=None) is None
    assert totp.matching_step(SECRET, _code(2), now=NOW, last_step=None) is None


def test_a_step_at_or_before_the_last_one_used_does_not_match() -> None:
    current = totp.step_at(NOW)
    assert totp.matching_step(SECRET, _code(), now=NOW, last_step=current) is None
    assert totp.matching_step(SECRET, _code(-1), now=NOW, last_step=current - 1) is None
    assert totp.matching_step(SECRET, _code(1), now=NOW, last_step=current) == current + 1


def test_a_code_spent_stays_spent_while_it_is_still_inside_the_window() -> None:
    spent = totp.matching_step(SECRET, _code(), now=NOW, last_step=None)
    later = NOW + timedelta(seconds=30)
    assert totp.matching_step(SECRET, _code(), now=later, last_step=spent) is None
    assert totp.matching_step(SECRET, _code(0, later), now=later, last_step=spent) == totp.step_at(later)


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 345"])
def test_anything_but_six_ascii_digits_never_matches(typed: str) -> None:
    assert totp.matching_step(SECRET, typed, now=NOW, last_step=None) is None


def test_surrounding_whitespace_is_ignored() -> None:
    assert totp.matching_step(SECRET, f" {_code()}\n", now=NOW, last_step=None) == totp.step_at(NOW)


def test_a_new_secret_is_160_random_bits_of_base32() -> None:
    secrets = {totp.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert len(secret) == 32
        assert len(pyotp.TOTP(secret).byte_secret()) == 20


def test_a_sealed_secret_opens_only_with_its_key_and_for_its_use() -> None:
    sealer = Sealer("a sealing secret for tests")
    sealed = totp.seal_secret(sealer, SECRET)
    assert SECRET.encode() not in sealed
    assert totp.open_secret(sealer, sealed) == SECRET
    assert totp.seal_secret(sealer, SECRET) != sealed, "a fresh nonce each time"
    with pytest.raises(InvalidTag):
        sealer.open(sealed, context="signing-key")
    with pytest.raises(InvalidTag):
        totp.open_secret(Sealer("another secret"), sealed)


def test_a_recovery_code_hash_is_bound_to_its_user_and_forgives_typing() -> None:
    user = uuid.uuid4()
    stored = totp.recovery_code_hash(PEPPER, user_id=user, code="k7m2q-x9hfa")
    assert totp.recovery_code_hash(PEPPER, user_id=user, code=" K7M2Q X9HFA ") == stored
    assert totp.recovery_code_hash(PEPPER, user_id=user, code="k7m2qx9hfa") == stored
    assert totp.recovery_code_hash(PEPPER, user_id=uuid.uuid4(), code="k7m2q-x9hfa") != stored
    assert totp.recovery_code_hash(b"other pepper", user_id=user, code="k7m2q-x9hfa") != stored
    assert totp.recovery_code_hash(PEPPER, user_id=user, code="k7m2q-x9hfb") != stored


def test_the_otpauth_uri_names_the_issuer_account_and_secret() -> None:
    uri = totp.otpauth_uri(SECRET, account="ada", issuer="chat")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/chat:ada"
    query = parse_qs(parts.query)
    assert query["secret"] == [SECRET]
    assert query["issuer"] == ["chat"]
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.at(NOW) == _code()


def test_the_qr_code_is_a_standalone_svg_document() -> None:
    svg = totp.qr_svg(totp.otpauth_uri(SECRET, account="ada", issuer="chat"))
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert svg.rstrip().endswith("</svg>")
    assert "<script" not in svg
    assert "<path" in svg


def test_no_lockout_below_the_limit() -> None:
    assert totp.lockout_remaining(Failures(4, NOW), limit=LIMIT, now=NOW) == 0.0
    assert totp.lockout_remaining(Failures(), limit=LIMIT, now=NOW) == 0.0


def test_the_lockout_lasts_one_window_after_the_last_wrong_code() -> None:
    assert totp.lockout_remaining(Failures(5, NOW), limit=LIMIT, now=NOW + timedelta(minutes=5)) == 600.0
    assert totp.lockout_remaining(Failures(5, NOW), limit=LIMIT, now=NOW + timedelta(minutes=15)) == 0.0


def test_a_streak_of_wrong_codes_is_forgotten_a_window_after_the_last_one() -> None:
    assert not totp.failure_streak_expired(Failures(3, NOW), limit=LIMIT, now=NOW + timedelta(minutes=14))
    assert totp.failure_streak_expired(Failures(3, NOW), limit=LIMIT, now=NOW + timedelta(minutes=15))
    assert not totp.failure_streak_expired(Failures(), limit=LIMIT, now=NOW)
