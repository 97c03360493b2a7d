"""The trace of one alert as `ezone up` runs the zone (real processes), exported by OTLP/HTTP to a receiver in the
test: one trace from the SIS's POST to the board member's email and the webhook request, and every span a service
exports continues something or starts a trace by design."""

from __future__ import annotations

import asyncio
import gzip
import mailbox
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx
import pytest
from ezone_kit.db import asyncpg_dsn
from ezone_kit.devkeys import mint_token
from ezone_schemas import ReviewCompleted, topics
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ezone.local import read_state
from ezone.services import SERVICES
from ezone.stack import free_port
from tests.helpers import school_code
from tests.integration.test_alert_trace import low_participation_batch
from tests.integration.up_support import four_free_ports, start_up, stop_with_ctrl_c, wait_until_ready

pytestmark = pytest.mark.slow

KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = 2, 3, 4, 5  # OTLP's Span.SpanKind
PATIENCE_S = 60.0  # a deadline against a hang, not a measure


@dataclass
class ExportedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    links: list[tuple[str, str]]  # (trace id, span id)
    attributes: dict[str, object]


@dataclass
class Receivers:
    """An OTLP/HTTP traces endpoint and a webhook endpoint, each recording what it got."""

    spans: list[ExportedSpan] = field(default_factory=list)
    hooks: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _value(any_value) -> object:  # noqa: ANN001 - an OTLP AnyValue
    return getattr(any_value, any_value.WhichOneof("value")) if any_value.WhichOneof("value") else None


def _handler(received: Receivers) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                spans = [
                    ExportedSpan(
                        service=next(str(_value(a.value)) for a in resource.resource.attributes
                                     if a.key == "service.name"),
                        name=span.name, kind=span.kind, trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                        attributes={a.key: _value(a.value) for a in span.attributes})
                    for resource in request.resource_spans for scope in resource.scope_spans for span in scope.spans
                ]
                with received.lock:
                    received.spans += spans
                answer = ExportTraceServiceResponse().SerializeToString()
            else:  # the webhook
                with received.lock:
                    received.hooks.append({name.lower(): value for name, value in self.headers.items()})
                answer = b"{}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@pytest.fixture
def receivers() -> Iterator[tuple[Receivers, int]]:
    received = Receivers()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(received))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, server.server_address[1]
    server.shutdown()


def wait_until(what: str, reached) -> object:  # noqa: ANN001 - a callable returning something truthy when done
    deadline = time.monotonic() + PATIENCE_S
    while not (found := reached()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)
    return found


def database(home, statement: str, *args: object) -> None:  # noqa: ANN001 - a Path
    async def run() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(read_state(home)["settings"]["database_url"]))
        try:
            await connection.execute(statement, *args)
        finally:
            await connection.close()

    asyncio.run(run())


def test_ezone_up_exports_one_trace_from_the_sis_post_to_the_email_and_the_webhook(tmp_path, monkeypatch, receivers):
    received, port = receivers
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # spans arrive within the test's patience
    home = tmp_path / ".ezone"
    port_base, broker_port = four_free_ports(), free_port()
    up, log = start_up(home, port_base, broker_port, "--no-demo")
    try:
        for i in range(len(SERVICES)):
            wait_until_ready(port_base + i, timeout_s=90)
        plans, results, notifications = (f"http://127.0.0.1:{port_base + i}" for i in (0, 1, 3))
        zone, member = f"trace-{uuid.uuid4().hex[:6]}", "board-seat-1@trace.example"
        admin = {"Authorization": f"Bearer {mint_token(home / 'keys', role='admin', zone=zone)}"}
        board = {"Authorization": f"Bearer {mint_token(home / 'keys', role='board', zone=zone, subject=member)}"}
        assert httpx.post(f"{plans}/zones", headers=admin,
                          json={"id": zone, "name": "Trace", "district": "D"}).is_success
        assert httpx.post(f"{plans}/zones/{zone}/board-members", headers=admin, json={
            "name": "Maria Alvarez", "subject": member, "seat": 1, "appointed_by": "district",
            "active_from": "2024-07-01"}).is_success
        created = httpx.post(f"{plans}/zones/{zone}/schools", headers=admin,
                             json={"code": school_code(), "name": "John J Duggan Academy", "grade_span": "6-12"})
        assert created.is_success, created.text
        school_id = uuid.UUID(created.json()["id"])
        wait_until("results knows the school",
                   lambda: httpx.get(f"{results}/zones/{zone}/schools", headers=board).json())
        webhook = httpx.post(f"{notifications}/zones/{zone}/webhooks", headers=board,
                             json={"url": f"http://127.0.0.1:{port}/hooks/ezone"})
        assert webhook.status_code == 201, webhook.text

        # The key's last review looks as if it was made just now: both batches wait out the cooldown in one request.
        year = "3001-02"
        database(home, "INSERT INTO results.reviews (id, zone_id, school_id, school_year, subject, version, status,"
                       " metrics, goals, flags, batch_ids, created_at) VALUES ($1, $2, $3, $4, 'MATH', 0, 'meeting',"
                       " '[]', '[]', '[]', '[]', now() + interval '1 hour')", uuid.uuid4(), zone, school_id, year)
        first, second = secrets.token_hex(16), secrets.token_hex(16)
        sis = {"Authorization": f"Bearer {mint_token(home / 'keys', role='sis', zone=zone, schools=[str(school_id)])}"}
        for trace_id, seed in ((first, 0), (second, 1)):
            posted = httpx.post(f"{results}/zones/{zone}/results", timeout=30,
                                json={"rows": low_participation_batch(school_id, year, seed)},
                                headers={**sis, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
            assert posted.status_code == 201, posted.text
        database(home, "DELETE FROM results.reviews WHERE school_id = $1 AND version = 0", school_id)

        wait_until("the webhook request", lambda: received.hooks)
        wait_until("the email",
                   lambda: any(member in (m["To"] or "") for m in mailbox.mbox(home / "mail" / "ezone.mbox")))
        [alert] = wait_until("the alert in the inbox",
                             lambda: httpx.get(f"{notifications}/zones/{zone}/alerts", headers=board).json()["items"])
        assert alert["trace_id"] == first

        def traced(name: str, kind: int, **attributes: object) -> list[ExportedSpan]:
            with received.lock:
                return [s for s in received.spans if s.trace_id == first and s.name == name and s.kind == kind
                        and all(s.attributes.get(k) == v for k, v in attributes.items())]

        [review] = wait_until("the review's span", lambda: traced("review", 1))
        assert review.service == "ezone-results" and review.attributes["ezone.review.version"] == 1
        assert [trace_id for trace_id, _ in review.links] == [second], "the coalesced batch"
        [send] = wait_until("the review.completed send", lambda: traced(
            f"send {topics.RESULTS}", KIND_PRODUCER, **{"cloudevents.event_type": ReviewCompleted.ce_type}))
        assert send.parent_span_id == review.span_id and send.attributes["messaging.operation.name"] == "send"
        [processed] = wait_until("the notifications process span", lambda: [
            s for s in traced(f"process {topics.RESULTS}", KIND_CONSUMER) if s.service == "ezone-notifications"])
        assert processed.parent_span_id == send.span_id and processed.links == [(first, send.span_id)]
        [compose] = wait_until("the alert's composition", lambda: traced("compose alerts", 1))
        [email] = wait_until("the email's span", lambda: traced("send email", KIND_CLIENT))
        [post] = wait_until("the webhook request's span", lambda: traced("POST", KIND_CLIENT))
        assert compose.parent_span_id == processed.span_id
        assert email.parent_span_id == compose.span_id and post.parent_span_id == compose.span_id
        assert received.hooks[0]["traceparent"].split("-")[1:3] == [first, post.span_id]
        with received.lock:
            assert [s.service for s in received.spans if s.trace_id == first and s.kind == KIND_SERVER] == [
                "ezone-results"], "the SIS's POST starts the trace"

        with received.lock:
            orphans = [(s.service, s.name) for s in received.spans
                       if not s.parent_span_id and not s.links and s.kind != KIND_SERVER]
        assert not orphans, f"spans with neither a parent nor a link (only HTTP requests start traces): {orphans}"
    finally:
        if up.poll() is None:
            stop_with_ctrl_c(up, log, home)
