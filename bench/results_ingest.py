"""results_ingest: bulk JSON ingest of student results (`POST /zones/{zone}/results`: rows checked column by column,
then one natural-key upsert reading them as a JSON document) against a raw `COPY` of the same rows into the same
table in the same run, each one at a time and two at a time (two requests in flight; two COPY connections), and the
naive path (row-by-row ORM inserts, one flush per row) on a smaller sample.

Beside the rates (wall clock), the CPU time each path cost per row, in this process and in all of PostgreSQL's
processes: on a shared machine, other work moves it much less than the rates."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil
from ezone_kit.db import asyncpg_dsn
from rich.progress import Progress
from sqlalchemy import text

from ezone_results.ingest.schemas import ResultRow
from ezone_results.models import StudentResult
from tests.results_data import iter_student_results
from tests.stack import new_database

from .environment import BenchEnvironment
from .report import BenchResult, Figure
from .results_common import auth, is_quick, load_average, register_schools, results_app

STUDENTS_PER_SCHOOL = 500
SUBJECTS = ("ELA", "MATH")  # MATH and ELA for every grade: 2 rows per student
SCHOOL_YEAR = "2024-25"
COPY_CHUNK = 50_000
BODY_WINDOW = 20  # requests encoded ahead, off the clock (~35 MB of JSON at 5,000 rows a request)


def sizes(quick: bool) -> dict[str, int]:
    # rows = schools x 500 students x 2 subjects
    return {"schools": 50, "request_rows": 5_000, "orm_rows": 1_000} if quick else \
           {"schools": 1_000, "request_rows": 5_000, "orm_rows": 5_000}


def rows_of(schools: list[uuid.UUID]):
    for school in schools:  # school by school, both subjects: a district's SIS export order
        for subject in SUBJECTS:
            yield from iter_student_results([school], students_per_school=STUDENTS_PER_SCHOOL, school_year=SCHOOL_YEAR,
                                            subject=subject)


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds used so far by this process and by each process of the PostgreSQL server."""

    own: float
    postgres: dict[int, float]

    @classmethod
    def now(cls, data_dir: Path) -> CpuTimes:
        postmaster = psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))
        postgres = {}
        for process in [postmaster, *postmaster.children()]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            postgres[process.pid] = times.user + times.system
        return cls(time.process_time(), postgres)

    def since(self, before: CpuTimes) -> tuple[float, float]:
        """(this process, PostgreSQL) seconds since `before`; a server process that ended meanwhile is not counted."""
        postgres = sum(seconds - before.postgres.get(pid, 0.0) for pid, seconds in self.postgres.items())
        return self.own - before.own, postgres


def chunks(iterable, size: int):
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def request_bodies(rows, size: int):
    """(JSON body, rows in it) per request. No row object outlives its encoding: a client in its own process would
    not leave the service's garbage collector its rows to walk."""
    iterator = iter(rows)
    while body := _request_body(iterator, size):
        yield body


def _request_body(rows, size: int) -> tuple[bytes, int] | None:
    chunk = list(itertools.islice(rows, size))
    return (orjson.dumps({"rows": chunk}), len(chunk)) if chunk else None


@dataclass
class Timed:
    """Rows moved, seconds on the clock, and CPU seconds (this process, PostgreSQL) while the clock ran."""

    rows: int = 0
    seconds: float = 0.0
    own_cpu: float = 0.0
    postgres_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    def cpu_us_per_row(self) -> tuple[float, float]:
        return 1e6 * self.own_cpu / self.rows, 1e6 * self.postgres_cpu / self.rows

    async def clock(self, data_dir: Path, work, rows: int) -> None:
        """Time `work` (a coroutine): only it is on the clock, not what prepared its input."""
        cpu_before, started = CpuTimes.now(data_dir), time.perf_counter()
        await work
        self.seconds += time.perf_counter() - started
        own, postgres = CpuTimes.now(data_dir).since(cpu_before)
        self.own_cpu, self.postgres_cpu = self.own_cpu + own, self.postgres_cpu + postgres
        self.rows += rows


async def raw_copy(env: BenchEnvironment, database_url: str, table: str, zone: str, schools: list[uuid.UUID],
                   connections: int, progress: Progress) -> Timed:
    """COPY every row into the empty table, `connections` COPYs at a time (one chunk each), rows validated
    before the clock."""
    import asyncpg
    schema, name = table.split(".")
    columns = ("zone_id", *ResultRow.model_fields, "batch_id")
    copy_batch = uuid.uuid4()
    timed = Timed()
    total = len(schools) * STUDENTS_PER_SCHOOL * len(SUBJECTS)
    bar = progress.add_task(f"raw COPY of {total:,} rows, {connections} at a time", total=total)
    pool = [await asyncpg.connect(asyncpg_dsn(database_url)) for _ in range(connections)]
    try:
        for group in chunks(chunks(rows_of(schools), COPY_CHUNK), connections):
            records = [[(zone, *(r.__dict__[c] for c in ResultRow.model_fields), copy_batch)
                        for r in map(ResultRow.model_validate, chunk)] for chunk in group]
            work = asyncio.gather(*(conn.copy_records_to_table(name, schema_name=schema, records=part, columns=columns)
                                    for conn, part in zip(pool, records)))
            await timed.clock(env.postgres.data_dir, work, sum(map(len, records)))
            progress.advance(bar, sum(map(len, records)))
    finally:
        for conn in pool:
            await conn.close()
        progress.remove_task(bar)
    return timed


async def post_all(env: BenchEnvironment, client, zone: str, schools: list[uuid.UUID], request_rows: int, in_flight: int,
                   progress: Progress) -> Timed:
    """POST every row in `request_rows`-row requests, `in_flight` at a time: a client keeping that many requests
    open, as bulk loaders do. Bodies are encoded before the clock, BODY_WINDOW at a time."""
    headers = {**auth(env, zone), "Content-Type": "application/json"}
    timed = Timed()
    total = len(schools) * STUDENTS_PER_SCHOOL * len(SUBJECTS)
    bar = progress.add_task(f"POST /results, {request_rows:,} rows a request, {in_flight} in flight", total=total)
    slots = asyncio.Semaphore(in_flight)
    inserted = 0

    async def post(body: bytes, count: int) -> None:
        nonlocal inserted
        async with slots:
            response = await client.post(f"/zones/{zone}/results", content=body, headers=headers)
        assert response.status_code == 201, response.text[:500]
        inserted += response.json()["inserted"]
        progress.advance(bar, count)

    try:
        for window in chunks(request_bodies(rows_of(schools), request_rows), BODY_WINDOW):
            work = asyncio.gather(*(post(body, count) for body, count in window))
            await timed.clock(env.postgres.data_dir, work, sum(count for _, count in window))
    finally:
        progress.remove_task(bar)
    assert inserted == total, (inserted, total)
    return timed


async def empty_table(engine, table: str) -> None:
    """Truncated, vacuumed and checkpointed: each path starts from the same empty table, and none pays for the
    checkpoint the write-ahead log of the ones before it would otherwise force (every path writes ~0.5 GB of it)."""
    async with engine.begin() as c:
        await c.execute(text(f"TRUNCATE {table}"))
    async with engine.connect() as c:
        autocommit = await c.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text(f"VACUUM ANALYZE {table}"))
        await autocommit.execute(text("CHECKPOINT"))


async def run(env: BenchEnvironment, progress: Progress) -> list[BenchResult]:
    quick = is_quick(env)
    size = sizes(quick)
    load_before = load_average()
    database_url = await new_database(env.postgres)
    zone = "bench-ingest"
    notes: list[str] = []
    async with results_app(env, database_url, ezone_run_consumers=False) as (client, kit):
        schools = await register_schools(kit.engine, zone, size["schools"])
        total = size["schools"] * STUDENTS_PER_SCHOOL * len(SUBJECTS)
        table = StudentResult.__table__.fullname

        # 1. Raw COPY of the same rows into the same, empty table: one COPY at a time, then two.
        copies = {}
        for connections in (1, 2):
            await empty_table(kit.engine, table)
            copies[connections] = await raw_copy(env, database_url, table, zone, schools, connections, progress)
            async with kit.engine.connect() as c:
                copied = (await c.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            assert copied == total, (copied, total)

        # 2. The API: JSON batches of request_rows, the upsert on the natural key, into the same emptied table; one
        #    request at a time, then two.
        posts = {}
        for in_flight in (1, 2):
            await empty_table(kit.engine, table)
            posts[in_flight] = await post_all(env, client, zone, schools, size["request_rows"], in_flight, progress)

        # 3. Re-sending the first 10% unchanged: the upsert's "nothing changed" path.
        headers = {**auth(env, zone), "Content-Type": "application/json"}
        resend = max(size["request_rows"], total // 10)
        resend_s = 0.0
        for body, count in request_bodies(itertools.islice(rows_of(schools), resend), size["request_rows"]):
            started = time.perf_counter()
            response = await client.post(f"/zones/{zone}/results", content=body, headers=headers)
            resend_s += time.perf_counter() - started
            assert response.status_code == 201 and response.json()["unchanged"] == count, response.text[:300]

        # 4. Naive ORM: one StudentResult object and one flush per row, a commit per 1,000 rows (sample, other zone).
        orm_zone = "bench-orm"
        orm_schools = await register_schools(kit.engine, orm_zone, size["orm_rows"] // 1_000 + 1)
        orm_rows = [ResultRow.model_validate(r) for r in itertools.islice(rows_of(orm_schools), size["orm_rows"])]
        orm_batch = uuid.uuid4()
        started = time.perf_counter()
        async with kit.sessions() as session:
            for chunk in chunks(orm_rows, 1_000):
                for row in chunk:
                    session.add(StudentResult(zone_id=orm_zone, batch_id=orm_batch, **row.__dict__))
                    await session.flush()
                await session.commit()
        orm_s = time.perf_counter() - started

    api, api_2, copy, copy_2 = posts[1], posts[2], copies[1], copies[2]
    notes += [
        f"load average 1m: {load_before} before, {load_average()} after",
        f"rows: {size['schools']:,} schools x {STUDENTS_PER_SCHOOL} students x {len(SUBJECTS)} subjects ({total:,}), "
        "generated by tests.results_data; ~2% not tested",
        f"raw COPY: asyncpg copy_records_to_table in {COPY_CHUNK:,}-row COPYs on 1 connection, then 2 connections "
        "(a COPY each at a time), autocommit, rows validated before the clock; the table was then truncated and "
        "vacuumed so each path starts from the same empty table",
        "API: in-process app via httpx.ASGITransport, one request at a time, then two in flight (a client keeping two "
        f"requests open); request bodies encoded before the clock, {BODY_WINDOW} at a time; relay on, consumers and "
        "review worker off (no reviews compete); time = the clock while requests ran",
        "CPU per row (user + system, while the clock ran): API one at a time {:.1f} µs in this process (the in-process "
        "service and its client) + {:.1f} µs in PostgreSQL; raw COPY one at a time {:.1f} µs in this process + {:.1f} µs "
        "in PostgreSQL".format(*api.cpu_us_per_row(), *copy.cpu_us_per_row()),
        "ORM: session.add + flush per row, commit per 1,000, into the table already holding the API's rows",
    ]
    figures = [
        Figure("api_rows_per_s", f"POST /results ({size['request_rows']:,}-row requests), one at a time", round(api.rate), "rows/s"),
        Figure("copy_rows_per_s", "raw COPY, same table, one at a time", round(copy.rate), "rows/s"),
        Figure("api_vs_copy_pct", "API as % of raw COPY, one at a time each", round(100 * api.rate / copy.rate, 1), "%"),
        Figure("api_2_rows_per_s", "POST /results, two requests in flight", round(api_2.rate), "rows/s"),
        Figure("copy_2_rows_per_s", "raw COPY, two connections", round(copy_2.rate), "rows/s"),
        Figure("api_2_vs_copy_pct", "API two in flight as % of raw COPY one at a time", round(100 * api_2.rate / copy.rate, 1), "%"),
        Figure("api_2_vs_copy_2_pct", "API two in flight as % of raw COPY on two connections (aim >= 40; like for like)", round(100 * api_2.rate / copy_2.rate, 1), "%"),
        Figure("api_seconds", f"POST /results, {total:,} rows, one at a time", round(api.seconds, 1), "s"),
        Figure("copy_seconds", f"raw COPY, {total:,} rows, one at a time", round(copy.seconds, 1), "s"),
        Figure("resend_rows_per_s", f"re-sent unchanged ({resend:,} rows)", round(resend / resend_s), "rows/s"),
        Figure("orm_rows_per_s", f"naive ORM, {len(orm_rows):,}-row sample (extrapolated)", round(len(orm_rows) / orm_s), "rows/s"),
        Figure("orm_extrapolated_s", f"naive ORM, {total:,} rows (extrapolated)", round(total / (len(orm_rows) / orm_s)), "s"),
        Figure("api_cpu_us_per_row", "POST /results: CPU per row, service + PostgreSQL", round(sum(api.cpu_us_per_row()), 1), "µs"),
        Figure("copy_cpu_us_per_row", "raw COPY: CPU per row, bench + PostgreSQL", round(sum(copy.cpu_us_per_row()), 1), "µs"),
    ]
    parameters = {"rows": total, "request_rows": size["request_rows"], "orm_sample_rows": len(orm_rows),
                  "schools": size["schools"], "copy_chunk": COPY_CHUNK, "body_window": BODY_WINDOW}
    return [BenchResult("results_ingest", figures, parameters, notes)]
