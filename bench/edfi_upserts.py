"""edfi_upserts: Ed-Fi single-record upserts (`POST /ed-fi/v3/ed-fi/studentAssessments`, one record per request)
at a concurrency of 8, through the in-process app (httpx.ASGITransport) and through a real uvicorn on
127.0.0.1 (the service in its own process, as deployed): new records, then the same records again."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import orjson
from rich.progress import Progress

from tests.results_data import iter_student_results
from tests.stack import new_database

from .environment import BenchEnvironment
from .report import BenchResult, Figure
from .results_common import auth, is_quick, load_average, register_schools, results_app, results_server, school_code

CONCURRENCY = 8
PATH = "/ed-fi/v3/ed-fi/studentAssessments"
GRADE_NAMES = {"6": "Sixth grade", "7": "Seventh grade", "8": "Eighth grade"}
METHOD = "uri://ed-fi.org/AssessmentReportingMethodDescriptor#"


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
             "performanceLevelDescriptor": f"uri://doe.mass.edu/PerformanceLevelDescriptor#{row['performance_level']}",
             "performanceLevelMet": row["proficient"]},
        ],
    }


def bodies(schools: list, codes: list[str], count: int, seed: int) -> list[bytes]:
    rows = ((row, code) for school, code in zip(schools, codes, strict=True)
            for subject in ("MATH", "ELA")
            for row in iter_student_results([school], students_per_school=300, school_year="2024-25", subject=subject, seed=seed)
            if "scale_score" in row)
    return [orjson.dumps(edfi_body(row, code)) for row, code in itertools.islice(rows, count)]


async def drive(client: httpx.AsyncClient, url: str, payloads: list[bytes], headers: dict[str, str],
                progress: Progress, label: str) -> tuple[float, dict[int, int]]:
    """Send every payload, CONCURRENCY at a time; the wall time and the count per status."""
    statuses: dict[int, int] = {}
    queue = iter(payloads)
    bar = progress.add_task(label, total=len(payloads))

    async def sender() -> None:
        for payload in queue:
            response = await client.post(url, content=payload, headers=headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 300 and statuses[response.status_code] == 1:
                progress.console.log(f"{label}: {response.status_code} {response.text[:300]}")
            progress.advance(bar)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
    finally:
        progress.remove_task(bar)
    return time.perf_counter() - started, statuses


async def run(env: BenchEnvironment, progress: Progress) -> list[BenchResult]:
    quick = is_quick(env)
    count = 2_000 if quick else 5_000
    load_before = load_average()
    database_url = await new_database(env.postgres)
    figures: list[Figure] = []
    notes = [f"concurrency {CONCURRENCY}, one studentAssessment per request, {count:,} records per round, admin token",
             "service runs its relay, consumers and review worker (results.posted -> review requests -> reviews) "
             "during the rounds, as deployed"]
    parameters: dict[str, object] = {"records": count, "concurrency": CONCURRENCY}
    n_schools = max(1, count // 600 + 1)

    async def rounds(mode: str, client: httpx.AsyncClient, url: str, zone: str, engine_or_none, seed: int) -> None:
        headers = {**auth(env, zone), "Content-Type": "application/json"}
        payloads = bodies(schools_by_zone[zone], [school_code(n) for n in range(n_schools)], count, seed)
        # a warm-up record (school code cache, connections), not counted
        await client.post(url, content=orjson.dumps({**orjson.loads(payloads[0]), "studentAssessmentIdentifier": "warm",
                                                             "studentReference": {"studentUniqueId": "warm-up"}}),
                          headers=headers)
        for round_name, expect in (("new", 201), ("again", 200)):
            seconds, statuses = await drive(client, url, payloads, headers, progress, f"Ed-Fi {mode}: {round_name}")
            ok = statuses.get(expect, 0)
            figures.append(Figure(f"{mode}_{round_name}_per_s", f"{mode}: {round_name} records", round(count / seconds), "records/s"))
            notes.append(f"{mode} {round_name}: {count:,} in {seconds:.1f} s, statuses {statuses}, load 1m {load_average()}")
            if ok != count:
                notes.append(f"{mode} {round_name}: only {ok:,} of {count:,} answered {expect}")

    schools_by_zone: dict[str, list] = {}
    async with results_app(env, database_url) as (client, kit):
        for zone in ("bench-edfi-asgi", "bench-edfi-uvicorn"):
            schools_by_zone[zone] = await register_schools(kit.engine, zone, n_schools)
        await rounds("asgi", client, f"http://results{PATH}", "bench-edfi-asgi", kit.engine, 1)
    with results_server(env, database_url) as (base, _process):
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            await rounds("uvicorn", client, f"{base}{PATH}", "bench-edfi-uvicorn", None, 2)
    notes.insert(0, f"load average 1m: {load_before} before, {load_average()} after")
    return [BenchResult("edfi_upserts", figures, parameters, notes)]
