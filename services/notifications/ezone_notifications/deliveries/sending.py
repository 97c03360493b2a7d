"""The network calls: one email through SMTP, one signed webhook POST. Each returns its outcome; none raises."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.message import Message

import aiosmtplib
import httpx

from ..config import Settings
from .content import WEBHOOK_EVENT, sender_domain
from .signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature_header

USER_AGENT = "ezone-webhooks/1"
SMTP_ACCEPTED = 250  # the only reply to DATA that aiosmtplib does not raise on
_ERROR_LIMIT = 500  # characters of a receiver's answer kept as the error


@dataclass(frozen=True)
class Outcome:
    sent: bool
    status_code: int | None = None  # the HTTP status, or the SMTP reply code
    error: str | None = None


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT] if str(exc) else type(exc).__name__


async def send_email(settings: Settings, message: Message) -> Outcome:
    try:
        await aiosmtplib.send(
            message, hostname=settings.ezone_smtp_host, port=settings.ezone_smtp_port,
            username=settings.ezone_smtp_username, password=settings.ezone_smtp_password,
            start_tls=settings.ezone_smtp_starttls, timeout=settings.ezone_delivery_timeout_s,
            # Named, so the client does not look up this host's FQDN (a DNS round trip) for every message.
            local_hostname=sender_domain(settings),
        )
    except aiosmtplib.SMTPResponseException as exc:  # the server answered, and refused
        return Outcome(False, exc.code, describe(exc))
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Outcome(False, None, describe(exc))
    return Outcome(True, SMTP_ACCEPTED)


async def send_webhook(http: httpx.AsyncClient, url: str, secret: str, delivery_id: uuid.UUID, body: bytes) -> Outcome:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: str(delivery_id),
        EVENT_HEADER: WEBHOOK_EVENT,
        SIGNATURE_HEADER: signature_header(secret, body),  # signed at each attempt: its timestamp is the attempt's
    }
    try:
        response = await http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(False, None, describe(exc))
    if response.is_success:
        return Outcome(True, response.status_code)
    return Outcome(False, response.status_code, f"HTTP {response.status_code}: {response.text[:_ERROR_LIMIT]}".rstrip(": "))
