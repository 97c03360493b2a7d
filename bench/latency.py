"""end_to_end_latency: the whole zone in this process; schools are registered at a steady rate and
each is timed from the start of its POST until the other services' projections show it."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from ezone_kit.db import asyncpg_dsn
from rich.progress import Progress

from tests.helpers import register_zone
from tests.stack import Stack, new_database, running_stack

from .environment import BenchEnvironment
from .progress import wait_for_count
from .report import BenchResult, latency_figures

PROJECTIONS = ("results", "catalog", "notifications")  # the schemas whose `schools` table projects plans' registry
POLL_INTERVAL_S = 0.005
POLL_SQL = " UNION ALL ".join(
    f"SELECT '{schema}' AS projection, code FROM {schema}.schools WHERE zone_id = $1 AND code = ANY($2::text[])"
    for schema in PROJECTIONS
)


class Timings:
    """When each school's POST started and ended, and when each projection first showed it (loop time, s)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.post_started: dict[str, float] = {}
        self.post_s: list[float] = []
        self.seen: dict[str, dict[str, float]] = {projection: {} for projection in PROJECTIONS}

    def pending(self) -> list[str]:
        return [code for code in self.post_started if not all(code in self.seen[p] for p in PROJECTIONS)]

    def seen_everywhere(self) -> int:
        return len(self.post_started) - len(self.pending())

    def latencies_s(self, projections: tuple[str, ...]) -> list[float]:
        return [
            max(self.seen[p][code] for p in projections) - started for code, started in self.post_started.items()
        ]


async def post_school(stack: Stack, zone: str, headers: dict[str, str], code: str, timings: Timings) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    timings.post_started[code] = started
    response = await stack.clients["plans"].post(
        f"/zones/{zone}/schools", json={"code": code, "name": f"School {code}", "grade_span": "6-8"}, headers=headers
    )
    if response.status_code != 201:
        raise RuntimeError(f"POST school {code}: {response.status_code} {response.text}")
    timings.post_s.append(loop.time() - started)


async def poll_projections(connection: asyncpg.Connection, zone: str, timings: Timings) -> None:
    """Record when each projection first shows each posted school; runs until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        pending = timings.pending()
        if pending:
            rows = await connection.fetch(POLL_SQL, zone, pending)
            now = loop.time()
            for row in rows:
                timings.seen[row["projection"]].setdefault(row["code"], now)
        await asyncio.sleep(POLL_INTERVAL_S)


async def register_schools(
    stack: Stack, zone: str, codes: list[str], rate_per_s: float, timings: Timings, progress: Progress
) -> None:
    """POST one school per tick of a fixed schedule, whether or not earlier POSTs have answered (open loop)."""
    headers = stack.auth("admin", zone)
    loop = asyncio.get_running_loop()
    first_tick = loop.time()
    posts = []
    bar = progress.add_task(f"registering schools at {rate_per_s:g}/s", total=len(codes))
    for n, code in enumerate(codes):
        await asyncio.sleep(max(0.0, first_tick + n / rate_per_s - loop.time()))
        posts.append(asyncio.create_task(post_school(stack, zone, headers, code, timings)))
        progress.advance(bar)
    await asyncio.gather(*posts)
    progress.remove_task(bar)


async def run(env: BenchEnvironment, progress: Progress) -> list[BenchResult]:
    sizes = env.sizes
    database_url = await new_database(env.postgres)
    zone = f"bench-{uuid.uuid4().hex[:8]}"
    count = round(sizes.latency_rate_per_s * sizes.latency_duration_s)
    codes = [f"B{n:05d}" for n in range(count)]
    async with running_stack(database_url, env.broker.bootstrap_servers, env.key_dir) as stack:
        for kit in stack.kits.values():
            for worker in kit.workers:
                await asyncio.wait_for(worker.assigned.wait(), 30)
        await register_zone(stack, zone)
        connection = await asyncpg.connect(asyncpg_dsn(database_url))
        timings = Timings()
        polling = asyncio.create_task(poll_projections(connection, zone, timings))
        try:
            # The first request through each service pays for lazy set-up; it is not measured.
            await post_school(stack, zone, stack.auth("admin", zone), "WARMUP", timings)
            await wait_for_count(progress, "warming up", timings.seen_everywhere, 1, timeout_s=30)
            timings.reset()
            await register_schools(stack, zone, codes, sizes.latency_rate_per_s, timings, progress)
            await wait_for_count(progress, "waiting for the projections", timings.seen_everywhere, count, timeout_s=60)
        finally:
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)
            await connection.close()
        settings = stack.settings()
    return [BenchResult(
        "end_to_end_latency",
        [
            *latency_figures("post", "POST", timings.post_s, (50, 99)),
            *latency_figures("results", "visible in results", timings.latencies_s(("results",)), (50, 90, 99, "max")),
            *latency_figures("all", "visible in all 3", timings.latencies_s(PROJECTIONS), (50, 90, 99, "max")),
        ],
        {
            "schools": count, "rate_per_s": sizes.latency_rate_per_s, "duration_s": sizes.latency_duration_s,
            "projection_poll_interval_ms": POLL_INTERVAL_S * 1000,
            "kafka_fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms, "kafka_linger_ms": settings.kafka_linger_ms,
            "relay_wake": "LISTEN/NOTIFY on outbox insert",
            "relay_fallback_poll_s": settings.ezone_relay_poll_interval_s,
        },
        ["The four services, their relays and consumers, the load and the poller share this one process and event loop."],
    )]
