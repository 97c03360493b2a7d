"""The request body limit (`EZONE_MAX_REQUEST_BODY_BYTES`, kit middleware): a body over it is answered 413 with
problem details before a byte of it is read, on every service; a chunked one is cut off at the limit; bodies under
it and the streamed CSV upload (of any size) go through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson

from ezone_kit.settings import KitSettings
from ezone_kit.telemetry import receive_spans
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tests.helpers import register_zone, scalar, school_code
from tests.integration.results.ingest_support import YEAR, IngestZone, ingest_zone
from tests.integration.results.test_ingest_csv import csv_text
from tests.integration.test_metrics import points
from tests.integration.test_registry_api import assert_problem
from tests.results_data import iter_student_results, student_results
from tests.stack import served

LIMIT = KitSettings().ezone_max_request_body_bytes
MIB = 2**20
OVERSIZE = 20_000_000  # bytes


class Body:
    """A request body sent in 1 MiB pieces, which counts how much of it the server pulled."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), MIB):
            piece = self.data[start:start + MIB]
            self.pulled += len(piece)
            yield piece


def padded(document: object, size: int = OVERSIZE) -> bytes:
    """`document` as JSON, padded with insignificant whitespace to `size` bytes: a body a parser would accept."""
    compact = orjson.dumps(document)
    assert len(compact) < size
    return compact[:-1] + b" " * (size - len(compact)) + compact[-1:]


def batch(zone: IngestZone, rows: int = 10_000) -> dict:
    return {"rows": student_results(zone.schools[:1], students_per_school=rows, school_year=YEAR, subject="MATH")}


def assert_body_limit_problem(response: httpx.Response, limit: int = LIMIT) -> dict:
    problem = assert_problem(response, 413)
    assert problem["type"] == "https://ezone.dev/problems/content-too-large"
    assert problem["max_body_bytes"] == limit
    assert f"{limit:,} bytes" in problem["detail"]
    assert "smaller batches" in problem["detail"] and "/results/csv" in problem["detail"]
    return problem


async def test_the_default_limit_holds_a_10000_row_json_batch_with_headroom():
    rows = student_results(["7d1d6d5e-3f0a-4a55-9a0c-2b9a1c6f3e10"], students_per_school=10_000, school_year=YEAR, subject="MATH")
    indented = orjson.dumps({"rows": rows}, option=orjson.OPT_INDENT_2)
    assert LIMIT == 16 * MIB
    assert len(indented) * 2 < LIMIT < OVERSIZE


async def test_a_json_batch_announcing_more_than_the_limit_is_refused_unread_and_nothing_is_stored(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    body = Body(padded(batch(zone)))  # 10,000 valid rows: read, it would be stored

    response = await zone.request("POST", "/results", content=body, headers={
        "Content-Type": "application/json", "Content-Length": str(len(body.data)), "Idempotency-Key": "big-1"})

    problem = assert_body_limit_problem(response)
    assert "20,000,000 bytes (Content-Length)" in problem["detail"]
    assert problem["instance"] == f"/zones/{zone_id}/results"
    assert body.pulled == 0  # answered before a byte of the body was read, so never parsed
    assert (await zone.stored(), await zone.batches(), await zone.outbox_events()) == (0, 0, 0)


async def test_another_services_write_endpoint_refuses_a_body_over_the_limit_unread(zone_stack, zone_id):
    await register_zone(zone_stack, zone_id)
    school = {"code": school_code(), "name": "Padded Middle School", "grade_span": "6-8", "enrollment": 400}
    body = Body(padded(school))
    headers = {**zone_stack.auth("admin", zone_id), "Content-Type": "application/json"}
    schools = "SELECT count(*) FROM plans.schools WHERE zone_id = :z"

    response = await zone_stack.clients["plans"].post(f"/zones/{zone_id}/schools", content=body,
                                                      headers={**headers, "Content-Length": str(len(body.data))})

    assert_body_limit_problem(response)
    assert body.pulled == 0
    assert await scalar(zone_stack, schools, z=zone_id) == 0
    # The same school, compact, is one plans stores: the refusal, not the document, kept it out.
    stored = await zone_stack.clients["plans"].post(f"/zones/{zone_id}/schools", content=orjson.dumps(school), headers=headers)
    assert stored.status_code == 201, stored.text
    assert await scalar(zone_stack, schools, z=zone_id) == 1


async def test_an_edfi_post_answered_before_the_router_is_refused_over_the_limit_unread_and_still_traced(
        zone_stack, zone_id, metric_reader):
    exporter = InMemorySpanExporter()
    receive_spans(SimpleSpanProcessor(exporter))
    await register_zone(zone_stack, zone_id)
    route = "/ed-fi/data/v3/ed-fi/{name}"
    body = Body(padded({"namespace": "uri://ezone.test/AcademicSubjectDescriptor", "codeValue": "Padded",
                        "shortDescription": "Padded"}))
    try:
        response = await zone_stack.clients["results"].post(
            "/ed-fi/data/v3/ed-fi/academicSubjectDescriptors", content=body,
            headers={**zone_stack.auth("admin", zone_id), "Content-Type": "application/json",
                     "Content-Length": str(len(body.data))})
    finally:
        exporter.shutdown()

    assert_body_limit_problem(response)
    assert body.pulled == 0
    [span] = [span for span in exporter.get_finished_spans()
              if span.kind == SpanKind.SERVER and span.attributes.get("http.route") == route]
    assert span.name == f"POST {route}" and span.attributes["http.response.status_code"] == 413
    assert any(point.attributes.get("http.route") == route and point.attributes["http.response.status_code"] == 413
               for point in points(metric_reader, "http.server.request.duration"))


async def test_a_chunked_body_is_cut_off_at_the_limit_with_the_same_413(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    results = Body(padded(batch(zone)))  # no Content-Length: sent chunked
    response = await zone.request("POST", "/results", content=results, headers={"Content-Type": "application/json"})
    problem = assert_body_limit_problem(response)
    assert "without a Content-Length (chunked)" in problem["detail"]
    assert LIMIT < results.pulled <= LIMIT + MIB < OVERSIZE  # read up to the limit, not further
    assert (await zone.stored(), await zone.batches(), await zone.outbox_events()) == (0, 0, 0)

    # A body FastAPI reads for its endpoint (plans) is cut off the same way.
    school = {"code": school_code(), "name": "Chunked Middle School", "grade_span": "6-8"}
    plans = Body(padded(school))
    response = await zone_stack.clients["plans"].post(f"/zones/{zone_id}/schools", content=plans, headers={
        **zone_stack.auth("admin", zone_id), "Content-Type": "application/json"})
    assert_body_limit_problem(response)
    assert LIMIT < plans.pulled <= LIMIT + MIB
    assert await scalar(zone_stack, "SELECT count(*) FROM plans.schools WHERE zone_id = :z", z=zone_id) == 1  # ingest_zone's


async def test_a_10000_row_batch_under_the_limit_is_stored_whether_sent_with_a_length_or_chunked(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    document = batch(zone)
    chunked = Body(orjson.dumps(document))
    assert 3 * MIB < len(chunked.data) < LIMIT

    response = await zone.request("POST", "/results", content=chunked, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert chunked.pulled == len(chunked.data)
    assert response.json()["inserted"] == 10_000
    again = await zone.request("POST", "/results", content=chunked.data, headers={"Content-Type": "application/json"})
    assert again.status_code == 201, again.text
    assert again.json()["unchanged"] == 10_000
    assert await zone.stored() == 10_000


async def test_the_streamed_csv_upload_takes_a_file_larger_than_the_limit(zone_stack, zone_id):
    """On a results API served with a 1 MiB limit (a file over the default 16 MiB would take long to store), over
    real HTTP: a JSON batch over it is refused, a larger CSV file is stored."""
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows = list(iter_student_results(zone.schools, students_per_school=9_000, school_year=YEAR, subject="ELA"))
    csv_file = csv_text(rows).encode()
    assert len(csv_file) > MIB

    async with served(zone_stack, "results", ezone_max_request_body_bytes=MIB) as base, \
            httpx.AsyncClient(base_url=base, headers=zone.auth(), timeout=60) as client:
        refused = await client.post(f"/zones/{zone_id}/results", content=padded({"rows": rows[:10]}, 2 * MIB),
                                    headers={"Content-Type": "application/json"})
        assert_body_limit_problem(refused, MIB)
        assert await zone.stored() == 0

        response = await client.post(f"/zones/{zone_id}/results/csv", content=csv_file, headers={"Content-Type": "text/csv"})
        assert response.status_code == 201, response.text
        assert (response.json()["inserted"], response.json()["rejected"]) == (9_000, 0)
        chunked = Body(csv_file)  # chunked past the limit too
        response = await client.post(f"/zones/{zone_id}/results/csv", content=chunked, headers={"Content-Type": "text/csv"})
        assert response.status_code == 201, response.text
        assert response.json()["unchanged"] == 9_000
        assert chunked.pulled == len(csv_file)
    assert await zone.stored() == 9_000
