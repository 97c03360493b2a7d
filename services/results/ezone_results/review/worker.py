"""The review worker: turns waiting review requests into versioned reviews and `review.completed` events.

Woken by NOTIFY (sent in the transaction that queued a request, so only once it committed), with a 1 s
poll as a safety net, it claims requests in batches at once: a burst of `results.posted` for one school is
already one request (the outbox trigger of migration 0006 queues one per school, year and subject per statement),
and requests arriving while a batch is reviewed merge into one row per school. A school's subject
reviewed less than `ezone_review_min_interval_ms` ago, by any worker, waits until then (`Cooldown`), and while its
results keep coming the wait doubles with each review, up to `ezone_review_max_interval_ms`: a bulk load committing
many times a second into the same schools gets a review of them every few seconds, not one per commit (which cost
the load a third of its rate) nor one a second (Ed-Fi records, 2 workers: 1,963/s, 2,178/s with reviews 8 s apart). A batch's claim, its Review rows, the computed aggregates and the outbox rows of its events
commit in one transaction: a crash rolls the claim back and the requests are reviewed again; nothing is reviewed
twice. SKIP LOCKED lets any number of workers (one per replica) share the queue.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from ezone_kit.db import asyncpg_dsn
from ezone_kit.service import Kit
from ezone_kit.telemetry import start_span_continuing, tracer
from ezone_schemas import ReviewCompletedV2
from ezone_schemas.plans import GoalContract
from ezone_schemas.results import GroupMetrics, StateFigures
from ezone_schemas.vocabulary import Subgroup, Subject
from opentelemetry import trace
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..groups import vocabulary
from ..models import Review
from . import queries
from .engine import (
    Measures,
    ReviewInputs,
    Standing,
    assess,
    measures_from_aggregate,
    measures_from_counts,
    previous_school_year,
)
from .policy import ReviewPolicy
from .queries import Key, Request
from .schemas import SubgroupFigures
from .state_ranking import unranked_reason

_log = logging.getLogger("ezone.results.review")

BATCH_SIZE = 500  # schools × subjects per transaction: big enough for set-based SQL, small enough to hold locks briefly
CONCURRENT_BATCHES = 2  # a zone-wide re-review keeps this many database backends (cores) busy
POLL_INTERVAL_S = 1.0
MAX_BACKOFF_S = 10.0

_SUBJECTS = {subject.value: subject for subject in Subject}
_METRIC_FIELDS = tuple(GroupMetrics.model_fields)
_DEFAULT_POLICY = ReviewPolicy()


class Cooldown:
    """When this process last reviewed each key: `claim_requests` leaves a key reviewed too recently by any worker
    (it reads the reviews), and this tells the worker when one of its own keys may be reviewed again, so it looks
    then rather than at the next poll."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic, *,
                 max_interval_s: float | None = None) -> None:
        self.interval_s = interval_s
        self.max_interval_s = interval_s if max_interval_s is None else max(interval_s, max_interval_s)
        self._clock = clock
        self._reviewed_at: dict[Key, float] = {}

    def cooling(self) -> list[Key]:
        """The keys reviewed less than the interval ago (the others are forgotten)."""
        now = self._clock()
        self._reviewed_at = {key: at for key, at in self._reviewed_at.items() if now - at < self.interval_s}
        return list(self._reviewed_at)

    def reviewed(self, keys: list[Key]) -> None:
        self._reviewed_at.update(dict.fromkeys(keys, self._clock()))

    def seconds_until_next(self) -> float | None:
        """Until the first cooling key may be reviewed again; None: none is cooling."""
        if not self.cooling():
            return None
        return min(self._reviewed_at.values()) + self.interval_s - self._clock()


async def review_worker(kit: Kit) -> None:
    wake = asyncio.Event()
    listener: asyncpg.Connection | None = None
    backoff = 0.0
    settings: Settings = kit.settings  # type: ignore[assignment] - the results service's own settings
    cooldown = Cooldown(settings.ezone_review_min_interval_ms / 1000,
                        max_interval_s=settings.ezone_review_max_interval_ms / 1000)
    try:
        while True:
            try:
                if listener is None or listener.is_closed():
                    listener = await asyncpg.connect(asyncpg_dsn(kit.settings.database_url))
                    await listener.add_listener(queries.NOTIFY_CHANNEL, lambda *_: wake.set())
                # A backlog (a full first batch) is shared by concurrent batches; a request or two needs one claim.
                if await review_pending(kit, cooldown=cooldown) == BATCH_SIZE:
                    async with asyncio.TaskGroup() as group:  # one failing batch stops the others: all back off
                        for _ in range(CONCURRENT_BATCHES):
                            group.create_task(_drain(kit, cooldown))
                backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the worker outlives database outages
                backoff = min(MAX_BACKOFF_S, max(0.25, backoff * 2))
                cause = exc.exceptions[0] if isinstance(exc, ExceptionGroup) else exc
                _log.warning("review worker: %s; retrying in %.1fs", cause, backoff)
                if listener is not None and listener.is_closed():
                    listener = None
                await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                continue
            # Requests of a cooling key may be waiting: look again when it has cooled, whether or not a NOTIFY comes.
            cooled_in = cooldown.seconds_until_next()
            try:
                await asyncio.wait_for(wake.wait(), POLL_INTERVAL_S if cooled_in is None else min(POLL_INTERVAL_S, cooled_in))
            except TimeoutError:
                pass
            wake.clear()
    finally:
        if listener is not None:
            listener.terminate()


async def _drain(kit: Kit, cooldown: Cooldown) -> None:
    while await review_pending(kit, cooldown=cooldown) == BATCH_SIZE:
        pass


async def review_pending(kit: Kit, limit: int = BATCH_SIZE, cooldown: Cooldown | None = None) -> int:
    """Claim and review one batch of waiting requests (none of a key `cooldown` holds back); return how many requests
    it took."""
    started = time.perf_counter()
    async with kit.sessions() as session:
        async with session.begin():
            requests = await queries.claim_requests(session, limit, cooldown.interval_s if cooldown else 0.0,
                                                    cooldown.max_interval_s if cooldown else None)
            if not requests:
                return 0
            with _ReviewSpans(requests) as spans:
                with trace.use_span(spans.batch):
                    events = await review(session, requests, date.today())
                    await kit.outbox.insert_rows(session, [row for event in events for row in spans.rows(kit, event)])
    if cooldown is not None:
        cooldown.reviewed([request.key for request in requests])
    _log.info("reviewed %d of %d requests in %.0f ms", len(events), len(requests), 1000 * (time.perf_counter() - started))
    return len(requests)


class _ReviewSpans:
    """A span per request reviewed, continuing the trace of what asked for it first and linking the other causes
    (coalesced into the request), from its claim until its review and event are written. Each event's outbox row
    carries its review's span, so the `review.completed` send, the consumers and their alerts stay in that trace. The
    batch's statements serve every request: they run in the review's span when there is one request (a school's new
    results), else in a span of the batch that links every review."""

    def __init__(self, requests: list[Request]) -> None:
        self._spans = {request.key: start_span_continuing("review", request.trace_contexts, attributes={
            "ezone.zone.id": request.zone_id, "ezone.school.id": str(request.school_id),
            "ezone.school_year": request.school_year, "ezone.subject": request.subject,
        }) for request in requests}
        self.batch = next(iter(self._spans.values())) if len(self._spans) == 1 else tracer().start_span(
            "review batch", attributes={"ezone.review.requests": len(requests)},
            links=[trace.Link(span.get_span_context()) for span in self._spans.values()])

    def rows(self, kit: Kit, event: ReviewCompletedV2) -> list[dict[str, Any]]:
        """The event's outbox rows (v1, then v2: both are published while consumers move to v2), in its review's
        trace; the review's outcome on its span."""
        span = self._spans[(event.school_id, event.school_year, event.subject.value)]
        span.set_attributes({"ezone.review.version": event.version, "ezone.review.status": event.status.value,
                             "ezone.review.id": str(event.review_id)})
        with trace.use_span(span):
            return kit.outbox.rows([event.as_v1(), event])

    def __enter__(self) -> _ReviewSpans:
        return self

    def __exit__(self, _type: object, error: BaseException | None, _traceback: object) -> None:
        for span in {*self._spans.values(), self.batch}:
            if error is not None:
                span.record_exception(error)
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
            span.end()


async def review(session: AsyncSession, requests: list[Request], as_of: date) -> list[ReviewCompletedV2]:
    """Review every requested school, year and subject that has data; store the reviews; return their events."""
    batch = await _Batch.load(session, requests)
    reviewed = [r for r in batch.requests if batch.current[r.key][0]]  # a key without any data has nothing to review
    await queries.store_computed_aggregates(session, [
        _computed_row(batch.schools[r.school_id], r, m)
        for r in reviewed if r.key in batch.counts and r.school_id in batch.schools
        for m in batch.current[r.key][0].values() if m.n_tested
    ])
    # Compared with every school's figures as each school's zone sees them, this batch's just written included.
    asked = {(school.zone_id, school.code) for school in batch.schools.values()}
    ranks = await queries.percentile_counts(session, {(r.school_year, r.subject) for r in reviewed}, asked)
    gains = await queries.gain_distributions(
        session, {(r.school_year, batch.previous[r.key], r.subject) for r in reviewed if batch.previous[r.key]}, asked)
    drops = await queries.low_scorer_drops(session, batch.numbers, [
        (r.key, earlier) for r in reviewed if r.key in batch.counts and (earlier := batch.earlier(r.key)) in batch.counts])
    standings = await queries.standings(session, [r.key for r in reviewed])

    completed_at = datetime.now(UTC)
    events, rows = [], []
    for request in reviewed:
        key = request.key
        policy_version, policy = batch.policy(request.zone_id)
        measures, input_batches = batch.current[key]
        school = batch.schools.get(request.school_id)
        zone, code = (school.zone_id, school.code) if school is not None else (None, None)
        comparison = None
        if (zone, request.school_year, request.subject) in gains:
            distribution, own = gains[(zone, request.school_year, request.subject)]
            comparison = distribution.without(own.get(code))
        standing = standings[key]
        # Student figures name the assessments they counted; a state's aggregates name none.
        counted = batch.counts[key].assessments if key in batch.counts else []
        assessment = assess(ReviewInputs(
            school_year=request.school_year,
            subject=_SUBJECTS[request.subject],
            policy=policy,
            measures=measures,
            previous_all_students=batch.measures(batch.earlier(key))[0].get(Subgroup.ALL_STUDENTS),
            standings={subgroup: Standing.of(ranks.get((zone, code, *key[1:], subgroup)),
                                             unranked_reason((code or "", *key[1:], subgroup), m.n_tested))
                       for subgroup, m in measures.items()},
            comparison=comparison,
            drop=drops.get(key),
            goals=[GoalContract.model_validate(goal) for goal in standing.goals],
            as_of=as_of,
            assessments=counted,
        ))
        event = ReviewCompletedV2(
            review_id=uuid.uuid4(), zone_id=request.zone_id, school_id=request.school_id, school_year=request.school_year,
            subject=request.subject, version=standing.review_version + 1, status=assessment.status, goals=assessment.goals,
            metrics=[GroupMetrics(**m.model_dump(include=set(_METRIC_FIELDS))) for m in assessment.metrics],
            flags=assessment.flags, policy_version=policy_version, plan_version=standing.plan_version,
            # The batches that asked for the review, then those whose rows it read.
            batch_ids=list(dict.fromkeys([*map(uuid.UUID, request.batch_ids), *input_batches])),
            completed_at=completed_at, assessments=counted, reason=assessment.reason, current=assessment.current,
            state=batch.state_figures(request.school_year, request.subject),
        )
        events.append(event)
        rows.append(_review_row(event, assessment.metrics))
    if rows:
        await session.execute(insert(Review), rows)
    return events


class _Batch:
    """What one batch of requests is judged with, loaded set-wise: policies, schools, student counts, aggregates."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.schools: dict[uuid.UUID, queries.DirectoryEntry] = {}
        self.policies: dict[str, tuple[int, ReviewPolicy]] = {}
        self.default_policy = _DEFAULT_POLICY
        self.previous: dict[Key, str | None] = {}
        self.numbers: dict[Key, int] = {}
        self.counts: dict[Key, queries.KeyCounts] = {}
        self.state: dict[queries.AggregateKey, queries.AggregateRows] = {}
        self.current: dict[Key, tuple[dict[str, Measures], list[uuid.UUID]]] = {}

    @classmethod
    async def load(cls, session: AsyncSession, requests: list[Request]) -> _Batch:
        batch = cls()
        batch.schools = await queries.directory(session, (r.school_id for r in requests))
        # A policy that names no groups of its own uses those the deployment's vocabulary flags for accountability.
        accountability = (await vocabulary.load(session)).accountability
        batch.default_policy = _DEFAULT_POLICY.with_groups(accountability)
        batch.policies = {zone: (version, ReviewPolicy.model_validate(document).with_groups(accountability))
                          for zone, (version, document)
                          in (await queries.latest_policies(session, {r.zone_id for r in requests})).items()}
        for request in requests:
            subject = _SUBJECTS.get(request.subject)
            if subject is None or subject not in batch.policy(request.zone_id)[1].subjects:
                _log.info("no review of %s: %s is not a subject its zone tracks", request.key, request.subject)
            else:
                batch.requests.append(request)
        batch.previous = {r.key: previous_school_year(r.school_year) for r in batch.requests}
        keys = [r.key for r in batch.requests]
        earlier = [k for k in map(batch.earlier, keys) if k is not None]
        # Each year is read under the policy in force now, so a comparison with last year compares like with like.
        zones = {r.school_id: r.zone_id for r in batch.requests}
        batch.numbers = await queries.load_students(session, [*keys, *earlier], zones, {
            zone: batch.policy(zone)[1] for zone in zones.values()})
        batch.counts = await queries.student_counts(session, batch.numbers)
        # The statewide row too: the review carries it for comparisons with the state.
        batch.state = await queries.aggregates(
            session, {queries.STATE_TOTAL_CODE, *(school.code for school in batch.schools.values())},
            {key[1] for key in [*keys, *earlier]}, {key[2] for key in keys})
        batch.current = {key: batch.measures(key) for key in keys}
        return batch

    def policy(self, zone_id: str) -> tuple[int | None, ReviewPolicy]:
        # Until the zone's policy arrives, the defaults hold, and the review names no policy version.
        return self.policies.get(zone_id, (None, self.default_policy))

    def earlier(self, key: Key) -> Key | None:
        year = self.previous.get(key)
        return None if year is None else (key[0], year, key[2])

    def state_figures(self, school_year: str, subject: str) -> StateFigures | None:
        rows = self.state.get((queries.STATE_TOTAL_CODE, school_year, subject))
        figures = rows.subgroups.get(Subgroup.ALL_STUDENTS.value) if rows is not None else None
        if figures is None:
            return None
        return StateFigures(proficiency_rate=figures.proficiency_rate,
                            median_growth_percentile=figures.median_growth_percentile,
                            participation_rate=figures.participation_rate)

    def measures(self, key: Key | None) -> tuple[dict[str, Measures], list[uuid.UUID]]:
        """From the school's student rows; without any, from the state's figures of its code (e.g. MCAS)."""
        if key in self.counts:
            found = self.counts[key]
            return ({name: measures_from_counts(name, c, enrollments_known=found.enrollments_known)
                     for name, c in found.subgroups.items()}, found.batch_ids)
        school = self.schools.get(key[0]) if key is not None else None
        rows = self.state.get((school.code, key[1], key[2])) if school is not None else None
        if rows is None:
            return {}, []
        return ({name: measures_from_aggregate(name, row) for name, row in rows.subgroups.items()}, rows.batch_ids)


def _review_row(event: ReviewCompletedV2, figures: list[SubgroupFigures]) -> dict[str, Any]:
    """The stored review: the event's content, with each figure's provenance (source, participation basis)."""
    return {
        "id": event.review_id, "zone_id": event.zone_id, "school_id": event.school_id, "school_year": event.school_year,
        "subject": event.subject.value, "version": event.version, "status": event.status.value,
        "metrics": [m.model_dump(mode="json") for m in figures],
        "goals": [g.model_dump(mode="json") for g in event.goals],
        "flags": [f.model_dump(mode="json") for f in event.flags],
        "reason": event.reason.model_dump(mode="json") if event.reason is not None else None,
        "policy_version": event.policy_version, "plan_version": event.plan_version,
        "batch_ids": [str(b) for b in event.batch_ids], "created_at": event.completed_at,
    }


def _computed_row(school: queries.DirectoryEntry, request: Request, measures: Measures) -> dict[str, Any]:
    """A zone school's own figures, as a school-level aggregate row of its zone's."""
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "zone_id": school.zone_id, "school_code": school.code, "school_year": request.school_year,
        "subject": request.subject, "subgroup": measures.subgroup, "school_name": school.name,
        "n_tested": measures.n_tested, "proficiency_rate": rounded(measures.proficiency_rate),
        "average_scaled_score": rounded(measures.average_scaled_score),
        "median_growth_percentile": rounded(measures.median_growth_percentile),
        "participation_rate": rounded(measures.participation_rate),
    }
