"""The review engine's SQL: set-based, one statement per concern for a whole batch of schools.

Every query takes the batch's keys as parallel arrays (unnest), so reviewing 500 schools costs the same
few statements as reviewing one: student rows are grouped by school and subgroup (unnest(subgroups))
inside PostgreSQL, never looped over in Python.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ezone_kit.db import json_text
from ezone_kit.telemetry import current_trace_headers
from ezone_schemas.vocabulary import ResultChoice
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import ComputedAggregate
from .engine import AggregateFigures, DropCounts, GainDistribution, StudentCounts, state_code
from .policy import ReviewPolicy
from .schemas import AssessmentCounted
from .state_ranking import STATE_MINIMUM_N, TOTALS_CODE_PATTERN, excluded_columns

NOTIFY_CHANNEL = "results_review_requested"
STATE_TOTAL_CODE = "00000000"  # a state file's statewide row: never a school to compare with

# engine.state_code in SQL, for the school directory's codes.
_STATE_CODE_SQL = "CASE WHEN s.code ~ '^[0-9]{1,8}$' THEN lpad(s.code, 8, '0') ELSE s.code END"

Key = tuple[uuid.UUID, str, str]  # school, school year, subject
ANALYZE_ABOVE_ROWS = 10_000
LARGE_BATCH_KEYS = 20


def _columns(keys: Iterable[Key]) -> dict[str, list[Any]]:
    keys = list(keys)
    return {"school_ids": [k[0] for k in keys], "years": [k[1] for k in keys], "subjects": [k[2] for k in keys]}


_KEYS_CTE = """keys AS (
    SELECT DISTINCT * FROM unnest(CAST(:school_ids AS uuid[]), CAST(:years AS text[]), CAST(:subjects AS text[]))
        AS k(school_id, school_year, subject)
)"""


# --- the request queue ---------------------------------------------------------------------------

# A request keeps at most this many causes' trace contexts (the trigger of migration 0015 keeps as many).
MAX_TRACE_CONTEXTS = 32

_ENQUEUE_ON_CONFLICT = f"""
ON CONFLICT (school_id, school_year, subject)
DO UPDATE SET batch_ids = review_requests.batch_ids || excluded.batch_ids,
    trace_contexts = CASE WHEN jsonb_array_length(review_requests.trace_contexts) < {MAX_TRACE_CONTEXTS}
                     THEN review_requests.trace_contexts || excluded.trace_contexts
                     ELSE review_requests.trace_contexts END
"""


def _trace_contexts() -> str:
    """The asking transaction's trace context, as a request's `trace_contexts` (JSON)."""
    headers = current_trace_headers()
    return json_text([headers] if headers else [])


async def enqueue(session: AsyncSession, zone_id: str, keys: Sequence[Key], reason: str) -> None:
    """Ask for a review of each key; requests for a key already waiting merge into its row (a burst is one review).
    (New results queue theirs by the outbox trigger of migration 0006, with their batch ids.)"""
    if not keys:
        return
    await session.execute(
        text(f"""WITH {_KEYS_CTE}
            INSERT INTO results.review_requests (school_id, school_year, subject, zone_id, reason, trace_contexts)
            SELECT school_id, school_year, subject, :zone_id, :reason, CAST(:trace_contexts AS jsonb) FROM keys
            {_ENQUEUE_ON_CONFLICT}"""),
        {**_columns(keys), "zone_id": zone_id, "reason": reason, "trace_contexts": _trace_contexts()},
    )
    await notify_worker(session)


async def enqueue_zone(session: AsyncSession, zone_id: str, reason: str) -> None:
    """Ask for a review of every school, year and subject of the zone that has student results or aggregates."""
    await _enqueue_all_data(session, "s.zone_id = :zone_id", {"zone_id": zone_id}, reason)


async def enqueue_school(session: AsyncSession, school_id: uuid.UUID, reason: str) -> None:
    """Ask for a review of every year and subject the school has student results or aggregates for."""
    await _enqueue_all_data(session, "s.id = :school_id", {"school_id": school_id}, reason)


async def _enqueue_all_data(session: AsyncSession, schools_where: str, params: dict[str, Any], reason: str) -> None:
    await session.execute(
        text(f"""
            INSERT INTO results.review_requests (school_id, school_year, subject, zone_id, reason, trace_contexts)
            SELECT s.id, d.school_year, d.subject, s.zone_id, :reason, CAST(:trace_contexts AS jsonb)
            FROM results.schools s
            CROSS JOIN LATERAL (
                SELECT DISTINCT sr.school_year, sr.subject FROM results.student_results sr WHERE sr.school_id = s.id
                UNION
                SELECT a.school_year, a.subject FROM results.school_aggregates a WHERE a.school_code = {_STATE_CODE_SQL}
            ) d
            WHERE {schools_where}
            {_ENQUEUE_ON_CONFLICT}"""),
        {**params, "reason": reason, "trace_contexts": _trace_contexts()},
    )
    await notify_worker(session)


async def lock_school_codes(session: AsyncSession, *, exclusive: bool) -> None:
    """Held by a state file's import (shared) and by a change to the directory's codes (exclusive) until commit, so
    one of the two always sees the other's rows: the import announces the school, or the directory change finds
    the figures. Without it, each could miss the other's uncommitted rows and the school would go unreviewed."""
    lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
    await session.execute(select(lock(func.hashtextextended("ezone.results.school-codes", 0))))


async def notify_worker(session: AsyncSession) -> None:
    # Delivered when (and only if) the transaction commits: the worker never wakes for a request it cannot see.
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


@dataclass(frozen=True)
class Request:
    school_id: uuid.UUID
    school_year: str
    subject: str
    zone_id: str
    batch_ids: list[str]
    trace_contexts: list[dict[str, str]] = field(default_factory=list)  # of its causes, first first

    @property
    def key(self) -> Key:
        return (self.school_id, self.school_year, self.subject)


async def claim_requests(session: AsyncSession, limit: int, min_interval_s: float = 0.0,
                         max_interval_s: float | None = None) -> list[Request]:
    """Take up to `limit` waiting requests, oldest first, but none of a key reviewed too recently, by any worker (they
    wait): its latest review began less than `min_interval_s` ago, or, while it keeps being reviewed (results
    streaming in), less than that doubled per further review it had in the last 4 × `max_interval_s`, at most
    `max_interval_s`. A long bulk load then reviews a school's subject every `max_interval_s`, not every second; a
    subject quiet that long is reviewed at once. Deleted in the caller's transaction: a crash puts them back; SKIP LOCKED lets
    other workers take the rest meanwhile. A school's years are taken together where possible, so a batch reads the
    previous year it compares with once."""
    rows = await session.execute(
        text("""
            DELETE FROM results.review_requests r
            WHERE (r.school_id, r.school_year, r.subject) IN (
                SELECT q.school_id, q.school_year, q.subject FROM results.review_requests q
                WHERE :min_interval_s = 0 OR coalesce((
                    SELECT max(v.created_at) < now() - make_interval(
                        secs => least(:max_interval_s, :min_interval_s * power(2, count(*) - 1)))
                    FROM results.reviews v
                    WHERE v.school_id = q.school_id AND v.school_year = q.school_year AND v.subject = q.subject
                      AND v.created_at > now() - make_interval(secs => 4 * :max_interval_s)), true)
                ORDER BY q.requested_at, q.school_id, q.subject, q.school_year LIMIT :limit FOR UPDATE OF q SKIP LOCKED)
            RETURNING r.school_id, r.school_year, r.subject, r.zone_id, r.batch_ids, r.trace_contexts"""),
        {"limit": limit, "min_interval_s": min_interval_s,
         "max_interval_s": max(min_interval_s, max_interval_s if max_interval_s is not None else min_interval_s)},
    )
    return [Request(row.school_id, row.school_year, row.subject, row.zone_id, list(row.batch_ids),
                    list(row.trace_contexts)) for row in rows]


# --- what a review is judged against --------------------------------------------------------------

@dataclass(frozen=True)
class DirectoryEntry:
    zone_id: str
    code: str  # as school_aggregates stores it (state_code)
    name: str


async def directory(session: AsyncSession, school_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DirectoryEntry]:
    rows = await session.execute(
        text("SELECT id, zone_id, code, name FROM results.schools WHERE id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": list(set(school_ids))})
    return {row.id: DirectoryEntry(row.zone_id, state_code(row.code), row.name) for row in rows}


async def latest_policies(session: AsyncSession, zone_ids: Iterable[str]) -> dict[str, tuple[int, dict]]:
    rows = await session.execute(
        text("""SELECT DISTINCT ON (zone_id) zone_id, version, document FROM results.zone_policies
                WHERE zone_id = ANY(CAST(:zones AS text[])) ORDER BY zone_id, version DESC"""),
        {"zones": list(set(zone_ids))},
    )
    return {row.zone_id: (row.version, row.document) for row in rows}


@dataclass(frozen=True)
class Standing:
    """What a key's review builds on: the school's approved plan for the year, and the review version before it."""

    plan_version: int | None
    goals: list
    review_version: int  # 0: none yet


async def standings(session: AsyncSession, keys: Iterable[Key]) -> dict[Key, Standing]:
    rows = await session.execute(
        text(f"""WITH {_KEYS_CTE}
            SELECT k.school_id, k.school_year, k.subject, p.version AS plan_version, p.goals,
                   coalesce((SELECT max(r.version) FROM results.reviews r WHERE r.school_id = k.school_id
                             AND r.school_year = k.school_year AND r.subject = k.subject), 0) AS review_version
            FROM keys k LEFT JOIN results.approved_plans p USING (school_id, school_year)"""),
        _columns(keys),
    )
    return {(row.school_id, row.school_year, row.subject): Standing(row.plan_version, row.goals or [], row.review_version)
            for row in rows}


# --- metrics -------------------------------------------------------------------------------------

# The student rows a review counts: those of an assessment the zone's policy names (`accountability_assessments`), one
# per key and student by the policy's `result_choice`. Every tie is broken by the row's own values, down to its
# assessment (a student has one row per assessment and day), so the choice never depends on the order rows arrived
# in. The policies' entries become a CASE over each row (`entry`: the first entry naming its assessment; none: the
# row does not count), with their values as parameters: evaluated as each row is read, with no join (a join with the
# entries made the planner read each key's rows once per entry).
_LOAD_STUDENTS = """
CREATE TEMPORARY TABLE review_students ON COMMIT DROP AS
SELECT DISTINCT ON (sr.k, sr.student_id)
       sr.k, sr.school_id, sr.school_year, sr.student_id, sr.grade, sr.administration_date, sr.batch_id,
       sr.assessment_namespace, sr.assessment_identifier, sr.assessment_category, sr.scale_score, sr.tested,
       {proficient} AS proficient,
       sr.growth_percentile, sr.not_tested_reason IS NOT NULL AS has_reason, sr.subgroups
FROM unnest(CAST(:school_ids AS uuid[]), CAST(:years AS text[]), CAST(:subjects AS text[]), CAST(:zones AS text[]),
            CAST(:choices AS text[]))
    WITH ORDINALITY AS k(school_id, school_year, subject, policy_zone, choice, k)
-- One index range per key (OFFSET 0 keeps the planner from flattening this into a hash of the whole table).
CROSS JOIN LATERAL (
    SELECT k.k, k.choice, r.*, (r.scale_score IS NOT NULL OR r.performance_level IS NOT NULL) AS tested, {entry} AS entry
    FROM results.student_results r
    WHERE r.school_id = k.school_id AND r.school_year = k.school_year AND r.subject = k.subject
    OFFSET 0
) sr
WHERE sr.entry IS NOT NULL
ORDER BY sr.k, sr.student_id,
         sr.tested DESC,  -- a score or a level beats a not-tested row, whatever the choice
         {choice},
         sr.assessment_namespace, sr.assessment_identifier
"""

# Each result_choice as an ordering of one student's rows (after a tested row before a not-tested one).
_CHOICE_ORDER = {
    ResultChoice.LATEST: "sr.administration_date DESC, sr.scale_score DESC NULLS LAST",
    ResultChoice.EARLIEST: "sr.administration_date, sr.scale_score DESC NULLS LAST",
    ResultChoice.HIGHEST_SCORE: "sr.scale_score DESC NULLS LAST, sr.administration_date DESC",
}
# A batch of zones with different choices: each key's own, by its `choice`.
_MIXED_CHOICE_ORDER = ("CASE WHEN sr.choice = 'earliest' THEN sr.administration_date END, "
                       "CASE WHEN sr.choice = 'highest_score' THEN sr.scale_score END DESC NULLS LAST, "
                       "sr.administration_date DESC, sr.scale_score DESC NULLS LAST")


def _selection(key_zones: Sequence[str], policies: Mapping[str, ReviewPolicy]) -> tuple[dict[str, str], dict[str, Any]]:
    """The SQL of `_LOAD_STUDENTS`' placeholders for these zones' policies, and the parameters it names."""
    zones = sorted(set(key_zones))
    params: dict[str, Any] = {}
    matches, levels = [], []
    number = 0
    for z, zone in enumerate(zones):
        conditions_of_zone = []
        if len(zones) > 1:  # a batch of several zones: each key's own zone's entries
            conditions_of_zone.append(f"k.policy_zone = :zone_{z}")
            params[f"zone_{z}"] = zone
        for rule in policies[zone].accountability_assessments:
            conditions = list(conditions_of_zone)
            for column, value, name in (("r.assessment_namespace", rule.namespace, "namespace"),
                                        ("r.assessment_identifier", rule.assessment_identifier, "identifier"),
                                        ("r.assessment_category", rule.assessment_category, "category")):
                if value is not None:
                    conditions.append(f"{column} = :{name}_{number}")
                    params[f"{name}_{number}"] = value
            for column, values, name in (("r.subject", rule.subjects, "subjects"), ("r.grade", rule.grades, "grades")):
                if values is not None:
                    conditions.append(f"{column} = ANY(CAST(:{name}_{number} AS text[]))")
                    params[f"{name}_{number}"] = list(values)
            matches.append(f"WHEN {' AND '.join(conditions) or 'true'} THEN {number}")
            if rule.proficient_levels:
                levels.append(f"WHEN {number} THEN lower(sr.performance_level) = ANY(CAST(:levels_{number} AS text[]))")
                params[f"levels_{number}"] = [level.lower() for level in rule.proficient_levels]
            number += 1
    choices = {policies[zone].result_choice for zone in zones}
    return {
        "entry": f"CASE {' '.join(matches)} END" if matches else "NULL::int",
        # A level the entry lists is proficient and any other level is not; without a list (or a level), the row's flag.
        "proficient": (f"CASE WHEN sr.performance_level IS NULL THEN sr.proficient ELSE CASE sr.entry {' '.join(levels)} "
                       f"ELSE sr.proficient END END") if levels else "sr.proficient",
        "choice": _CHOICE_ORDER[choices.pop()] if len(choices) == 1 else _MIXED_CHOICE_ORDER,
    }, params


async def load_students(session: AsyncSession, keys: Sequence[Key], zones: Mapping[uuid.UUID, str],
                        policies: Mapping[str, ReviewPolicy]) -> dict[Key, int]:
    """Read the batch's students from student_results once, into a temporary table the other queries share: one row
    per key and student, of an assessment the policy of the school's zone (`zones`, `policies`) counts, chosen by
    its `result_choice`. Keys are numbered (`k`), so the big GROUP BYs sort narrow rows; returns each key's number."""
    numbers = {key: number for number, key in enumerate(dict.fromkeys(keys), start=1)}
    if len(numbers) > LARGE_BATCH_KEYS:  # a big batch's sorts stay in memory; a few schools' fit in the default
        await session.execute(text("SET LOCAL work_mem = '128MB'"))
    key_zones = [zones[key[0]] for key in numbers]
    sql, params = _selection(key_zones, policies)
    loaded = await session.execute(text(_LOAD_STUDENTS.format(**sql)), {
        **_columns(numbers), **params, "zones": key_zones,
        "choices": [policies[zone].result_choice.value for zone in key_zones],
    })
    if loaded.rowcount > ANALYZE_ABOVE_ROWS:  # the planner needs statistics to join a big batch well, not a school's rows
        await session.execute(text("ANALYZE review_students"))
    return numbers


# Hash aggregates wherever the order does not matter; the one sort left is the GROUP BY the median needs.
_STUDENT_COUNTS = """
WITH tested_grades AS (
    -- Each tested grade and its testing window: who was enrolled in it while the school tested was expected to test.
    SELECT k, school_id, school_year, grade, min(administration_date) AS first_day, max(administration_date) AS last_day
    FROM review_students GROUP BY k, school_id, school_year, grade
),
enrolled AS (
    SELECT g.k, e.student_id, min(e.subgroups) AS subgroups  -- one row per student, however many enrollments
    FROM tested_grades g
    JOIN results.enrollments e
      ON e.school_id = g.school_id AND e.school_year = g.school_year AND e.grade = g.grade
     AND e.entry_date <= g.last_day AND (e.exit_date IS NULL OR e.exit_date >= g.first_day)
    GROUP BY g.k, e.student_id
),
students AS (
    SELECT k, t.tested, t.scale_score, t.proficient, t.growth_percentile, t.has_reason,
           e.student_id IS NOT NULL AS enrolled, coalesce(t.subgroups, e.subgroups) AS subgroups
    FROM review_students t FULL JOIN enrolled e USING (k, student_id)
)
SELECT k, g.subgroup,
       count(*) AS n_students,
       count(*) FILTER (WHERE enrolled) AS n_enrolled,
       count(*) FILTER (WHERE tested) AS n_tested,  -- a scale score or a performance level
       count(scale_score) AS n_scored,
       count(*) FILTER (WHERE tested AND proficient) AS n_proficient,
       avg(scale_score)::float8 AS average_scaled_score,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY growth_percentile::float8) AS median_growth_percentile,
       count(*) FILTER (WHERE tested IS NOT TRUE AND has_reason) AS n_not_tested_with_reason
FROM students CROSS JOIN LATERAL unnest(array_prepend('all_students'::text, subgroups)) AS g(subgroup)
GROUP BY k, g.subgroup
"""

# Which batches and assessments each key's counted rows came from (a few groups per key: one hash aggregate).
_SOURCES = """
SELECT k, batch_id, assessment_namespace, assessment_identifier, assessment_category,
       count(*) AS students, count(*) FILTER (WHERE tested) AS tested
FROM review_students GROUP BY k, batch_id, assessment_namespace, assessment_identifier, assessment_category
"""


@dataclass
class KeyCounts:
    subgroups: dict[str, StudentCounts]
    batch_ids: list[uuid.UUID]
    assessments: list[AssessmentCounted] = field(default_factory=list)

    @property
    def enrollments_known(self) -> bool:
        everyone = self.subgroups.get("all_students")
        return everyone is not None and everyone.n_enrolled > 0


async def student_counts(session: AsyncSession, numbers: dict[Key, int]) -> dict[Key, KeyCounts]:
    """Per loaded key and subgroup (all_students + every subgroup on a student row): the counts behind every metric."""
    keys = {number: key for key, number in numbers.items()}
    batches: dict[Key, set[uuid.UUID]] = {}
    assessments: dict[Key, dict[tuple[str, str, str | None], list[int]]] = {}
    for row in await session.execute(text(_SOURCES)):
        key = keys[row.k]
        batches.setdefault(key, set()).add(row.batch_id)
        counted = assessments.setdefault(key, {}).setdefault(
            (row.assessment_namespace, row.assessment_identifier, row.assessment_category), [0, 0])
        counted[0] += row.students
        counted[1] += row.tested
    found = {
        key: KeyCounts({}, sorted(batches[key], key=str), [
            AssessmentCounted(namespace=namespace, assessment_identifier=identifier, assessment_category=category,
                              students=students, tested=tested)
            for (namespace, identifier, category), (students, tested) in sorted(
                assessments[key].items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or ""))])
        for key in batches
    }
    for row in await session.execute(text(_STUDENT_COUNTS)):
        found[keys[row.k]].subgroups[row.subgroup] = StudentCounts(
            n_students=row.n_students, n_enrolled=row.n_enrolled, n_tested=row.n_tested, n_scored=row.n_scored,
            n_proficient=row.n_proficient,
            average_scaled_score=row.average_scaled_score, median_growth_percentile=row.median_growth_percentile,
            n_not_tested_with_reason=row.n_not_tested_with_reason,
        )
    return found


AggregateKey = tuple[str, str, str]  # school code, school year, subject


@dataclass
class AggregateRows:
    subgroups: dict[str, AggregateFigures]
    batch_ids: list[uuid.UUID]


async def aggregates(session: AsyncSession, codes: Iterable[str], years: Iterable[str],
                     subjects: Iterable[str]) -> dict[AggregateKey, AggregateRows]:
    """The state's published figures of these codes (what a school without student rows is reviewed from)."""
    rows = await session.execute(
        text("""SELECT school_code, school_year, subject, subgroup, n_tested, batch_id,
                       proficiency_rate::float8 AS proficiency_rate, average_scaled_score::float8 AS average_scaled_score,
                       median_growth_percentile::float8 AS median_growth_percentile,
                       participation_rate::float8 AS participation_rate
                FROM results.school_aggregates
                WHERE school_code = ANY(CAST(:codes AS text[])) AND school_year = ANY(CAST(:years AS text[]))
                  AND subject = ANY(CAST(:subjects AS text[]))"""),
        {"codes": list(set(codes)), "years": list(set(years)), "subjects": list(set(subjects))},
    )
    found: dict[AggregateKey, AggregateRows] = {}
    for row in rows:
        entry = found.setdefault((row.school_code, row.school_year, row.subject), AggregateRows({}, []))
        entry.subgroups[row.subgroup] = AggregateFigures(
            n_tested=row.n_tested, proficiency_rate=row.proficiency_rate, average_scaled_score=row.average_scaled_score,
            median_growth_percentile=row.median_growth_percentile, participation_rate=row.participation_rate,
        )
        if row.batch_id is not None and row.batch_id not in entry.batch_ids:
            entry.batch_ids.append(row.batch_id)
    return found


async def store_computed_aggregates(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """A zone school's own figures, kept for its zone alone: in that zone's comparisons they replace the state's row of
    the school's code (so the school counts once, with the newest numbers); the state's row stays as published."""
    if rows:
        await session.execute(_UPSERT_COMPUTED_AGGREGATES, rows)


def _upsert_computed_aggregates() -> Any:
    # Built once: `excluded` makes a new alias of the table, with every column, each time it is asked for.
    table = ComputedAggregate.__table__
    statement = pg_insert(table)
    updated = ("school_name", "n_tested", "proficiency_rate", "average_scaled_score", "median_growth_percentile",
               "participation_rate")
    return statement.on_conflict_do_update(
        index_elements=[table.c.zone_id, table.c.school_code, table.c.school_year, table.c.subject, table.c.subgroup],
        set_={name: statement.excluded[name] for name in updated} | {"updated_at": func.now()},
    )


_UPSERT_COMPUTED_AGGREGATES = _upsert_computed_aggregates()


# What a zone compares its schools with: every school's figures as the state published them, except where the zone
# computed its own school's figures from its student rows (computed_aggregates), which stand in for them. Another
# zone's computed figures never enter: nothing one zone sends changes another zone's reviews.
ZoneSchool = tuple[str, str]  # zone, school code
PercentileKey = tuple[str, str, str, str, str]  # zone, school code, school year, subject, subgroup

# A few schools' standings are counted, each over its own year, subject and subgroup (an index range): no sort, and the
# cost is the groups asked about. Many schools' (a state-wide re-review) are ranked in one window over every school
# of the year and subject, then kept: one sort, whatever the number asked. Measured with 1,800 schools of 10 subgroups
# a year and subject: 1 school 5 vs 28 ms, 10 schools 40 vs 78 ms, 30 schools 119 vs 81 ms, 100 schools 418 vs 93 ms.
COUNTED_PERCENTILES_MAX_CODES = 16

# The groups the state published no percentile for (state_ranking.state_unranked), and a row the state's ranking counts:
# an average, no totals row, at least the state's minimum n, not one of those groups.
_STATE_UNRANKED = """
    state_unranked AS (
        SELECT * FROM unnest(CAST(:unranked_codes AS text[]), CAST(:unranked_years AS text[]),
                             CAST(:unranked_subjects AS text[]), CAST(:unranked_subgroups AS text[]))
    )"""


def _ranked(alias: str) -> str:
    return (f"{alias}.average_scaled_score IS NOT NULL AND {alias}.school_code !~ :totals"
            f" AND coalesce({alias}.n_tested, :state_minimum_n) >= :state_minimum_n"
            f" AND ({alias}.school_code, {alias}.school_year, {alias}.subject, {alias}.subgroup)"
            " NOT IN (SELECT * FROM state_unranked)")


# Each asked school's figures as its zone sees them.
_OWN_FIGURES = """
    own AS (
        SELECT a.zone_id, x.school_code, x.school_year, x.subject, x.subgroup, x.average_scaled_score, x.n_tested
        FROM asked a CROSS JOIN pairs p
        JOIN results.computed_aggregates x ON x.zone_id = a.zone_id AND x.school_code = a.school_code
         AND x.school_year = p.school_year AND x.subject = p.subject
        UNION ALL
        SELECT a.zone_id, o.school_code, o.school_year, o.subject, o.subgroup, o.average_scaled_score, o.n_tested
        FROM asked a CROSS JOIN pairs p
        JOIN results.school_aggregates o ON o.school_code = a.school_code
         AND o.school_year = p.school_year AND o.subject = p.subject
        WHERE NOT EXISTS (SELECT FROM results.computed_aggregates x WHERE x.zone_id = a.zone_id
                          AND x.school_code = o.school_code AND x.school_year = o.school_year AND x.subject = o.subject
                          AND x.subgroup = o.subgroup)
    )"""

_ASKED_AND_PAIRS = """
    asked AS (
        SELECT DISTINCT * FROM unnest(CAST(:zones AS text[]), CAST(:codes AS text[])) AS a(zone_id, school_code)
    ),
    pairs AS (
        SELECT * FROM unnest(CAST(:years AS text[]), CAST(:subjects AS text[])) AS p(school_year, subject)
    )"""

# The state's schools of the group, less those the zone computed its own figures for, plus the zone's computed ones:
# each part an index range (of the state's file, of the zone's few schools), counted with a sign.
_PERCENTILES_COUNTED = text(f"""
    WITH {_ASKED_AND_PAIRS}, {_STATE_UNRANKED}, {_OWN_FIGURES}
    SELECT m.zone_id, m.school_code, m.school_year, m.subject, m.subgroup, c.lower, c.equal - 1 AS equal_others, c.total
    FROM own m
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(f.sign) FILTER (WHERE f.score < m.average_scaled_score), 0) AS lower,
               coalesce(sum(f.sign) FILTER (WHERE f.score = m.average_scaled_score), 0) AS equal,
               coalesce(sum(f.sign), 0) AS total
        FROM (
            SELECT o.average_scaled_score AS score, 1 AS sign FROM results.school_aggregates o
            WHERE o.school_year = m.school_year AND o.subject = m.subject AND o.subgroup = m.subgroup
              AND {_ranked("o")}
            UNION ALL
            SELECT o.average_scaled_score, -1 FROM results.computed_aggregates x
            JOIN results.school_aggregates o ON o.school_code = x.school_code AND o.school_year = x.school_year
             AND o.subject = x.subject AND o.subgroup = x.subgroup
            WHERE x.zone_id = m.zone_id AND x.school_year = m.school_year AND x.subject = m.subject
              AND x.subgroup = m.subgroup AND {_ranked("o")}
            UNION ALL
            SELECT x.average_scaled_score, 1 FROM results.computed_aggregates x
            WHERE x.zone_id = m.zone_id AND x.school_year = m.school_year AND x.subject = m.subject
              AND x.subgroup = m.subgroup AND {_ranked("x")}
        ) f
    ) c
    WHERE {_ranked("m")}""")


def _zone_figures(groups: str, where: str) -> str:
    """The figures each zone of `groups` (a relation of zone_id, school_year, subject) compares with, as a CTE body;
    `where` narrows the rows of either table (alias `t`)."""
    return f"""
        SELECT g.zone_id, t.school_code, t.school_year, t.subject, t.subgroup, t.average_scaled_score
        FROM {groups} g JOIN results.school_aggregates t ON t.school_year = g.school_year AND t.subject = g.subject
        WHERE {where} AND NOT EXISTS (
            SELECT FROM results.computed_aggregates x WHERE x.zone_id = g.zone_id AND x.school_code = t.school_code
               AND x.school_year = t.school_year AND x.subject = t.subject AND x.subgroup = t.subgroup)
        UNION ALL
        SELECT g.zone_id, t.school_code, t.school_year, t.subject, t.subgroup, t.average_scaled_score
        FROM {groups} g JOIN results.computed_aggregates t
          ON t.zone_id = g.zone_id AND t.school_year = g.school_year AND t.subject = g.subject
        WHERE {where}"""


_PERCENTILES_RANKED = text(f"""
    WITH {_ASKED_AND_PAIRS}, {_STATE_UNRANKED},
    groups AS (SELECT DISTINCT a.zone_id, p.school_year, p.subject FROM asked a CROSS JOIN pairs p),
    figures AS ({_zone_figures("groups", _ranked("t"))}),
    ranked AS (
        -- One window, so one pass over the sorted rows: rank() - 1 schools score lower; count(*) over the default
        -- frame counts those at or below, peers included; cume_dist() is that count over all.
        SELECT f.zone_id, f.school_code, f.school_year, f.subject, f.subgroup,
               rank() OVER same_group - 1 AS lower,
               count(*) OVER same_group - rank() OVER same_group AS equal_others,
               round(count(*) OVER same_group / cume_dist() OVER same_group)::bigint AS total
        FROM figures f
        WINDOW same_group AS (PARTITION BY f.zone_id, f.school_year, f.subject, f.subgroup
                              ORDER BY f.average_scaled_score)
    )
    SELECT r.* FROM ranked r JOIN asked a USING (zone_id, school_code)""")


async def percentile_counts(session: AsyncSession, pairs: Iterable[tuple[str, str]],
                            schools: Iterable[ZoneSchool]) -> dict[PercentileKey, tuple[int, int, int]]:
    """For each (zone, school code) asked about whose group the state ranks: (schools below, other schools equal,
    schools) by average scaled score, among every school the state ranks in the year, subject and subgroup
    (state_ranking), as the zone sees them."""
    pairs = list(set(pairs))
    schools = list(set(schools))
    statement = _PERCENTILES_COUNTED if len(schools) <= COUNTED_PERCENTILES_MAX_CODES else _PERCENTILES_RANKED
    rows = await session.execute(statement, {
        "years": [p[0] for p in pairs], "subjects": [p[1] for p in pairs], "zones": [s[0] for s in schools],
        "codes": [s[1] for s in schools], "totals": TOTALS_CODE_PATTERN, "state_minimum_n": STATE_MINIMUM_N,
        **excluded_columns()})
    return {(r.zone_id, r.school_code, r.school_year, r.subject, r.subgroup):
            (int(r.lower), int(r.equal_others), int(r.total)) for r in rows}


_GAINS = text(f"""
    WITH asked AS (
        SELECT DISTINCT * FROM unnest(CAST(:zones AS text[]), CAST(:codes AS text[])) AS a(zone_id, school_code)
    ),
    triples AS (
        SELECT * FROM unnest(CAST(:years AS text[]), CAST(:previous AS text[]), CAST(:subjects AS text[]))
            AS p(school_year, previous_year, subject)
    ),
    groups AS (
        SELECT DISTINCT a.zone_id, y.school_year, t.subject
        FROM asked a CROSS JOIN triples t CROSS JOIN LATERAL (VALUES (t.school_year), (t.previous_year)) y(school_year)
    ),
    figures AS ({_zone_figures("groups", "t.subgroup = 'all_students' AND t.average_scaled_score IS NOT NULL "
                                         "AND t.school_code <> :state_total")}),
    gains AS (
        SELECT cur.zone_id, p.school_year, p.subject, cur.school_code,
               (cur.average_scaled_score - prev.average_scaled_score)::float8 AS gain
        FROM triples p
        JOIN figures cur ON cur.school_year = p.school_year AND cur.subject = p.subject
        JOIN figures prev ON prev.zone_id = cur.zone_id AND prev.school_code = cur.school_code
         AND prev.school_year = p.previous_year AND prev.subject = p.subject
    )
    SELECT g.zone_id, g.school_year, g.subject, count(*) AS n, sum(g.gain) AS total,
           sum(g.gain * g.gain) AS total_squares,
           array_agg(g.school_code) FILTER (WHERE a.zone_id IS NOT NULL) AS own_codes,
           array_agg(g.gain) FILTER (WHERE a.zone_id IS NOT NULL) AS own_gains
    FROM gains g LEFT JOIN asked a USING (zone_id, school_code)
    GROUP BY g.zone_id, g.school_year, g.subject""")


async def gain_distributions(
    session: AsyncSession, triples: Iterable[tuple[str, str, str]], schools: Iterable[ZoneSchool]
) -> dict[tuple[str, str, str], tuple[GainDistribution, dict[str, float]]]:
    """Per (zone, school year, subject), as the zone sees them: every school's change in all-students average scaled
    score since the previous year (as sums), and the changes of the zone's schools asked about, so each can be taken
    out of its own comparison."""
    triples = list(set(triples))
    schools = list(set(schools))
    rows = await session.execute(_GAINS, {
        "years": [t[0] for t in triples], "previous": [t[1] for t in triples], "subjects": [t[2] for t in triples],
        "zones": [s[0] for s in schools], "codes": [s[1] for s in schools], "state_total": STATE_TOTAL_CODE})
    return {
        (row.zone_id, row.school_year, row.subject): (
            GainDistribution(row.n, row.total, row.total_squares),
            dict(zip(row.own_codes or (), row.own_gains or (), strict=True)),
        )
        for row in rows
    }


async def low_scorer_drops(session: AsyncSession, numbers: dict[Key, int],
                           years: Iterable[tuple[Key, Key]]) -> dict[Key, DropCounts]:
    """For each (key, the same school and subject a year earlier), both loaded: last year's tested students there,
    their bottom-quartile cut, and how many of them — and of the low scorers — have no result there this year (none, or
    only a not-tested row)."""
    pairs = [(numbers[key], numbers[earlier]) for key, earlier in years]
    if not pairs:  # no school here has last year's students loaded
        return {}
    keys = {number: key for key, number in numbers.items()}
    rows = await session.execute(
        text("""
            WITH pairs AS (
                SELECT * FROM unnest(CAST(:current AS int[]), CAST(:previous AS int[])) AS p(k, previous_k)
            ),
            last_year AS (
                SELECT p.k, s.student_id, s.scale_score
                FROM pairs p JOIN review_students s ON s.k = p.previous_k
                WHERE s.scale_score IS NOT NULL
            ),
            cuts AS (
                SELECT k, count(*) AS last_year_tested,
                       percentile_cont(0.25) WITHIN GROUP (ORDER BY scale_score::float8) AS cut_score
                FROM last_year GROUP BY k
            ),
            dropped AS (
                SELECT l.k, l.scale_score
                FROM last_year l
                LEFT JOIN review_students t ON t.k = l.k AND t.student_id = l.student_id AND t.tested
                WHERE t.student_id IS NULL
            )
            SELECT c.k, c.last_year_tested, c.cut_score,
                   count(d.scale_score) AS dropped, count(*) FILTER (WHERE d.scale_score <= c.cut_score) AS dropped_low
            FROM cuts c LEFT JOIN dropped d USING (k)
            GROUP BY c.k, c.last_year_tested, c.cut_score"""),
        {"current": [p[0] for p in pairs], "previous": [p[1] for p in pairs]},
    )
    return {
        keys[row.k]: DropCounts(last_year_tested=row.last_year_tested, cut_score=row.cut_score, dropped=row.dropped,
                                dropped_low=row.dropped_low)
        for row in rows
    }
