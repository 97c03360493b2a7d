"""Webhook signatures: what a receiver's `verify_signature` accepts and refuses."""

from __future__ import annotations

import hashlib
import hmac

from ezone_notifications.deliveries.signing import signature_header, verify_signature

SECRET = "whsec_test-secret"
BODY = b'{"type":"alert.raised","delivery_id":"0b7f3c52-8e1d-4a6f-9c3b-5d2e7a9f1c48"}'
NOW = 1_795_000_000


def test_the_header_is_a_timestamp_and_an_hmac_sha256_of_timestamp_dot_body() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert verify_signature(SECRET, header, BODY, now=NOW)


def test_a_changed_body_another_secret_or_a_stale_timestamp_is_refused() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)
    assert not verify_signature(SECRET, header, BODY + b" ", now=NOW)
    assert not verify_signature("whsec_other", header, BODY, now=NOW)
    assert not verify_signature(SECRET, header, BODY, tolerance_s=300, now=NOW + 301)
    assert verify_signature(SECRET, header, BODY, tolerance_s=300, now=NOW + 300)
    # A replay cannot move the timestamp forward: the timestamp is signed.
    forged = header.replace(f"t={NOW}", f"t={NOW + 1000}")
    assert not verify_signature(SECRET, forged, BODY, now=NOW + 1000)


def test_any_of_several_signatures_may_match_for_secret_rotation() -> None:
    good = signature_header(SECRET, BODY, timestamp=NOW).split(",")[1]
    assert verify_signature(SECRET, f"t={NOW},v1=deadbeef,{good}", BODY, now=NOW)
    assert verify_signature(SECRET, f" t={NOW} , {good} ", BODY, now=NOW)


def test_malformed_headers_are_refused_not_raised() -> None:
    good = signature_header(SECRET, BODY, timestamp=NOW)
    for header in ("", "garbage", f"t={NOW}", good.split(",")[1], f"t=abc,{good.split(',')[1]}",
                   f"t={NOW},t={NOW},{good.split(',')[1]}", f"t=-{NOW},{good.split(',')[1]}"):
        assert not verify_signature(SECRET, header, BODY, now=NOW), header
