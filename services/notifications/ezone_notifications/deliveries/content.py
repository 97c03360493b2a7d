"""What a delivery carries: the webhook's JSON body and the emails (plain text and HTML), from stored alerts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, parseaddr
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

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


def _message(settings: Settings, delivery_id: uuid.UUID, to: str, subject: str, template: str, **context: Any) -> Message:
    context |= {"delivery_id": delivery_id,
                "preferences_url": f"{settings.ezone_notifications_url}/zones/{context['zone_id']}/members/me/preferences"}
    # The compat32 MIME classes, not EmailMessage: its header parsing cost more than all the rest of an alert.
    message = MIMEMultipart("alternative")
    message["From"] = settings.ezone_email_from
    message["To"] = to
    message["Subject"] = Header(_one_line(subject), "utf-8")
    message["Date"] = format_datetime(datetime.now(UTC))
    # The same id on every attempt: a mail client shows a resent message once.
    message["Message-ID"] = f"<{delivery_id}@{sender_domain(settings)}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to alerts
    message.attach(MIMEText(_templates.get_template(f"{template}.txt").render(**context), "plain", "utf-8"))
    message.attach(MIMEText(_templates.get_template(f"{template}.html").render(**context), "html", "utf-8"))
    return message


def sender_domain(settings: Settings) -> str:
    return parseaddr(settings.ezone_email_from)[1].rpartition("@")[2] or "ezone.local"


def alert_email(settings: Settings, delivery_id: uuid.UUID, to: str, alert: AlertContent) -> Message:
    return _message(settings, delivery_id, to, f"[ezone] {alert.severity.capitalize()}: {alert.title}", "alert",
                    alert=alert, zone_id=alert.zone_id)


def digest_email(settings: Settings, delivery_id: uuid.UUID, to: str, zone_id: str, local_date: date,
                 alerts: list[AlertContent]) -> Message:
    count = f"{len(alerts)} alert" + ("" if len(alerts) == 1 else "s")
    return _message(settings, delivery_id, to, f"[ezone] Daily digest, {local_date:%d %B %Y}: {count}", "digest",
                    alerts=alerts, zone_id=zone_id, local_date=local_date, count=count)
