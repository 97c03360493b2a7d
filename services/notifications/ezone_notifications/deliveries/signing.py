"""Webhook signatures: HMAC-SHA256 over `<unix timestamp>.<body>`, sent as `Ezone-Signature: t=<unix>,v1=<hex>`.

The timestamp is signed too, so a captured request cannot be replayed later than the receiver's tolerance.
`verify_signature` is what a receiver runs; it depends on nothing but the standard library, to be copied freely.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Ezone-Signature"
DELIVERY_HEADER = "Ezone-Delivery"
EVENT_HEADER = "Ezone-Event"
SCHEME = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def verify_signature(secret: str, header: str, body: bytes, tolerance_s: float = 300, now: float | None = None) -> bool:
    """True when `header` (the Ezone-Signature value) signs exactly `body` with `secret`, and its timestamp is
    within `tolerance_s` of now. Pass the raw request body: parsing and re-serialising JSON changes the bytes."""
    fields = [part.partition("=") for part in header.split(",")]
    timestamps = [value.strip() for key, _, value in fields if key.strip() == "t"]
    candidates = [value.strip() for key, _, value in fields if key.strip() == SCHEME]
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not candidates:
        return False
    timestamp = int(timestamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
