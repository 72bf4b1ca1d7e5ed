"""Signatures: Standard Webhooks (with its published test vector) and Gameball's."""

from __future__ import annotations

import hashlib

import pytest

from kudos.webhooks import signing

# The example from the Standard Webhooks specification's reference libraries.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MESSAGE_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {
        "webhook-id": MESSAGE_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_the_signature_matches_the_standard_webhooks_test_vector() -> None:
    assert signing.sign(SECRET, MESSAGE_ID, TIMESTAMP, BODY) == EXPECTED


def test_verify_accepts_a_genuine_delivery_among_rotated_signatures() -> None:
    signing.verify(SECRET, headers(f"v1,bm90IGl0 {EXPECTED}"), BODY, now=TIMESTAMP + 10)


@pytest.mark.parametrize(
    ("given", "body", "now"),
    [
        (EXPECTED, b'{"test": 2432232315}', TIMESTAMP),  # body changed
        ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", BODY, TIMESTAMP),  # truncated
        (EXPECTED, BODY, TIMESTAMP + signing.TOLERANCE_SECONDS + 1),  # replayed too late
        (EXPECTED, BODY, TIMESTAMP - signing.TOLERANCE_SECONDS - 1),  # from the future
    ],
)
def test_verify_refuses_tampered_or_stale_deliveries(given: str, body: bytes, now: int) -> None:
    with pytest.raises(signing.InvalidSignature):
        signing.verify(SECRET, headers(given), body, now=now)


def test_verify_refuses_missing_headers() -> None:
    with pytest.raises(signing.InvalidSignature):
        signing.verify(SECRET, {"webhook-id": MESSAGE_ID}, BODY, now=TIMESTAMP)


def test_new_secrets_are_whsec_and_distinct() -> None:
    first, second = signing.new_secret(), signing.new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(signing._key(first)) == signing.SECRET_BYTES


def test_the_gameball_signature_is_sha1_hex_of_body_colon_secret() -> None:
    body = b'{"event":"customer.profile.updated"}'
    expected = hashlib.sha1(b'{"event":"customer.profile.updated"}:sk-123').hexdigest()
    assert signing.gameball_signature(body, "sk-123") == expected
