"""csv_memory: the results service's memory during a 1M-row CSV upload. The service runs as a real uvicorn
subprocess against the embedded PostgreSQL and broker; this process generates the CSV on the fly and streams it
(`POST /zones/{zone}/results/csv`, chunked) while a thread samples the service process's RSS with psutil."""

from __future__ import annotations

import io
import csv
import time

import httpx
from rich.progress import Progress

from ezone_results.ingest.schemas import ResultRow
from tests.results_data import iter_student_results
from tests.stack import new_database

from .environment import BenchEnvironment
from .report import BenchResult, Figure
from .results_common import RssSampler, auth, is_quick, load_average, register_schools, results_app, results_server

MB = 2**20
STUDENTS_PER_SCHOOL = 500
SUBJECTS = ("ELA", "MATH")
LINES_PER_CHUNK = 2_000
COLUMNS = list(ResultRow.model_fields)


async def csv_body(schools: list, progress: Progress, total: int):
    bar = progress.add_task(f"streaming {total:,} CSV rows", total=total)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    lines = 0
    try:
        for school in schools:
            for subject in SUBJECTS:
                for row in iter_student_results([school], students_per_school=STUDENTS_PER_SCHOOL, school_year="2024-25",
                                                subject=subject):
                    writer.writerow([";".join(row[c]) if c == "subgroups" else ("" if row.get(c) is None else row[c])
                                     for c in COLUMNS])
                    lines += 1
                    if lines % LINES_PER_CHUNK == 0:
                        yield buffer.getvalue().encode()
                        buffer.seek(0)
                        buffer.truncate()
                        progress.update(bar, completed=lines)
        yield buffer.getvalue().encode()
    finally:
        progress.remove_task(bar)


async def run(env: BenchEnvironment, progress: Progress) -> list[BenchResult]:
    quick = is_quick(env)
    n_schools = 50 if quick else 1_000
    total = n_schools * STUDENTS_PER_SCHOOL * len(SUBJECTS)
    load_before = load_average()
    database_url = await new_database(env.postgres)
    zone = "bench-csv"
    async with results_app(env, database_url, ezone_run_consumers=False, ezone_run_relay=False) as (_client, kit):
        schools = await register_schools(kit.engine, zone, n_schools)
    with results_server(env, database_url) as (base, process):
        idle_rss = process.memory_info().rss
        async with httpx.AsyncClient(timeout=None) as client:
            # one small upload first: imports and pools warm, as in a service that has been up a while
            warm = "".join(f"{line}\n" for line in (",".join(COLUMNS),))
            await client.post(f"{base}/zones/{zone}/results/csv", content=warm.encode(),
                              headers={**auth(env, zone), "Content-Type": "text/csv"})
            warm_rss = process.memory_info().rss
            with RssSampler(process) as sampler:
                started = time.perf_counter()
                response = await client.post(f"{base}/zones/{zone}/results/csv", content=csv_body(schools, progress, total),
                                             headers={**auth(env, zone), "Content-Type": "text/csv"})
                seconds = time.perf_counter() - started
            summary = response.json()
        after_rss = process.memory_info().rss
    assert response.status_code == 201, response.text[:500]
    notes = [
        f"load average 1m: {load_before} before, {load_average()} after",
        f"{total:,} rows ({n_schools:,} schools x {STUDENTS_PER_SCHOOL} x {len(SUBJECTS)} subjects), generated while streaming, "
        f"{LINES_PER_CHUNK:,} lines per HTTP chunk; answer: {summary.get('message')}",
        f"RSS of the uvicorn process (psutil, every 20 ms, {len(sampler.samples):,} samples); relay, consumers and review "
        "worker running in it",
    ]
    figures = [
        Figure("peak_rss_mb", "service peak RSS during the upload (target <= 200 MB)", round(sampler.peak / MB, 1), "MB"),
        Figure("idle_rss_mb", "service RSS when ready", round(idle_rss / MB, 1), "MB"),
        Figure("warm_rss_mb", "service RSS before the upload", round(warm_rss / MB, 1), "MB"),
        Figure("after_rss_mb", "service RSS after the upload", round(after_rss / MB, 1), "MB"),
        Figure("upload_rows_per_s", f"CSV upload, {total:,} rows", round(total / seconds), "rows/s"),
        Figure("upload_seconds", "CSV upload, whole request", round(seconds, 1), "s"),
    ]
    return [BenchResult("csv_memory", figures, {"rows": total, "lines_per_chunk": LINES_PER_CHUNK}, notes)]
