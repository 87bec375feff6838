"""Stripe-Signature verification over the raw bytes: what passes, and everything that must not."""

from __future__ import annotations

import pytest

from billfold.adapters.stripe import signature
from billfold.domain import errors
from tests.builders import stripe_events as se

SECRET = "whsec_current"
OLD_SECRET = "whsec_previous"
NOW = 1_700_000_000
BODY = b'{"id": "evt_1", "object": "event"}'


def header(*parts: str) -> str:
    return ",".join(parts)


def v1(payload: bytes = BODY, secret: str = SECRET, timestamp: int = NOW) -> str:
    return f"v1={signature.compute_signature(payload, secret, timestamp)}"


def test_a_payload_signed_with_the_secret_passes_and_returns_its_timestamp() -> None:
    sig = signature.sign(BODY, SECRET, NOW)

    assert signature.verify(BODY, sig, [SECRET], now=NOW) == NOW


def test_a_builder_delivery_verifies_against_its_secret() -> None:
    body, headers = se.signed(se.checkout_session_completed(), SECRET, timestamp=NOW)

    assert signature.verify(body, headers["Stripe-Signature"], [SECRET], now=NOW) == NOW


def test_sign_without_a_timestamp_uses_the_current_time() -> None:
    sig = signature.sign(BODY, SECRET)

    assert signature.verify(BODY, sig, [SECRET]) > 0


@pytest.mark.parametrize("secrets", [[SECRET, OLD_SECRET], [OLD_SECRET, SECRET]])
def test_given_rotated_secrets_a_signature_by_either_passes(secrets: list[str]) -> None:
    for used in (SECRET, OLD_SECRET):
        assert signature.verify(BODY, signature.sign(BODY, used, NOW), secrets, now=NOW) == NOW


def test_during_rotation_stripe_sends_two_v1_and_either_matching_passes() -> None:
    both = header(f"t={NOW}", v1(secret="whsec_unknown"), v1(secret=SECRET))

    assert signature.verify(BODY, both, [SECRET], now=NOW) == NOW


def test_a_signature_by_a_secret_no_longer_configured_fails() -> None:
    with pytest.raises(errors.InvalidSignature):
        signature.verify(BODY, signature.sign(BODY, OLD_SECRET, NOW), [SECRET], now=NOW)


def test_v0_never_counts_even_when_it_is_a_valid_hmac() -> None:
    v0 = f"v0={signature.compute_signature(BODY, SECRET, NOW)}"

    with pytest.raises(errors.InvalidSignature):
        signature.verify(BODY, header(f"t={NOW}", v0), [SECRET], now=NOW)


def test_v0_next_to_a_valid_v1_is_ignored() -> None:
    sig = header(f"t={NOW}", "v0=deadbeef", v1())

    assert signature.verify(BODY, sig, [SECRET], now=NOW) == NOW


@pytest.mark.parametrize("age", [0, 1, 299, 300])
def test_a_timestamp_within_the_tolerance_in_the_past_passes(age: int) -> None:
    sig = signature.sign(BODY, SECRET, NOW - age)

    assert signature.verify(BODY, sig, [SECRET], tolerance=300, now=NOW) == NOW - age


@pytest.mark.parametrize("ahead", [1, 300])
def test_a_timestamp_within_the_tolerance_in_the_future_passes(ahead: int) -> None:
    sig = signature.sign(BODY, SECRET, NOW + ahead)

    assert signature.verify(BODY, sig, [SECRET], tolerance=300, now=NOW) == NOW + ahead


@pytest.mark.parametrize("offset", [-301, -86_400, 301, 86_400])
def test_a_timestamp_past_the_tolerance_either_way_fails(offset: int) -> None:
    sig = signature.sign(BODY, SECRET, NOW + offset)

    with pytest.raises(errors.InvalidSignature, match="tolerance"):
        signature.verify(BODY, sig, [SECRET], tolerance=300, now=NOW)


def test_the_tolerance_is_configurable() -> None:
    sig = signature.sign(BODY, SECRET, NOW - 600)

    assert signature.verify(BODY, sig, [SECRET], tolerance=900, now=NOW) == NOW - 600
    with pytest.raises(errors.InvalidSignature):
        signature.verify(BODY, sig, [SECRET], tolerance=60, now=NOW)


def test_a_replayed_old_delivery_fails_even_with_a_correct_signature() -> None:
    body, headers = se.signed(se.charge_refunded(), SECRET, timestamp=NOW - 3600)

    with pytest.raises(errors.InvalidSignature):
        signature.verify(body, headers["Stripe-Signature"], [SECRET], now=NOW)


@pytest.mark.parametrize(
    "garbled",
    [
        None,
        "",
        "garbage",
        "t=,v1=",
        f"t={NOW}",
        "v1=abc",
        f"t=abc,{v1()}",
        f"t={NOW}.5,{v1()}",
        f"t={NOW};{v1()}",
        f"t={NOW},v1={'0' * 64}",
        f"t={NOW},v1={signature.compute_signature(BODY, SECRET, NOW).upper()}",
        f"t={NOW},v2={signature.compute_signature(BODY, SECRET, NOW)}",
        "t=\u0661\u0662,v1=x",
    ],
)
def test_a_missing_or_garbled_header_fails(garbled: str | None) -> None:
    with pytest.raises(errors.InvalidSignature):
        signature.verify(BODY, garbled, [SECRET], now=NOW)


@pytest.mark.parametrize(
    "tampered",
    [
        BODY.replace(b"evt_1", b"evt_2"),
        BODY + b" ",
        BODY + b"\n",
        b" " + BODY,
        BODY[:-1],
        b"",
    ],
)
def test_a_body_changed_after_signing_fails(tampered: bytes) -> None:
    sig = signature.sign(BODY, SECRET, NOW)

    with pytest.raises(errors.InvalidSignature, match="No signature matches"):
        signature.verify(tampered, sig, [SECRET], now=NOW)


def test_a_signature_moved_to_another_timestamp_fails() -> None:
    moved = header(f"t={NOW + 1}", v1(timestamp=NOW))

    with pytest.raises(errors.InvalidSignature):
        signature.verify(BODY, moved, [SECRET], now=NOW)


def test_without_any_configured_secret_nothing_passes() -> None:
    with pytest.raises(errors.InvalidSignature, match="No webhook secret"):
        signature.verify(BODY, signature.sign(BODY, SECRET, NOW), [], now=NOW)


def test_whitespace_around_header_elements_is_tolerated() -> None:
    spaced = f"t={NOW}, {v1()}"

    assert signature.verify(BODY, spaced, [SECRET], now=NOW) == NOW
