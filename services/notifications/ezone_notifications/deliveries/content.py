"""What a delivery carries: the webhook's JSON body and the emails (plain text and HTML), from stored alerts."""

from __future__ import annotations

import base64
import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ..board import links
from ..config import Settings

WEBHOOK_EVENT = "alert.raised"

_templates = Environment(
    loader=PackageLoader("ezone_notifications.deliveries", "templates"),
    autoescape=select_autoescape(["html"]),  # the .txt bodies are plain text, never escaped
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class AlertContent:
    id: uuid.UUID
    zone_id: str
    recipient: str
    audience: str
    severity: str
    title: str
    body: str
    links: dict[str, str]
    school_id: uuid.UUID | None
    school_name: str | None
    source_event_id: uuid.UUID
    source_type: str
    raised_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> AlertContent:
        return cls(id=row.id, zone_id=row.zone_id, recipient=row.recipient, audience=row.audience, severity=row.severity,
                   title=row.title, body=row.body, links=dict(row.links or {}), school_id=row.school_id,
                   school_name=row.school_name, source_event_id=row.source_event_id, source_type=row.source_type,
                   raised_at=row.created_at)


def webhook_body(delivery_id: uuid.UUID, alert: AlertContent, zone_wide: bool) -> bytes:
    """The JSON a webhook receives. A zone endpoint gets one delivery per event, so it names no recipient."""
    described: dict[str, Any] = {
        "severity": alert.severity, "title": alert.title, "body": alert.body, "links": alert.links,
        "school": None if alert.school_id is None else {"id": str(alert.school_id), "name": alert.school_name},
        "raised_at": alert.raised_at.isoformat(),
    }
    if not zone_wide:
        described = {"id": str(alert.id), "recipient": alert.recipient, "audience": alert.audience, **described}
    return orjson.dumps({
        "type": WEBHOOK_EVENT, "delivery_id": str(delivery_id), "zone_id": alert.zone_id,
        "scope": "zone" if zone_wide else "member", "alert": described,
        "source_event": {"id": str(alert.source_event_id), "type": alert.source_type},
    })


def _one_line(value: str) -> str:
    return " ".join(value.split())


@dataclass(frozen=True)
class Email:
    """A message ready for SMTP: the envelope's sender and recipient, and the message as sent (RFC 5322, MIME)."""

    sender: str
    recipient: str
    data: bytes

    def __bytes__(self) -> bytes:
        return self.data


@functools.lru_cache(maxsize=1024)
def _encoded_subject(subject: str) -> str:
    # RFC 2047 encoded words, folded. The stdlib's encoder is quadratic in the subject's length; an alert's recipients
    # share its subject, so it is encoded once for all of them.
    return Header(_one_line(subject), "utf-8", header_name="Subject").encode(linesep="\r\n")


@functools.lru_cache(maxsize=16)
def _from_header(configured: str) -> tuple[str, str]:
    """The From header (a non-ASCII display name encoded) and the envelope sender, from EZONE_EMAIL_FROM."""
    name, address = parseaddr(configured)
    return formataddr((name, address), charset="utf-8"), address


def _base64_lines(text: str) -> bytes:
    return base64.encodebytes(text.encode()).replace(b"\n", b"\r\n")


def _message(settings: Settings, delivery_id: uuid.UUID, to: str, subject: str, template: str, **context: Any) -> Email:
    """multipart/alternative: plain text, then HTML, each UTF-8 in base64.

    Written here rather than by the stdlib's MIME classes and generator: they took 1.2 ms of CPU a message (header
    folding, a regular expression compiled per boundary), a quarter of the notifications service's work while a
    board's alerts went out; this takes a tenth of that and its output parses the same."""
    if "@" not in to or any(character.isspace() or not character.isprintable() for character in to):
        # It becomes a header line as it is: a line break in it would add headers of its own.
        raise ValueError(f"{to!r} is not an email address; set the member's email in their preferences")
    context |= {"delivery_id": delivery_id,
                "preferences_url": links.preferences_page(settings)}
    # No base64 line can contain "-", so no body line can be mistaken for the boundary.
    boundary = f"ezone-{delivery_id}"
    from_header, sender = _from_header(settings.ezone_email_from)
    head = "\r\n".join([
        f"From: {from_header}",
        f"To: {to}",
        f"Subject: {_encoded_subject(subject)}",
        f"Date: {format_datetime(datetime.now(UTC))}",
        # The same id on every attempt: a mail client shows a resent message once.
        f"Message-ID: <{delivery_id}@{sender_domain(settings)}>",
        "Auto-Submitted: auto-generated",  # RFC 3834: no vacation auto-replies to alerts
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ])
    parts = [
        b"".join([f"--{boundary}\r\nContent-Type: text/{subtype}; charset=\"utf-8\"\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\n".encode(),
                  _base64_lines(_templates.get_template(f"{template}.{extension}").render(**context))])
        for subtype, extension in (("plain", "txt"), ("html", "html"))
    ]
    data = b"".join([head.encode(), b"\r\n\r\n", *parts, f"--{boundary}--\r\n".encode()])
    return Email(sender, to, data)


def sender_domain(settings: Settings) -> str:
    return parseaddr(settings.ezone_email_from)[1].rpartition("@")[2] or "ezone.local"


def alert_email(settings: Settings, delivery_id: uuid.UUID, to: str, alert: AlertContent) -> Email:
    return _message(settings, delivery_id, to, f"[ezone] {alert.severity.capitalize()}: {alert.title}", "alert",
                    alert=alert, zone_id=alert.zone_id)


def digest_email(settings: Settings, delivery_id: uuid.UUID, to: str, zone_id: str, local_date: date,
                 alerts: list[AlertContent]) -> Email:
    count = f"{len(alerts)} alert" + ("" if len(alerts) == 1 else "s")
    return _message(settings, delivery_id, to, f"[ezone] Daily digest, {local_date:%d %B %Y}: {count}", "digest",
                    alerts=alerts, zone_id=zone_id, local_date=local_date, count=count)
