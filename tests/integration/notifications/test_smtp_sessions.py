"""Alert emails share SMTP sessions: one connection carries message after message, and a session the server
dropped meanwhile is replaced without the message failing."""

from __future__ import annotations

from email.mime.text import MIMEText
from pathlib import Path

from ezone_notifications.config import Settings
from ezone_notifications.deliveries.content import Email
from ezone_notifications.deliveries.sending import SmtpConnections

from ezone.stack import SmtpSink


class PeerRecordingSink(SmtpSink):
    """Also notes the client's address of each message: a new TCP connection has a new client port."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.peers: list[tuple[str, int]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001 - aiosmtpd's handler hook
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


def _message(n: int) -> Email:
    message = MIMEText(f"alert {n}")
    message["From"] = "alerts@ezone.local"
    message["To"] = f"member-{n}@example.org"
    message["Subject"] = f"Alert {n}"
    return Email("alerts@ezone.local", f"member-{n}@example.org", message.as_bytes())


async def test_consecutive_emails_share_one_session_and_a_dropped_session_is_replaced_without_failing(tmp_path):
    sink = PeerRecordingSink(tmp_path)
    sink.start()
    smtp = SmtpConnections(Settings(ezone_smtp_host=sink.host, ezone_smtp_port=sink.port))
    try:
        outcomes = [await smtp.send(_message(n)) for n in range(3)]
        assert [outcome.sent for outcome in outcomes] == [True, True, True]
        assert len(sink.peers) == 3 and len(set(sink.peers)) == 1

        # The server goes away and comes back: the kept session is dead, and the next message takes a new one.
        sink.stop()
        sink.start()
        outcome = await smtp.send(_message(3))
        assert outcome.sent, outcome.error
        assert len(sink.peers) == 4 and sink.peers[3] != sink.peers[0]
        assert [m["Subject"] for m in sink.messages] == ["Alert 0", "Alert 1", "Alert 2", "Alert 3"]
    finally:
        await smtp.close()
        sink.stop()


async def test_an_email_to_a_server_that_is_not_there_fails_with_the_reason_and_keeps_no_session(tmp_path):
    sink = SmtpSink(tmp_path)  # never started: nothing listens on its port
    smtp = SmtpConnections(Settings(ezone_smtp_host=sink.host, ezone_smtp_port=sink.port, ezone_delivery_timeout_s=2))
    outcome = await smtp.send(_message(0))
    assert not outcome.sent and outcome.status_code is None
    assert "connect" in outcome.error.lower()
    await smtp.close()
