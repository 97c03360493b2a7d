"""state_rereview: a whole state re-reviewed after a policy change. 1,800 schools with 1M student results (two
school years of MATH, ~278 students a school) and their enrollments are loaded set-wise (the approach of the
review engine author's scratch benchmark), then a ZonePolicyChanged is published to the plans topic; the
results service (in-process: relay, consumers, review worker) consumes it, queues every school, year and subject,
reviews them and relays the `review.completed` events. Timed from the publish until the last ReviewCompleted
is in the results outbox AND marked sent by the relay."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from ezone_kit.bus import Publisher
from ezone_kit.uow import Outbox
from ezone_schemas import ReviewCompleted, ZonePolicyChanged
from rich.progress import Progress
from sqlalchemy import text

from ezone.services import SERVICES
from ezone_results.review.policy import ReviewPolicy
from tests.stack import new_database

from .environment import BenchEnvironment
from .relay import outgoing_record
from .report import BenchResult, Figure
from .results_common import is_quick, load_average, results_app

PLANS = next(entry for entry in SERVICES if entry.name == "plans").definition
ZONE = "bench-state"
STUDENTS_PER_SCHOOL = 278
TIMEOUT_S = 600

LOAD = [
    """INSERT INTO results.schools (id, zone_id, code, name, grade_span)
       SELECT md5('s'||i)::uuid, :zone, lpad(i::text, 8, '0'), 'School '||i, '3-8' FROM generate_series(1, :n) i""",
    """INSERT INTO results.zone_policies VALUES (:zone, 1, '{}'::jsonb, now())""",
    """INSERT INTO results.student_results (zone_id, school_id, student_id, assessment_namespace,
         assessment_identifier, subject, grade, school_year, administration_date, scale_score, proficient, growth_percentile,
         not_tested_reason, subgroups, batch_id)
       SELECT :zone, md5('s'||i)::uuid, i||'-'||j, 'uri://doe.mass.edu/mcas', 'MCAS-G'||(3 + j % 6)||'-MATH', 'MATH', (3 + j % 6)::text, y,
              '2024-05-10', CASE WHEN r < 0.03 THEN NULL ELSE round((440 + 120 * random())::numeric, 2) END,
              CASE WHEN r < 0.03 THEN NULL ELSE random() < 0.45 END,
              CASE WHEN r < 0.03 THEN NULL ELSE round((1 + 98 * random())::numeric, 0) END,
              CASE WHEN r < 0.03 THEN 'absent' END,
              CASE j % 4 WHEN 0 THEN ARRAY['high_needs','low_income'] WHEN 1 THEN ARRAY['high_needs','el','hispanic_latino']
                         WHEN 2 THEN ARRAY[]::text[] ELSE ARRAY['swd','high_needs','afr_american_black'] END,
              md5('b'||i||y)::uuid
       FROM generate_series(1, :n) i, generate_series(1, :per) j, (VALUES ('2023-24'), ('2024-25')) ys(y),
            LATERAL (SELECT random() AS r) rr""",
    """INSERT INTO results.enrollments (zone_id, school_id, student_id, school_year, grade, entry_date, subgroups, batch_id)
       SELECT :zone, md5('s'||i)::uuid, i||'-'||j, y, (3 + j % 6)::text,
              CASE y WHEN '2023-24' THEN date '2022-09-01' ELSE date '2023-09-01' END, '{}', md5('e'||i)::uuid
       FROM generate_series(1, :n) i, generate_series(1, :per) j, (VALUES ('2023-24'), ('2024-25')) ys(y)""",
]


async def run(env: BenchEnvironment, progress: Progress) -> list[BenchResult]:
    quick = is_quick(env)
    schools = 100 if quick else 1_800
    load_before = load_average()
    database_url = await new_database(env.postgres)
    notes: list[str] = []
    async with results_app(env, database_url) as (_client, kit):
        started = time.perf_counter()
        async with kit.engine.begin() as conn:
            for statement in LOAD:
                await conn.execute(text(statement), {"zone": ZONE, "n": schools, "per": STUDENTS_PER_SCHOOL})
        async with kit.engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(text("VACUUM ANALYZE"))
        async with kit.engine.connect() as conn:
            result_rows = (await conn.execute(text("SELECT count(*) FROM results.student_results"))).scalar_one()
            expected = (await conn.execute(text(
                "SELECT count(*) FROM (SELECT DISTINCT school_id, school_year, subject FROM results.student_results) k"))).scalar_one()
        notes.append(f"loaded {result_rows:,} results and as many enrollments for {schools:,} schools in "
                     f"{time.perf_counter() - started:.0f} s (not timed)")

        event = ZonePolicyChanged(zone_id=ZONE, version=2, policy=ReviewPolicy().model_dump(mode="json"),
                                  changed_by="bench", changed_at=datetime.now(UTC))
        publisher = Publisher(kit.settings)
        await publisher.start()  # connecting is not part of the measurement
        count_sql = text("SELECT count(*), count(sent_at) FROM results.outbox WHERE ce_type = :t")
        load_during: list[float] = []
        bar = progress.add_task(f"re-reviewing {expected:,} school-year-subjects", total=expected)
        try:
            t0 = time.perf_counter()
            await publisher.publish([outgoing_record(row) for row in Outbox(PLANS.metadata, PLANS.name).rows([event])])
            published_s = time.perf_counter() - t0
            first_in_outbox = all_in_outbox = None
            while True:
                async with kit.engine.connect() as conn:
                    written, sent = (await conn.execute(count_sql, {"t": ReviewCompleted.ce_type})).one()
                now = time.perf_counter() - t0
                if written and first_in_outbox is None:
                    first_in_outbox = now
                if written >= expected and all_in_outbox is None:
                    all_in_outbox = now
                progress.update(bar, completed=sent)
                if sent >= expected:
                    all_sent = now
                    break
                if now > TIMEOUT_S:
                    raise TimeoutError(f"{written:,} written, {sent:,} sent of {expected:,} after {TIMEOUT_S} s")
                if int(now) % 5 == 0 and len(load_during) < now / 5:
                    load_during.append(load_average())
                await asyncio.sleep(0.05)
        finally:
            progress.remove_task(bar)
            await publisher.stop()
        async with kit.engine.connect() as conn:
            stored = (await conn.execute(text("SELECT count(*) FROM results.reviews WHERE policy_version = 2"))).scalar_one()
        await asyncio.sleep(0.5)
        async with kit.engine.connect() as conn:
            written, sent = (await conn.execute(count_sql, {"t": ReviewCompleted.ce_type})).one()

    notes += [
        f"load average 1m: {load_before} before, {load_average()} after; during: {load_during}",
        f"{written:,} review.completed events in the outbox, {sent:,} sent; {stored:,} reviews stored with policy version 2; "
        f"expected {expected:,} (schools x 2 school years x MATH)",
        f"publishing the ZonePolicyChanged took {published_s * 1000:.0f} ms; first review.completed in the outbox after "
        f"{first_in_outbox:.2f} s",
        "results service in-process (bench process): relay, consumers, review worker (2 concurrent batches of 500); "
        "polled every 50 ms",
    ]
    figures = [
        Figure("all_sent_s", f"policy change -> all {expected:,} review.completed published (target <= 15 s)", round(all_sent, 2), "s"),
        Figure("all_in_outbox_s", "policy change -> all in the outbox", round(all_in_outbox, 2), "s"),
        Figure("reviews_per_s", "reviews per second", round(expected / all_sent), "reviews/s"),
        Figure("events", "review.completed events", int(written), "events"),
    ]
    return [BenchResult("state_rereview", figures, {"schools": schools, "students_per_school": STUDENTS_PER_SCHOOL,
                                                    "results": result_rows, "expected_reviews": expected}, notes)]
