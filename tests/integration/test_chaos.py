"""Chaos: the zone as `ezone up` runs it, under a loader posting results, while its processes are SIGKILLed in turn:
the broker twice in a row (the second after an event reached it), the results service, the notifications service and
PostgreSQL. After each recovery, with no manual step, everything is counted: results stored = sent, one review per
school and subject posted, every alert in every board member's inbox once, every email in the mail sink once, no
dead letter, no HTTP 500 (503 only while PostgreSQL is down).

Counts, never times: each wait has a generous deadline against a hang, and no assertion compares a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mailbox
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from ezone_kit.db import asyncpg_dsn
from ezone_kit.devkeys import mint_token
from ezone_kit.dlq import read_dead_letters
from ezone_kit.settings import KitSettings

from ezone.services import SERVICES
from ezone.stack import free_port, wait_for
from tests.integration.up_support import descendants, four_free_ports, start_up, stop_with_ctrl_c, wait_for_output
from tests.results_data import student_results

pytestmark = pytest.mark.slow

ZONE = "chaos"
SCHOOL_YEAR = "2090-91"  # a year the zone's policy counts as current: its reviews alert
SUBJECTS = ("ELA", "MATH", "SCI")
SCHOOLS = 11
BOARD = 3
STUDENTS_PER_BATCH = 30
BATCHES_PER_PHASE = 6
RECOVERY_S = 180.0  # deadline of each wait for the zone to settle: against a hang, not a measure


@dataclass
class Batch:
    school_id: str
    subject: str
    rows: list[dict]
    key: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Loader:
    """Posts batches as an SIS does: each with an Idempotency-Key, sent again with the same key until answered."""

    client: httpx.AsyncClient
    headers: dict[str, str]
    phase: str = "start"
    answers: Counter = field(default_factory=Counter)  # (phase, status)
    stored: list[Batch] = field(default_factory=list)

    async def post(self, batch: Batch) -> None:
        body = orjson.dumps({"rows": batch.rows})
        while True:
            try:
                response = await self.client.post(f"/zones/{ZONE}/results", content=body, headers={
                    **self.headers, "Content-Type": "application/json", "Idempotency-Key": batch.key})
            except httpx.TransportError:
                self.answers[self.phase, "no answer"] += 1  # the service is down: its supervisor starts it again
                await asyncio.sleep(0.2)
                continue
            self.answers[self.phase, response.status_code] += 1
            if response.status_code in (200, 201):
                self.stored.append(batch)
                return
            assert response.status_code == 503, (f"{batch.subject} of {batch.school_id}: {response.status_code} "
                                                 f"{response.text}")
            await asyncio.sleep(0.2)

    async def post_all(self, batches: list[Batch]) -> None:
        for batch in batches:
            await self.post(batch)


@dataclass
class Up:
    """A running `ezone up` and what the test reads of it."""

    home: Path
    port_base: int
    process: subprocess.Popen
    log: Path

    @property
    def state(self) -> dict:
        return json.loads((self.home / "state.json").read_text())

    @property
    def settings(self) -> KitSettings:
        return KitSettings(**self.state["settings"])

    def url(self, service: str) -> str:
        return self.state["services"][service]

    def said(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    async def until_said(self, text: str, times: int) -> None:
        async def said() -> bool:
            assert self.process.poll() is None, f"ezone up exited:\n{self.log.read_text()}"
            return self.said(text) >= times

        await wait_for(said, RECOVERY_S, interval_s=0.2, what=f"{text!r} said {times} time(s)")

    def kill(self, marker: str) -> None:
        """SIGKILL the process of `ezone up` whose command line has `marker`."""
        [process] = [p for p in descendants(self.process) if marker in " ".join(p.cmdline())]
        process.kill()

    def kill_postgres(self) -> None:
        os.kill(int((self.home / "pgdata" / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)

    async def broker_holds_every_sent_event(self) -> bool:
        """Each outbox's sent events are all on the broker now, whatever brokers were lost on the way."""
        connection = await asyncpg.connect(asyncpg_dsn(self.settings.database_url))
        try:
            sent = {(row["topic"], row["id"]) for entry in SERVICES for row in await connection.fetch(
                f"SELECT topic, id FROM {entry.definition.schema}.outbox WHERE sent_at IS NOT NULL")}
        finally:
            await connection.close()
        return sent <= await events_on_broker(self.settings, {topic for topic, _ in sent})

    async def scalar(self, sql: str, *args: object) -> object:
        connection = await asyncpg.connect(asyncpg_dsn(self.settings.database_url))
        try:
            return await connection.fetchval(sql, *args)
        finally:
            await connection.close()

    def emails(self) -> list[mailbox.mboxMessage]:
        box = mailbox.mbox(self.home / "mail" / "ezone.mbox")
        box.lock()  # the sink appends under the same lock
        try:
            return list(box)
        finally:
            box.unlock()
            box.close()

    def token(self, role: str, **claims: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.home / 'keys', role=role, zone=ZONE, **claims)}"}


async def events_on_broker(settings: KitSettings, topics: set[str]) -> set[tuple[str, uuid.UUID]]:
    """(topic, event id) of every event on these topics, each partition read from its start to its end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
                                group_id=None)
    await consumer.start()
    try:
        existing = await consumer.topics()
        partitions = [TopicPartition(t, p) for t in topics & existing for p in consumer.partitions_for_topic(t)]
        if not partitions:
            return set()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        events = set()
        while any([await consumer.position(p) < ends[p] for p in partitions]):
            for partition, records in (await consumer.getmany(timeout_ms=1_000)).items():
                events |= {(partition.topic, uuid.UUID(dict(r.headers)["ce_id"].decode())) for r in records}
        return events
    finally:
        await consumer.stop()


def member_subject(seat: int) -> str:
    return f"seat-{seat}@{ZONE}.example"


async def set_up_zone(up: Up) -> list[str]:
    """The zone through the plans API: a board of BOARD and SCHOOLS schools; a rule that alerts the board of every
    review, critically (emailed at once); known to results and notifications. The school ids."""
    admin = up.token("admin")
    async with httpx.AsyncClient(base_url=up.url("plans"), headers=admin, timeout=30) as plans:
        assert (await plans.post("/zones", json={"id": ZONE, "name": "Chaos", "district": "D"})).status_code == 201
        for seat in range(1, BOARD + 1):
            member = {"name": f"Member {seat}", "seat": seat, "appointed_by": "district",
                      "subject": member_subject(seat),
                      "active_from": "2024-07-01"}
            assert (await plans.post(f"/zones/{ZONE}/board-members", json=member)).status_code == 201
        schools = []
        for n in range(SCHOOLS):
            response = await plans.post(f"/zones/{ZONE}/schools", json={
                "code": f"0900{n:04d}", "name": f"Chaos School {n}", "grade_span": "6-8", "enrollment": 300})
            assert response.status_code == 201, response.text
            schools.append(response.json()["id"])

    async def known() -> bool:
        return (await up.scalar("SELECT count(*) FROM results.schools WHERE zone_id = $1", ZONE) == SCHOOLS
                and await up.scalar("SELECT count(*) FROM notifications.schools WHERE zone_id = $1", ZONE) == SCHOOLS
                and await up.scalar("SELECT count(*) FROM notifications.board_members WHERE zone_id = $1",
                                    ZONE) == BOARD)

    await wait_for(known, RECOVERY_S, interval_s=0.2, what="the zone known to results and notifications")
    rule = {"event_type": "review.completed", "severity": "critical", "audiences": ["board"],
            "description": "Every review, for the chaos test"}
    async with httpx.AsyncClient(base_url=up.url("notifications"), timeout=30) as notifications:
        response = await notifications.put(f"/zones/{ZONE}/alert-rules/every-review", json=rule,
                                           headers=up.token("district"))
        assert response.status_code in (200, 201), response.text
    return schools


async def assert_settled(up: Up, loader: Loader, sent: list[Batch]) -> None:
    """Once the zone caught up: every count exactly as the batches sent make it."""
    expected_alerts = len(sent) * BOARD

    async def caught_up() -> bool:
        with contextlib.suppress(OSError, asyncpg.PostgresError):  # PostgreSQL still recovering
            return await counts_reached()
        return False

    async def counts_reached() -> bool:
        return (await up.scalar("SELECT count(*) FROM results.reviews WHERE zone_id = $1", ZONE) >= len(sent)
                and await up.scalar("SELECT count(*) FROM notifications.alerts WHERE zone_id = $1", ZONE)
                >= expected_alerts
                and await up.scalar("SELECT count(*) FROM notifications.deliveries WHERE zone_id = $1 AND channel = "
                                    "'email' AND status = 'sent'", ZONE) >= expected_alerts
                and len(up.emails()) >= expected_alerts)

    await wait_for(caught_up, RECOVERY_S, interval_s=0.5, what=f"the zone caught up after phase {loader.phase!r}")
    await wait_for(up.broker_holds_every_sent_event, RECOVERY_S, interval_s=1.0,
                   what=f"every sent event on the broker after phase {loader.phase!r}")

    assert Counter(batch.key for batch in loader.stored) == Counter(batch.key for batch in sent)
    assert await up.scalar("SELECT count(*) FROM results.student_results WHERE zone_id = $1", ZONE) == sum(
        len(batch.rows) for batch in sent)
    reviewed = await up.scalar(
        "SELECT json_agg(json_build_array(school_id::text, subject, version)) FROM results.reviews WHERE zone_id = $1",
        ZONE)
    assert sorted(map(tuple, json.loads(reviewed))) == sorted((b.school_id, b.subject, 1) for b in sent)

    async with httpx.AsyncClient(base_url=up.url("notifications"), timeout=30) as notifications:
        for seat in range(1, BOARD + 1):
            response = await notifications.get(f"/zones/{ZONE}/alerts", params={"state": "all", "limit": 500},
                                               headers=up.token("board", subject=member_subject(seat)))
            assert response.status_code == 200, response.text
            sources = Counter(alert["source_event_id"] for alert in response.json()["items"])
            assert len(sources) == len(sent) and set(sources.values()) == {1}, f"seat {seat}: {sources}"

    emails = up.emails()
    assert Counter(message["To"] for message in emails) == {
        member_subject(seat): len(sent) for seat in range(1, BOARD + 1)}
    assert set(Counter(message["Message-ID"] for message in emails).values()) == {1}

    dead_letter_topics = [topic for entry in SERVICES for topic in entry.definition.dead_letter_topics()]
    assert await read_dead_letters(up.settings, dead_letter_topics) == []
    errors = {answer: n for answer, n in loader.answers.items() if answer[1] not in (200, 201, "no answer")}
    assert set(errors) <= {("postgres", 503)}, errors


@pytest.fixture
def chaos_up() -> Up:
    # Not under pytest's tmp_path: PostgreSQL runs as a user that cannot enter it.
    home = Path(tempfile.mkdtemp(prefix="ezone-chaos-")) / "home"
    port_base, broker_port = four_free_ports(), free_port()
    process, log = start_up(home, port_base, broker_port, "--no-demo")
    up = Up(home, port_base, process, log)
    try:
        wait_for_output(process, log, "Ctrl-C stops everything", timeout_s=120)
        yield up
    finally:
        if process.poll() is None:
            stop_with_ctrl_c(process, log, home)
        shutil.rmtree(home.parent, ignore_errors=True)


async def test_after_each_process_killed_under_load_every_result_review_alert_and_email_is_there_exactly_once(
        chaos_up):
    up = chaos_up
    schools = await set_up_zone(up)
    batches = [Batch(school, subject, student_results([school], students_per_school=STUDENTS_PER_BATCH,
                                                      school_year=SCHOOL_YEAR, subject=subject, seed=n))
               for n, (school, subject) in enumerate((s, j) for s in schools for j in SUBJECTS)]
    async with httpx.AsyncClient(base_url=up.url("results"), timeout=60) as results:
        loader = Loader(results, up.token("sis", schools=schools))
        sent: list[Batch] = []

        def next_batches(count: int) -> list[Batch]:
            taken = batches[len(sent):len(sent) + count]
            sent.extend(taken)
            return taken

        def loading(phase: str, count: int = BATCHES_PER_PHASE) -> asyncio.Task:
            loader.phase = phase
            return asyncio.create_task(loader.post_all(next_batches(count)))

        async def stored_in_phase(count: int) -> None:
            async def stored() -> bool:
                return sum(n for (phase, status), n in loader.answers.items()
                           if phase == loader.phase and status in (200, 201)) >= count

            await wait_for(stored, RECOVERY_S, interval_s=0.05, what=f"{count} batch(es) stored in {loader.phase}")

        await loading("baseline")
        await assert_settled(up, loader, sent)

        # The broker, mid-load; then the second one, once an event reached it.
        load = loading("broker")
        await stored_in_phase(2)
        up.kill("tansu")
        await up.until_said("The broker is back", 1)
        await load
        await loader.post(next_batches(1)[0])

        async def published() -> bool:
            return await up.scalar("SELECT count(*) FROM results.outbox WHERE sent_at IS NULL") == 0

        await wait_for(published, RECOVERY_S, interval_s=0.05, what="results.posted published to the second broker")
        up.kill("tansu")
        await up.until_said("The broker is back", 2)
        await assert_settled(up, loader, sent)

        load = loading("results")
        await stored_in_phase(2)
        up.kill("ezone_results.main:app")
        await up.until_said("the results service started again", 1)
        await load
        await assert_settled(up, loader, sent)

        # Killed while no email is on its way (one in flight would be sent again, under the same Message-ID); the
        # load goes on while it is down.
        up.kill("ezone_notifications.main:app")
        await loading("notifications")
        await up.until_said("the notifications service started again", 1)
        await assert_settled(up, loader, sent)

        up.kill_postgres()
        load = loading("postgres")
        await up.until_said("PostgreSQL is back", 1)
        await load
        await assert_settled(up, loader, sent)

    assert len(sent) == BATCHES_PER_PHASE * 5 + 1
