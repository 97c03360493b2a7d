"""edfi_upserts: Ed-Fi single-record upserts (`POST /ed-fi/data/v3/ed-fi/studentAssessments`, one record per request)
with CONCURRENCY requests in flight, through the in-process app (httpx.ASGITransport) and through a real uvicorn on
127.0.0.1 (the service in its own processes, as deployed), with one worker process and with two: new
records, then the same records again. Each round also reports the CPU it cost per record: the service's
processes, PostgreSQL's and the load generator's (the bench process)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import orjson
import psutil
from rich.progress import Progress
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ezone_results.edfi import mcas
from tests.results_data import iter_student_results
from tests.stack import new_database

from .environment import BenchEnvironment
from .report import BenchResult, Figure
from .results_common import auth, is_quick, load_average, register_schools, results_app, results_server, school_code

# Requests in flight, each on its own keep-alive connection. An Ed-Fi bulk load (the Ed-Fi load tools, an SIS
# syncing a district) keeps tens to hundreds of single-record requests in flight against one API; 128 is in
# that range.
CONCURRENCY = 128
DATA = "/ed-fi/data/v3/ed-fi"
PATH = f"{DATA}/studentAssessments"
GRADE_NAMES = {"6": "Sixth grade", "7": "Seventh grade", "8": "Eighth grade"}
METHOD = "uri://ed-fi.org/AssessmentReportingMethodDescriptor#"

Post = Callable[[bytes], Awaitable[int]]  # sends one body, answers the status


def edfi_body(row: dict, code: str) -> dict:
    """A tests.results_data row as an Ed-Fi Data Standard 5 studentAssessment."""
    return {
        "studentAssessmentIdentifier": f"{row['student_id']}-{row['subject']}-{row['school_year']}",
        "assessmentReference": {"assessmentIdentifier": row["assessment_identifier"], "namespace": row["assessment_namespace"]},
        "studentReference": {"studentUniqueId": row["student_id"]},
        "schoolYearTypeReference": {"schoolYear": int(row["school_year"][:4]) + 1},
        "administrationDate": f"{row['administration_date']}T09:00:00",
        "reportedSchoolReference": {"schoolId": int(code)},
        "whenAssessedGradeLevelDescriptor": f"uri://ed-fi.org/GradeLevelDescriptor#{GRADE_NAMES[row['grade']]}",
        "scoreResults": [
            {"assessmentReportingMethodDescriptor": f"{METHOD}Scale score",
             "resultDatatypeTypeDescriptor": "uri://ed-fi.org/ResultDatatypeTypeDescriptor#Integer", "result": str(row["scale_score"])},
        ],
        "performanceLevels": [
            {"assessmentReportingMethodDescriptor": f"{METHOD}Proficiency level",
             "performanceLevelDescriptor": f"{mcas.LEVEL_NAMESPACE}#{row['performance_level']} Expectations"},
        ],
    }


async def describe_mcas(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """What a vendor posts before its students' results: MCAS's achievement levels and assessments."""
    for resource, documents in (("performanceLevelDescriptors", mcas.level_descriptors()),
                                ("assessments", mcas.assessments())):
        for document in documents:
            response = await client.post(f"http://results{DATA}/{resource}", json=document, headers=headers)
            response.raise_for_status()


def bodies(schools: list, codes: list[str], count: int, seed: int) -> list[bytes]:
    rows = ((row, code) for school, code in zip(schools, codes, strict=True)
            for subject in ("MATH", "ELA")
            for row in iter_student_results([school], students_per_school=300, school_year="2024-25", subject=subject, seed=seed)
            if "scale_score" in row)
    return [orjson.dumps(edfi_body(row, code)) for row, code in itertools.islice(rows, count)]


class HttpConnection:
    """One HTTP/1.1 keep-alive connection to the service. The load generator shares the two cores with the
    service: httpx.AsyncClient cost ~1.9 ms of CPU per request here, this ~0.15 ms. Every request is still
    a whole HTTP request (request line, headers with the bearer token, the body) parsed by uvicorn."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        self._address = (host, port)
        self._head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      + "".join(f"{name}: {value}\r\n" for name, value in headers.items())).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        if self._reader is None or self._reader.at_eof():  # new, or closed by uvicorn after its keep-alive timeout
            await self.close()
            self._reader, self._writer = await asyncio.open_connection(*self._address)
        assert self._writer is not None
        self._writer.write(self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        length = next((int(line.split(":", 1)[1]) for line in header_lines if line.lower().startswith("content-length:")), 0)
        if length:
            await self._reader.readexactly(length)
        return int(status_line.split(" ", 2)[1])

    async def close(self) -> None:
        if self._writer is not None:
            writer, self._reader, self._writer = self._writer, None, None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class CpuMeter:
    """CPU seconds (user + system) that a process, and the children it starts, use between two readings."""

    def __init__(self, root: psutil.Process, *, children: bool = True) -> None:
        self._root = root
        self._children = children
        self._start: dict[int, float] = {}

    def _reading(self) -> dict[int, float]:
        seconds: dict[int, float] = {}
        for process in (self._root, *(self._root.children(recursive=True) if self._children else ())):
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            seconds[process.pid] = times.user + times.system
        return seconds

    def start(self) -> None:
        self._start = self._reading()

    def seconds(self) -> float:
        """Since start(); a process started meanwhile counts from zero, one that ended is not counted."""
        return sum(used - self._start.get(pid, 0.0) for pid, used in self._reading().items())


# Nothing left behind a round: every event relayed, every review requested (with the results, by trigger) done.
_PIPELINE_BUSY = text("""
    SELECT (SELECT count(*) FROM results.outbox WHERE sent_at IS NULL)
         + (SELECT count(*) FROM results.review_requests)""")


async def wait_until_idle(engine: AsyncEngine, timeout_s: float = 600) -> float:
    """Seconds until the service has relayed and reviewed everything (seen twice in a row)."""
    started = time.perf_counter()
    idle_polls = 0
    while idle_polls < 2:
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"the results pipeline was still busy after {timeout_s:.0f} s")
        await asyncio.sleep(0.25)
        async with engine.connect() as conn:
            idle_polls = idle_polls + 1 if (await conn.execute(_PIPELINE_BUSY)).scalar_one() == 0 else 0
    return time.perf_counter() - started


def postgres_process(env: BenchEnvironment) -> psutil.Process:
    """The postmaster: its children are the backends serving the service's connections."""
    return psutil.Process(int((Path(env.postgres.data_dir) / "postmaster.pid").read_text().split()[0]))


async def drive(post: Post, payloads: list[bytes], progress: Progress, label: str) -> tuple[float, dict[int, int]]:
    """Send every payload, CONCURRENCY at a time; the wall time and the count per status."""
    statuses: dict[int, int] = {}
    queue = iter(payloads)
    bar = progress.add_task(label, total=len(payloads))

    async def sender() -> None:
        for payload in queue:
            status = await post(payload)
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 300 and statuses[status] == 1:
                progress.console.log(f"{label}: {status}")
            progress.advance(bar)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
    finally:
        progress.remove_task(bar)
    return time.perf_counter() - started, statuses


async def run(env: BenchEnvironment, progress: Progress) -> list[BenchResult]:
    quick = is_quick(env)
    count = 2_000 if quick else 15_000  # ~8 s a round at 2,000/s: 5,000 (~3 s) moved ~20 % from run to run
    load_before = load_average()
    database_url = await new_database(env.postgres)
    postgres = postgres_process(env)
    engine = create_async_engine(database_url)
    figures: list[Figure] = []
    notes = [f"concurrency {CONCURRENCY}, one studentAssessment per request, {count:,} records per round, admin token",
             "service runs its relay, consumers and review worker (each write queues its review request by trigger -> reviews) "
             "during the rounds, as deployed (with 2 uvicorn workers, each worker runs them)",
             "asgi: client httpx.ASGITransport in the bench process with the app; uvicorn: the service in its own "
             f"process(es), the client a minimal HTTP/1.1 keep-alive client ({CONCURRENCY} connections) in the bench process",
             "CPU per record: service = uvicorn processes (asgi: the whole bench process, client included), "
             "postgres = postmaster and backends, client = bench process; the 2 cores are shared by all three"]
    parameters: dict[str, object] = {"records": count, "concurrency": CONCURRENCY}
    n_schools = max(1, count // 600 + 1)
    schools_by_zone: dict[str, list] = {}

    async def rounds(mode: str, post: Post, zone: str, service: CpuMeter | None, seed: int) -> None:
        payloads = bodies(schools_by_zone[zone], [school_code(n) for n in range(n_schools)], count, seed)
        # warm-up records (school code cache, connections, prepared statements), not counted
        for n in range(2 * CONCURRENCY):
            warm = {**orjson.loads(payloads[0]), "studentAssessmentIdentifier": f"warm-{n}",
                    "studentReference": {"studentUniqueId": f"warm-up-{n}"}}
            await post(orjson.dumps(warm))
        await wait_until_idle(engine)
        # the bench process alone: PostgreSQL, the broker and uvicorn are its children
        database, client = CpuMeter(postgres), CpuMeter(psutil.Process(), children=False)
        for round_name, expect in (("new", 201), ("again", 200)):
            meters = [meter for meter in (service, database, client) if meter is not None]
            for meter in meters:
                meter.start()
            seconds, statuses = await drive(post, payloads, progress, f"Ed-Fi {mode}: {round_name}")
            service_s = (service or client).seconds()
            database_s, client_s = database.seconds(), client.seconds()
            ok = statuses.get(expect, 0)
            figures.append(Figure(f"{mode}_{round_name}_per_s", f"{mode}: {round_name} records", round(count / seconds), "records/s"))
            figures.append(Figure(f"{mode}_{round_name}_service_cpu_ms", f"{mode}: {round_name}, service CPU per record",
                                  round(service_s / count * 1000, 2), "ms"))
            figures.append(Figure(f"{mode}_{round_name}_postgres_cpu_ms", f"{mode}: {round_name}, PostgreSQL CPU per record",
                                  round(database_s / count * 1000, 2), "ms"))
            if service is not None:
                figures.append(Figure(f"{mode}_{round_name}_client_cpu_ms", f"{mode}: {round_name}, client CPU per record",
                                      round(client_s / count * 1000, 2), "ms"))
            notes.append(f"{mode} {round_name}: {count:,} in {seconds:.1f} s, statuses {statuses}, load 1m {load_average()}")
            if ok != count:
                notes.append(f"{mode} {round_name}: only {ok:,} of {count:,} answered {expect}")
            # The next round (or configuration) starts on an idle service, not during this one's reviews.
            notes.append(f"{mode} {round_name}: events relayed and reviewed {await wait_until_idle(engine):.1f} s "
                         f"after the round")

    zones = {"asgi": "bench-edfi-asgi", "uvicorn": "bench-edfi-uvicorn", "uvicorn_2_workers": "bench-edfi-uvicorn-2"}
    async with results_app(env, database_url) as (client, kit):
        for zone in zones.values():
            schools_by_zone[zone] = await register_schools(kit.engine, zone, n_schools)
        for zone in zones.values():
            await describe_mcas(client, auth(env, zone))
        headers = {**auth(env, zones["asgi"]), "Content-Type": "application/json"}

        async def post_asgi(body: bytes) -> int:
            return (await client.post(f"http://results{PATH}", content=body, headers=headers)).status_code

        await rounds("asgi", post_asgi, zones["asgi"], None, 1)
    for seed, (mode, workers) in enumerate((("uvicorn", 1), ("uvicorn_2_workers", 2)), start=2):
        # uvicorn reads its worker count from WEB_CONCURRENCY (the settings pass every override to the environment)
        with results_server(env, database_url, web_concurrency=workers) as (base, process):
            url = httpx.URL(base)
            headers = {**auth(env, zones[mode]), "Content-Type": "application/json"}
            connections = [HttpConnection(url.host, url.port, PATH, headers) for _ in range(CONCURRENCY)]
            idle = list(connections)

            async def post_http(body: bytes) -> int:
                connection = idle.pop()
                try:
                    return await connection.post(body)
                finally:
                    idle.append(connection)

            try:
                await rounds(mode, post_http, zones[mode], CpuMeter(process), seed)
            finally:
                await asyncio.gather(*(connection.close() for connection in connections))
    await engine.dispose()
    notes.insert(0, f"load average 1m: {load_before} before, {load_average()} after")
    return [BenchResult("edfi_upserts", figures, parameters, notes)]
