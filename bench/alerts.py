"""Board alerts end to end, and a state-wide fan-out.

alert_latency: the whole zone in this process. An SIS POSTs a batch of student results for one school at a
steady rate; each batch is timed from the start of its POST until the alert its review raised reaches a
board member — on an open Server-Sent Events stream, and in the inbox API polled over HTTP.

alert_fanout: 1,800 schools' `review.completed` events (a state-wide re-review: every school off track with a
flag) reach the notifications service at once; timed until the last of the 1,800 × 7 board members' alerts is
stored, then until the last email of them is accepted by an SMTP server; every alert is counted once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import subprocess
import sys
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator
from datetime import UTC, date, datetime

import asyncpg
import httpx
import orjson
from ezone_kit.db import asyncpg_dsn
from ezone_schemas import BoardMemberChanged, ReviewCompleted, SchoolRegistered, ZoneRegistered
from ezone_schemas.results import GoalFinding, IntegrityFlag, SubgroupMetrics
from ezone_schemas.vocabulary import Metric, ReviewStatus, Subgroup, Subject
from rich.progress import Progress

from ezone.stack import free_port, wait_for
from tests.events import publish_as
from tests.helpers import register_school, register_zone
from tests.results_data import student_results
from tests.stack import Stack, new_database

from .environment import BenchEnvironment
from .progress import wait_for_count
from .report import BenchResult, Figure, latency_figures, reference_loop_s
from .traces import TRACED_SUFFIX, trace_receiver
from .zone_processes import CpuMeter, ZoneProcesses, zone_processes

BOARD_SIZE = 7
LATENCY_SCHOOLS = 100  # each school gets a batch every LATENCY_SCHOOLS / rate seconds: no two in one review
STUDENTS_PER_BATCH = 60
# A member's client polling its inbox: each poll is a whole API request the zone serves on the same two cores, so
# polling more often than the batches arrive would load the zone with the measurement. The inbox figure therefore
# includes up to this much waiting for the next poll (25 ms on average).
INBOX_POLL_INTERVAL_S = 0.05
LIGHT_BATCHES_PER_S = 2.0
DRAIN_S = 60.0  # after the last POST: what has not arrived by then counts as never
SCHOOL_YEAR = "2025-26"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[int, int]]:
    """An SMTP server in its own process that accepts and discards mail, as a real relay would take it: its port and
    process id."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(10)


async def _ready(stack: Stack) -> None:
    for kit in stack.kits.values():
        for worker in kit.workers:
            await asyncio.wait_for(worker.assigned.wait(), 30)


async def _count(connection: asyncpg.Connection, sql: str, *args: object) -> int:
    return await connection.fetchval(sql, *args)


class Arrivals:
    """Batches posted per school (loop time) and when each one's alert first showed up on each path."""

    def __init__(self) -> None:
        self.seen_alerts: dict[str, set[str]] = {"sse": set(), "inbox": set()}
        self.reset()

    def reset(self) -> None:
        """Forget the batches so far (the warm-up), but not the alerts already seen."""
        self.pending: dict[str, dict[str, deque[float]]] = {"sse": defaultdict(deque), "inbox": defaultdict(deque)}
        self.latencies: dict[str, list[float]] = {"sse": [], "inbox": []}
        self.post_s: list[float] = []
        self.failed_posts: list[str] = []

    def refused(self, school_id: str, started: float, reason: str) -> None:
        """A POST that failed raises no alert: it is counted, not waited for."""
        for path in self.pending:
            self.pending[path][school_id].remove(started)
        self.failed_posts.append(reason)

    def posted(self, school_id: str, started: float) -> None:
        for path in self.pending:
            self.pending[path][school_id].append(started)

    def arrived(self, path: str, alert: dict, at: float) -> None:
        if alert["id"] in self.seen_alerts[path]:
            return
        self.seen_alerts[path].add(alert["id"])
        waiting = self.pending[path].get(alert["school_id"])
        if waiting:
            self.latencies[path].append(at - waiting.popleft())

    def delivered(self) -> int:
        return min(len(self.latencies["sse"]), len(self.latencies["inbox"]))


async def _follow_stream(base: str, zone: str, headers: dict[str, str], arrivals: Arrivals,
                         connected: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=base, timeout=None) as client:
        async with client.stream("GET", f"/zones/{zone}/alerts/stream", headers=headers) as response:
            event = data = None
            async for line in response.aiter_lines():
                if line.startswith(": connected"):
                    connected.set()
                elif line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data = line.split(":", 1)[1].strip()
                elif not line and event == "alert" and data:
                    arrivals.arrived("sse", json.loads(data), loop.time())
                    event = data = None
                elif not line:
                    event = data = None


async def _poll_inbox(base: str, zone: str, headers: dict[str, str], arrivals: Arrivals) -> None:
    loop = asyncio.get_running_loop()
    params: dict[str, object] = {"limit": 20, "state": "all"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while True:
            response = await client.get(f"/zones/{zone}/alerts", params=params, headers=headers)
            now = loop.time()
            for alert in response.json()["items"]:
                arrivals.arrived("inbox", alert, now)
                # As a client keeping its inbox current would: ask only for what is newer than what it holds.
                params["after_seq"] = max(alert["seq"], params.get("after_seq", 0))
            await asyncio.sleep(INBOX_POLL_INTERVAL_S)


def _batch_body(school_id: str, seed: int) -> bytes:
    """A batch as the SIS sends it. Built before the timed load: making the rows is the SIS's work, not the zone's,
    and would otherwise take the zone's cores while it is measured."""
    return orjson.dumps({"rows": student_results([school_id], students_per_school=STUDENTS_PER_BATCH,
                                                 school_year=SCHOOL_YEAR, subject="MATH", seed=seed)})


async def _post_batch(stack: ZoneProcesses, zone: str, sis: dict[str, str], school_id: str, body: bytes,
                      arrivals: Arrivals) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    arrivals.posted(school_id, started)
    try:
        response = await stack.clients["results"].post(f"/zones/{zone}/results", content=body,
                                                       headers={**sis, "Content-Type": "application/json"})
    except httpx.HTTPError as exc:
        arrivals.refused(school_id, started, type(exc).__name__)
        return
    if response.status_code != 201 or not response.json()["changed"]:
        arrivals.refused(school_id, started, f"{response.status_code} {response.text[:200]}")
        return
    arrivals.post_s.append(loop.time() - started)


async def _latency_zone(stack: ZoneProcesses, zone: str, progress: Progress) -> list[str]:
    """A zone registered through the plans API: a board of 7 and LATENCY_SCHOOLS schools, known to every service."""
    await register_zone(stack, zone)
    admin = stack.auth("admin", zone)
    for seat in range(1, BOARD_SIZE + 1):
        member = {"name": f"Member {seat}", "seat": seat, "appointed_by": "district" if seat <= 3 else "state",
                  "subject": f"seat-{seat}@{zone}.example", "active_from": "2024-07-01"}
        response = await stack.clients["plans"].post(f"/zones/{zone}/board-members", json=member, headers=admin)
        response.raise_for_status()
    bar = progress.add_task("registering schools", total=LATENCY_SCHOOLS)
    schools = []
    for n in range(LATENCY_SCHOOLS):
        school = await register_school(stack, zone, {"code": f"L{n:07d}", "name": f"Latency School {n}",
                                                     "grade_span": "6-8", "enrollment": 180})
        schools.append(school["id"])
        progress.advance(bar)
    progress.remove_task(bar)
    connection = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        async def known() -> bool:
            return (await _count(connection, "SELECT count(*) FROM notifications.board_members WHERE zone_id = $1", zone)
                    == BOARD_SIZE
                    and await _count(connection, "SELECT count(*) FROM results.schools WHERE zone_id = $1", zone)
                    == LATENCY_SCHOOLS
                    and await _count(connection, "SELECT count(*) FROM notifications.schools WHERE zone_id = $1", zone)
                    == LATENCY_SCHOOLS)
        await wait_for(known, 60, what="the zone known to results and notifications")
    finally:
        await connection.close()
    # Rules are data: this zone asks to hear of every review, so every batch raises an alert.
    rule = {"event_type": "review.completed", "severity": "info", "audiences": ["board"],
            "description": "Every review, for the benchmark"}
    response = await stack.clients["notifications"].put(f"/zones/{zone}/alert-rules/every-review", json=rule,
                                                        headers=stack.auth("district", zone))
    response.raise_for_status()
    return schools


async def _steady_load(stack: ZoneProcesses, zone: str, sis: dict[str, str], schools: list[str], rate: float, count: int,
                      arrivals: Arrivals, meter: CpuMeter, progress: Progress) -> int:
    """POST `count` batches on a fixed schedule (open loop), metering CPU while posting; wait for their alerts;
    return how many never came."""
    arrivals.reset()
    targets = [schools[(n + 1) % len(schools)] for n in range(count)]
    bodies = [_batch_body(school_id, int(rate * 1000) + n) for n, school_id in enumerate(targets)]
    loop = asyncio.get_running_loop()
    first_tick = loop.time()
    posts = []
    bar = progress.add_task(f"posting batches at {rate:g}/s", total=count)
    meter.start()
    for n in range(count):
        await asyncio.sleep(max(0.0, first_tick + n / rate - loop.time()))
        posts.append(asyncio.create_task(_post_batch(stack, zone, sis, targets[n], bodies[n], arrivals)))
        progress.advance(bar)
    await asyncio.sleep(max(0.0, first_tick + count / rate - loop.time()))
    meter.stop()
    await asyncio.gather(*posts)
    progress.remove_task(bar)
    expected = count - len(arrivals.failed_posts)
    with contextlib.suppress(TimeoutError):
        await wait_for_count(progress, "waiting for the last alerts", arrivals.delivered, expected, timeout_s=DRAIN_S)
    return expected - arrivals.delivered()


def _latency_figures(tag: str, rate: float, arrivals: Arrivals, missing: int) -> list[Figure]:
    # An alert that never came within the drain counts as infinitely late, not as left out.
    never = [math.inf] * missing
    return [
        *latency_figures(f"{tag}_post", f"{rate:g}/s: results POST", arrivals.post_s, (50, 99)),
        *latency_figures(f"{tag}_sse", f"{rate:g}/s: alert on the SSE stream", arrivals.latencies["sse"] + never,
                         (50, 90, 99, "max")),
        *latency_figures(f"{tag}_inbox", f"{rate:g}/s: alert in the inbox API", arrivals.latencies["inbox"] + never,
                         (50, 99, "max")),
        Figure(f"{tag}_missing", f"{rate:g}/s: alerts not there {DRAIN_S:g} s after the last POST", missing, "alerts"),
        Figure(f"{tag}_failed_posts", f"{rate:g}/s: POSTs that failed (e.g. no pool connection in 30 s)",
               len(arrivals.failed_posts), "POSTs"),
    ]


async def run_latency(env: BenchEnvironment, progress: Progress) -> list[BenchResult]:
    rate = env.sizes.alert_batches_per_s
    duration = env.sizes.alert_duration_s
    loop_before_s = reference_loop_s()
    database_url = await new_database(env.postgres)
    zone = f"alerts-{uuid.uuid4().hex[:8]}"
    figures: list[Figure] = []
    phases: list[tuple[str, float, int, CpuMeter, list[Figure]]] = []  # tag, rate, batches, CPU, figures
    with smtp_server() as (smtp_port, smtp_pid):
        async with (trace_receiver() if env.export_traces else contextlib.nullcontext()) as receiver, \
                zone_processes(env, database_url, receiver and receiver.endpoint, ezone_smtp_port=smtp_port) as stack:
            schools = await _latency_zone(stack, zone, progress)
            sis = stack.auth("sis", zone, schools)
            member = {"Authorization": f"Bearer {stack.token('board', zone, subject=f'seat-1@{zone}.example')}"}
            base = stack.bases["notifications"]
            arrivals = Arrivals()
            connected = asyncio.Event()
            followers = [asyncio.create_task(_follow_stream(base, zone, member, arrivals, connected)),
                         asyncio.create_task(_poll_inbox(base, zone, member, arrivals))]
            try:
                await asyncio.wait_for(connected.wait(), 10)
                # The first batch through each service pays for lazy set-up; it is not measured.
                await _post_batch(stack, zone, sis, schools[0], _batch_body(schools[0], 0), arrivals)
                await wait_for_count(progress, "warming up", arrivals.delivered, 1, timeout_s=30)
                # A light load first (the path's own latency), then the rate.
                for tag, load in (("light", LIGHT_BATCHES_PER_S), ("target", rate)):
                    meter = CpuMeter(stack, env, others={"smtp server": smtp_pid})
                    batches = round(load * duration)
                    missing = await _steady_load(stack, zone, sis, schools, load, batches, arrivals, meter, progress)
                    phases.append((tag, load, batches, meter,
                                   _latency_figures(tag, load, arrivals, missing) +
                                   _cpu_figures(tag, load, meter.spent, batches)))
            finally:
                for task in followers:
                    task.cancel()
                await asyncio.gather(*followers, return_exceptions=True)
            if receiver is not None:
                await receiver.settled()
            for tag, load, batches, meter, measured in phases:
                figures += measured
                if receiver is not None:
                    figures += _span_figures(tag, load, receiver.started_between(*meter.window_ns), batches)
            settings = stack.settings()
    figures += [Figure("reference_loop_before_s", "machine speed: a fixed Python loop, before the run (best of 3)",
                       loop_before_s, "s"),
                Figure("reference_loop_after_s", "machine speed: the same loop after the run", reference_loop_s(), "s")]
    return [BenchResult(
        "alert_latency" + (TRACED_SUFFIX if env.export_traces else ""),
        figures,
        {
            "batches_per_s": [LIGHT_BATCHES_PER_S, rate], "duration_s": duration, "rows_per_batch": STUDENTS_PER_BATCH,
            "schools": LATENCY_SCHOOLS, "board_members": BOARD_SIZE, "inbox_poll_interval_ms": INBOX_POLL_INTERVAL_S * 1000,
            "drain_s": DRAIN_S,
            "kafka_fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms, "kafka_linger_ms": settings.kafka_linger_ms,
            "traces_exported": env.export_traces,
        },
        ["The four services run as `ezone up` runs them: one uvicorn process each; the SIS, the member's SSE stream "
         "and the inbox poller are this process; the SMTP server is a separate process.",
         "Path: POST → results stored → results.posted → review worker → review.completed → notifications consumer → "
         "alert committed → NOTIFY → SSE / inbox.",
         "CPU per batch: each process's user + system time while the batches were being posted, divided by their "
         "number; at a rate the zone keeps up with, that is what a batch costs (idle work included).",
         "The benchmark zone's rule raises an info alert for every review (info waits for the daily digest); the "
         "zone's default rules make it critical for a review off track or with an integrity flag (about 4 in 10 "
         "batches here), and those are emailed to each member at once.",
         *(["Traces exported: each service sends its spans by OTLP/HTTP (the SDK's batch processor, its defaults) "
            "to a receiver in the bench process, which counts and drops them (its work is in the bench CPU figure). "
            "Spans per batch: those started while the batches were posted, divided by their number (idle work, "
            "e.g. the inbox poller's requests, included, as in the CPU figures)."] if env.export_traces else [])],
    )]


def _cpu_figures(tag: str, rate: float, spent: dict[str, float], batches: int) -> list[Figure]:
    return [*(Figure(f"{tag}_cpu_{name.replace('-', '_')}", f"{rate:g}/s: CPU per batch, {name}",
                     round(1000 * seconds / batches, 1), "ms") for name, seconds in spent.items()),
            Figure(f"{tag}_cpu_total", f"{rate:g}/s: CPU per batch, all processes",
                   round(1000 * sum(spent.values()) / batches, 1), "ms")]


def _span_figures(tag: str, rate: float, started: dict[str, int], batches: int) -> list[Figure]:
    return [*(Figure(f"{tag}_spans_{service.replace('-', '_')}", f"{rate:g}/s: spans exported per batch, {service}",
                     round(count / batches, 1), "spans") for service, count in sorted(started.items())),
            Figure(f"{tag}_spans_total", f"{rate:g}/s: spans exported per batch, all services",
                   round(sum(started.values()) / batches, 1), "spans")]


def _review(zone: str, school_id: uuid.UUID) -> ReviewCompleted:
    return ReviewCompleted(
        review_id=uuid.uuid4(), zone_id=zone, school_id=school_id, school_year=SCHOOL_YEAR, subject=Subject.MATH,
        version=1, status=ReviewStatus.OFF_TRACK,
        goals=[GoalFinding(goal_id=None, metric=Metric.PROFICIENCY_RATE, subject=Subject.MATH,
                           subgroup=Subgroup.ALL_STUDENTS, target=30.0, actual=18.0, status=ReviewStatus.OFF_TRACK)],
        metrics=[SubgroupMetrics(subgroup=Subgroup.ALL_STUDENTS, n_tested=410, n_enrolled=450, proficiency_rate=18.0,
                                 participation_rate=91.1, average_scaled_score=481.0)],
        flags=[IntegrityFlag(kind="low_participation", subgroup=Subgroup.ALL_STUDENTS,
                             summary="91.1% of all_students students tested; the policy's minimum is 95%.",
                             evidence={"tested": 410, "enrolled": 450, "rate": 91.1, "minimum": 95.0})],
        policy_version=2, plan_version=1, completed_at=datetime.now(UTC),
    )


async def run_fanout(env: BenchEnvironment, progress: Progress) -> list[BenchResult]:
    reviews = env.sizes.fanout_reviews
    expected = reviews * BOARD_SIZE
    database_url = await new_database(env.postgres)
    zone = f"fanout-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    school_ids = [uuid.uuid4() for _ in range(reviews)]
    with smtp_server() as (smtp_port, _):
        stack = Stack(database_url, env.broker.bootstrap_servers, env.key_dir, {"ezone_smtp_port": smtp_port})
        try:
            await stack.start(only=("notifications",))
            await _ready(stack)
            await publish_as(stack, ZoneRegistered(zone_id=zone, name="Fan-out", district="State", registered_at=now),
                             *(BoardMemberChanged(zone_id=zone, member_id=uuid.uuid4(), subject=f"seat-{seat}@{zone}.example",
                                                  name=f"Member {seat}", seat=seat, appointed_by="state",
                                                  active_from=date(2024, 7, 1), active_to=None, changed_at=now)
                               for seat in range(1, BOARD_SIZE + 1)),
                             *(SchoolRegistered(zone_id=zone, school_id=school_id, code=f"F{n:07d}", name=f"School {n}",
                                                grade_span="3-8", enrollment=450, registered_at=now)
                               for n, school_id in enumerate(school_ids)),
                             source="/ezone/plans")
            connection = await asyncpg.connect(asyncpg_dsn(database_url))
            try:
                async def known() -> bool:
                    return await _count(connection, "SELECT count(*) FROM notifications.schools WHERE zone_id = $1",
                                        zone) == reviews
                await wait_for(known, 120, what="the fan-out zone's schools")
                events = [_review(zone, school_id) for school_id in school_ids]
                started = time.monotonic()
                await publish_as(stack, *events, source="/ezone/results")
                published_s = time.monotonic() - started
                stored = 0

                async def count_alerts() -> None:
                    nonlocal stored
                    while True:
                        stored = await _count(connection, "SELECT count(*) FROM notifications.alerts WHERE zone_id = $1", zone)
                        await asyncio.sleep(0.05)

                counter = asyncio.create_task(count_alerts())
                try:
                    await wait_for_count(progress, "alerts stored", lambda: stored, expected, timeout_s=600)
                finally:
                    counter.cancel()
                stored_s = time.monotonic() - started
                sent = 0

                async def count_sent() -> None:
                    nonlocal sent
                    while True:
                        sent = await _count(connection, "SELECT count(*) FROM notifications.deliveries WHERE zone_id = $1 "
                                                        "AND channel = 'email' AND status = 'sent'", zone)
                        await asyncio.sleep(0.1)

                counter = asyncio.create_task(count_sent())
                try:
                    await wait_for_count(progress, "emails accepted", lambda: sent, expected, timeout_s=900)
                finally:
                    counter.cancel()
                emailed_s = time.monotonic() - started
                distinct = await _count(connection, "SELECT count(DISTINCT (source_event_id, recipient)) FROM notifications.alerts "
                                                    "WHERE zone_id = $1", zone)
                total = await _count(connection, "SELECT count(*) FROM notifications.alerts WHERE zone_id = $1", zone)
                emails = await _count(connection, "SELECT count(*) FROM notifications.deliveries WHERE zone_id = $1 "
                                                  "AND channel = 'email'", zone)
            finally:
                await connection.close()
        finally:
            await stack.stop()
    if (distinct, total, emails) != (expected, expected, expected):
        raise RuntimeError(f"fan-out: {total} alerts ({distinct} distinct) and {emails} emails; expected {expected} each")
    return [BenchResult(
        "alert_fanout",
        [
            Figure("last_alert_stored_s", "last alert stored", round(stored_s, 2), "s"),
            Figure("alerts_per_s", "alerts stored per second", round(expected / stored_s), "alerts/s"),
            Figure("last_email_accepted_s", "last email accepted by SMTP", round(emailed_s, 2), "s"),
            Figure("alerts_lost_or_doubled", "alerts lost or doubled", expected - distinct + total - distinct, "alerts"),
        ],
        {"reviews": reviews, "board_members": BOARD_SIZE, "alerts": expected, "publish_s": round(published_s, 2)},
        ["Only the notifications service runs (consumer, relay, delivery worker); the 1,800 review.completed events are "
         "published as the results service's re-review would, all at once; times are from the first publish.",
         "Each review is off track with a participation flag: two critical rules match, one alert per member, each "
         "with an email (the members' default preferences); the SMTP server is a separate process."],
    )]
