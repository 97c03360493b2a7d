"""The network calls: one email through SMTP, one signed webhook POST. Each returns its outcome; none raises."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import aiosmtplib
import httpx
from ezone_kit.telemetry import current_trace_headers

from ..config import Settings
from .content import WEBHOOK_EVENT, Email, sender_domain
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


@dataclass
class SmtpConnections:
    """Open SMTP sessions kept between messages: connecting, EHLO, STARTTLS and login are most of what one message
    costs both sides. Each session carries one message at a time. A session idle longer than `max_idle_s` is closed
    rather than reused: servers drop idle clients after a while (RFC 5321 asks them to wait at least 5 minutes)."""

    settings: Settings
    max_idle_s: float = 60.0
    _idle: list[tuple[aiosmtplib.SMTP, float]] = field(default_factory=list)

    async def send(self, message: Email) -> Outcome:
        reused = self._take_idle()
        if reused is not None:
            try:
                return await self._send_on(reused, message)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                pass  # the server closed the kept session meanwhile: not this message's failure, so send it anew
        try:
            client = await self._connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome(False, None, describe(exc))
        try:
            return await self._send_on(client, message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome(False, None, describe(exc))

    async def _send_on(self, client: aiosmtplib.SMTP, message: Email) -> Outcome:
        """Send on one session and keep it for the next message if all went well; a refusal is the message's outcome
        (the session is closed, so no half-finished transaction is carried over). A dropped session raises."""
        try:
            # An address beyond ASCII needs a server that takes SMTPUTF8; one that does not refuses the message.
            options = () if (message.sender + message.recipient).isascii() else ("SMTPUTF8",)
            await client.sendmail(message.sender, [message.recipient], message.data, mail_options=options)
        except aiosmtplib.SMTPResponseException as exc:  # the server answered, and refused
            await _quietly_close(client)
            return Outcome(False, exc.code, describe(exc))
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
            client.close()
            raise
        except (aiosmtplib.SMTPException, OSError) as exc:  # e.g. every recipient refused, a time-out
            await _quietly_close(client)
            return Outcome(False, None, describe(exc))
        except BaseException:
            client.close()
            raise
        self._keep(client)
        return Outcome(True, SMTP_ACCEPTED)

    def _take_idle(self) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if now - since < self.max_idle_s and client.is_connected:
                return client
            client.close()
        return None

    def _keep(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected and len(self._idle) < self.settings.ezone_delivery_concurrency:
            self._idle.append((client, time.monotonic()))
        else:
            client.close()

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self.settings
        client = aiosmtplib.SMTP(
            hostname=settings.ezone_smtp_host, port=settings.ezone_smtp_port, timeout=settings.ezone_delivery_timeout_s,
            start_tls=settings.ezone_smtp_starttls,
            # Named, so the client does not look up this host's FQDN (a DNS round trip) for every session.
            local_hostname=sender_domain(settings),
        )
        await client.connect()
        try:
            if settings.ezone_smtp_username and settings.ezone_smtp_password:
                await client.login(settings.ezone_smtp_username, settings.ezone_smtp_password)
        except BaseException:
            await _quietly_close(client)
            raise
        return client

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            await _quietly_close(client)


async def _quietly_close(client: aiosmtplib.SMTP) -> None:
    """QUIT when the session still answers; a broken one is just dropped."""
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


async def send_webhook(http: httpx.AsyncClient, url: str, secret: str, delivery_id: uuid.UUID, body: bytes) -> Outcome:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: str(delivery_id),
        EVENT_HEADER: WEBHOOK_EVENT,
        SIGNATURE_HEADER: signature_header(secret, body),  # signed at each attempt: its timestamp is the attempt's
        # The attempt's span, as an HTTP client sends it (W3C Trace Context): the receiver can join the alert's trace.
        **current_trace_headers(),
    }
    try:
        response = await http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(False, None, describe(exc))
    if response.is_success:
        return Outcome(True, response.status_code)
    return Outcome(False, response.status_code, f"HTTP {response.status_code}: {response.text[:_ERROR_LIMIT]}".rstrip(": "))
