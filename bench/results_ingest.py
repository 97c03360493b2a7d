"""results_ingest: bulk JSON ingest of student results (`POST /zones/{zone}/results`: rows checked column by column,
then one natural-key upsert reading them as a JSON document) against a raw `COPY` of the same rows into the same
table in the same run, and the naive path (row-by-row ORM inserts, one flush per row) on a smaller sample.

Beside the rates (wall clock), the CPU time each path cost per row, in this process and in all of PostgreSQL's
processes: on a shared machine, other work moves it much less than the rates."""

from __future__ import annotations

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
    """(JSON body, rows in it) per request, encoded before the clock starts: the client's cost is not the service's.
    No row object outlives its encoding: a client in its own process would not leave the service's garbage
    collector its rows to walk."""
    iterator = iter(rows)
    while body := _request_body(iterator, size):
        yield body


def _request_body(rows, size: int) -> tuple[bytes, int] | None:
    chunk = list(itertools.islice(rows, size))
    return (orjson.dumps({"rows": chunk}), len(chunk)) if chunk else None


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

        # 1. Raw COPY of the same rows (validated beforehand, untimed) into the same, empty table.
        import asyncpg
        columns = ("zone_id", *ResultRow.model_fields, "batch_id")
        copy_batch = uuid.uuid4()
        copy_s = 0.0
        bar = progress.add_task(f"raw COPY of {total:,} rows", total=total)
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        copy_cpu = (0.0, 0.0)
        try:
            for chunk in chunks(rows_of(schools), COPY_CHUNK):
                records = [(zone, *(r.__dict__[c] for c in ResultRow.model_fields), copy_batch)
                           for r in map(ResultRow.model_validate, chunk)]
                cpu_before, started = CpuTimes.now(env.postgres.data_dir), time.perf_counter()
                await conn.copy_records_to_table(table.split(".")[1], schema_name=table.split(".")[0], records=records,
                                                 columns=columns)
                copy_s += time.perf_counter() - started
                copy_cpu = tuple(map(sum, zip(copy_cpu, CpuTimes.now(env.postgres.data_dir).since(cpu_before))))
                progress.advance(bar, len(records))
        finally:
            await conn.close()
            progress.remove_task(bar)
        async with kit.engine.begin() as c:
            copied = (await c.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            await c.execute(text(f"TRUNCATE {table}"))
        async with kit.engine.connect() as c:
            await (await c.execution_options(isolation_level="AUTOCOMMIT")).execute(text(f"VACUUM ANALYZE {table}"))

        # 2. The API: JSON batches of request_rows, the upsert on the natural key, into the same emptied table.
        headers = {**auth(env, zone), "Content-Type": "application/json"}
        api_s = 0.0
        api_cpu = (0.0, 0.0)
        wall_started = time.perf_counter()
        inserted = 0
        bar = progress.add_task(f"POST /results, {size['request_rows']:,} rows a request", total=total)
        try:
            for body, count in request_bodies(rows_of(schools), size["request_rows"]):
                cpu_before, started = CpuTimes.now(env.postgres.data_dir), time.perf_counter()
                response = await client.post(f"/zones/{zone}/results", content=body, headers=headers)
                api_s += time.perf_counter() - started
                api_cpu = tuple(map(sum, zip(api_cpu, CpuTimes.now(env.postgres.data_dir).since(cpu_before))))
                assert response.status_code == 201, response.text[:500]
                inserted += response.json()["inserted"]
                progress.advance(bar, count)
        finally:
            progress.remove_task(bar)
        api_wall_s = time.perf_counter() - wall_started
        assert inserted == total, (inserted, total)

        # 3. Re-sending the first 10% unchanged: the upsert's "nothing changed" path.
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

    copy_rate = copied / copy_s
    api_rate = total / api_s
    notes += [
        f"load average 1m: {load_before} before, {load_average()} after",
        f"rows: {size['schools']:,} schools x {STUDENTS_PER_SCHOOL} students x {len(SUBJECTS)} subjects ({total:,}), "
        "generated by tests.results_data; ~2% not tested",
        "raw COPY: asyncpg copy_records_to_table in 50,000-row COPYs, autocommit, rows validated before the clock; "
        "the table was then truncated and vacuumed so the API path starts from the same empty table",
        "API: in-process app via httpx.ASGITransport, one request at a time, request bodies encoded before the clock; "
        "relay on, consumers and review worker off (no reviews compete); time = sum of request durations",
        f"API wall time including client-side body building: {api_wall_s:.1f} s",
        "CPU per row (user + system, while the timed calls ran): API {:.1f} µs in this process (the in-process service "
        "and its client) + {:.1f} µs in PostgreSQL; raw COPY {:.1f} µs in this process + {:.1f} µs in PostgreSQL".format(
            *(1e6 * seconds / total for seconds in api_cpu), *(1e6 * seconds / copied for seconds in copy_cpu)),
        "ORM: session.add + flush per row, commit per 1,000, into the table already holding the API's rows",
    ]
    figures = [
        Figure("api_rows_per_s", f"POST /results ({size['request_rows']:,}-row requests)", round(api_rate), "rows/s"),
        Figure("copy_rows_per_s", "raw COPY, same table", round(copy_rate), "rows/s"),
        Figure("api_vs_copy_pct", "API as % of raw COPY (target >= 40)", round(100 * api_rate / copy_rate, 1), "%"),
        Figure("api_seconds", f"POST /results, {total:,} rows", round(api_s, 1), "s"),
        Figure("copy_seconds", f"raw COPY, {copied:,} rows", round(copy_s, 1), "s"),
        Figure("resend_rows_per_s", f"re-sent unchanged ({resend:,} rows)", round(resend / resend_s), "rows/s"),
        Figure("orm_rows_per_s", f"naive ORM, {len(orm_rows):,}-row sample (extrapolated)", round(len(orm_rows) / orm_s), "rows/s"),
        Figure("orm_extrapolated_s", f"naive ORM, {total:,} rows (extrapolated)", round(total / (len(orm_rows) / orm_s)), "s"),
        Figure("api_cpu_us_per_row", "POST /results: CPU per row, service + PostgreSQL", round(1e6 * sum(api_cpu) / total, 1), "µs"),
        Figure("copy_cpu_us_per_row", "raw COPY: CPU per row, bench + PostgreSQL", round(1e6 * sum(copy_cpu) / copied, 1), "µs"),
    ]
    parameters = {"rows": total, "request_rows": size["request_rows"], "orm_sample_rows": len(orm_rows),
                  "schools": size["schools"], "copy_chunk": COPY_CHUNK}
    return [BenchResult("results_ingest", figures, parameters, notes)]
