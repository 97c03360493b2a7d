"""Ed-Fi upserts: one studentAssessment or studentSchoolAssociation per request.

SIS clients send one record per request, many in flight. A studentAssessment is validated, its school
resolved and the caller's right to it checked in its own request; then it joins the records of other
requests waiting to be written (group commit, `group_commit.py`), and one transaction writes the group:
one set-based statement finds each record's row by its Ed-Fi key, inserts the new ones (their audit
entries in the same statement) and returns each record's row, then one statement adds the group's
`results.posted` events — one per school, school year and subject the group created results for.
Each request is answered from its own row once the group is committed. A changed record, one that
clashes with ezone's own key, or one of a group that failed takes the locking path of its own, in its
own transaction, so its error is its own. The Ed-Fi schoolId → ezone school map is cached in the process.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from ezone_kit.auth import Principal
from ezone_kit.service import Kit
from ezone_kit.telemetry import current_trace_id
from ezone_kit.uow import UnitOfWork
from ezone_schemas import ResultsPosted
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic_core import to_json, to_jsonable_python
from sqlalchemy import Select, Table, func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from ..models import Enrollment, StudentResult, metadata
from ..models import schools as directory
from .group_commit import GroupCommit
from .mapping import EnrollmentValues, ResultValues, enrollment_values, result_values
from .problems import authorization_denied, data_validation_failed, identity_conflict, unresolved_reference
from .schemas import SchoolReference, StudentAssessment, StudentSchoolAssociation

_log = logging.getLogger("ezone.results.edfi")

results = StudentResult.__table__
enrollments = Enrollment.__table__
outbox = metadata.tables["results.outbox"]
audit_log = metadata.tables["results.audit_log"]

_RESULT_FIELDS = ("school_id", "subject", "grade", "school_year", "administration_date", "scale_score",
                  "performance_level", "proficient", "growth_percentile", "not_tested_reason")
_ENROLLMENT_FIELDS = ("school_year", "grade", "exit_date")
_IDENTITY = ("zone_id", "student_id", "assessment_namespace", "assessment_identifier", "edfi_identifier")
# What Outbox.rows fills, and what AuditLog.record writes, for the one statement that creates a result.
_EVENT_FIELDS = ("id", "topic", "key", "ce_type", "ce_source", "ce_time", "payload", "traceparent", "tracestate")
_AUDIT_FIELDS = ("actor", "actor_role", "zone_id", "school_id", "action", "entity", "after", "trace_id")


def _typed(table: Table, name: str, param: str | None = None) -> str:
    return f"CAST(:{param or name} AS {table.c[name].type.compile(dialect=postgresql.dialect())})"


# The row under the Ed-Fi key. (The key is not unique in the table: the newest administration wins.)
_FOUND = f"""
    SELECT id, edfi_identifier, {", ".join(_RESULT_FIELDS)} FROM {results.fullname}
    WHERE {" AND ".join(f"{name} = :{name}" for name in _IDENTITY)}
    ORDER BY administration_date DESC LIMIT 1"""

# The row under the Ed-Fi key, locked, and only when there is none an insert — which does nothing if
# ezone's own key (student, assessment, year, date) is taken — with the new row's event and audit entry.
# Always one row: `added_id` set when inserted, else the found row's columns (all null when neither).
_CREATE_OR_FIND = text(f"""
WITH found AS ({_FOUND} FOR UPDATE
), added AS (
    INSERT INTO {results.fullname} ({", ".join((*_IDENTITY, "batch_id", *_RESULT_FIELDS))})
    SELECT {", ".join(_typed(results, name) for name in (*_IDENTITY, "batch_id", *_RESULT_FIELDS))}
    WHERE NOT EXISTS (SELECT FROM found)
    ON CONFLICT ON CONSTRAINT uq_student_results_natural_key DO NOTHING
    RETURNING id
), announced AS (
    INSERT INTO {outbox.fullname} ({", ".join(_EVENT_FIELDS)})
    SELECT {", ".join(_typed(outbox, name, f"event_{name}") for name in _EVENT_FIELDS)} FROM added
), audited AS (
    INSERT INTO {audit_log.fullname} ({", ".join(_AUDIT_FIELDS)}, entity_id)
    SELECT {", ".join(_typed(audit_log, name, f"audit_{name}") for name in _AUDIT_FIELDS)}, CAST(added.id AS text) FROM added
)
SELECT added.id AS added_id, found.* FROM (VALUES (1)) AS one (x) LEFT JOIN found ON true LEFT JOIN added ON true
""")


def _array(table: Table, name: str) -> str:
    return f"{table.c[name].type.compile(dialect=postgresql.dialect())}[]"


# What a group sends per record, as parallel arrays: its place in the group, its row, and its audit entry.
_SENT = {"n": "integer[]", **{name: _array(results, name) for name in (*_IDENTITY, *_RESULT_FIELDS)},
         "actor": "text[]", "actor_role": "text[]", "audit_after": "text[]", "audit_trace_id": "text[]"}
_NATURAL_KEY = ("zone_id", "student_id", "assessment_namespace", "assessment_identifier", "school_year", "administration_date")

# A group of records in one statement: each record's row under its Ed-Fi key (the newest administration), and for
# those without one an insert that does nothing where ezone's own key is taken, with an audit entry per row
# inserted. One row per record: `created_id` when inserted, else the found row's columns (all null when neither).
# The caller sends no two records with the same Ed-Fi key or ezone key, in ezone key order (so that groups
# written at once by two processes take the key's index entries in one order).
_WRITE_GROUP = text(f"""
WITH sent AS (
    SELECT * FROM unnest({", ".join(f"CAST(:{name} AS {array})" for name, array in _SENT.items())})
        AS sent ({", ".join(_SENT)})
), found AS (
    SELECT DISTINCT ON (sent.n) sent.n, stored.id, stored.edfi_identifier, {", ".join(f"stored.{name}" for name in _RESULT_FIELDS)}
    FROM sent JOIN {results.fullname} stored ON {" AND ".join(f"stored.{name} = sent.{name}" for name in _IDENTITY)}
    ORDER BY sent.n, stored.administration_date DESC
), added AS (
    INSERT INTO {results.fullname} ({", ".join((*_IDENTITY, "batch_id", *_RESULT_FIELDS))})
    SELECT {", ".join(f"sent.{name}" for name in _IDENTITY)}, CAST(:batch_id AS uuid), {", ".join(f"sent.{name}" for name in _RESULT_FIELDS)}
    FROM sent WHERE NOT EXISTS (SELECT FROM found WHERE found.n = sent.n)
    ORDER BY sent.n
    ON CONFLICT ON CONSTRAINT uq_student_results_natural_key DO NOTHING
    RETURNING id, {", ".join(_NATURAL_KEY)}
), created AS (
    SELECT sent.n, added.id FROM added JOIN sent USING ({", ".join(_NATURAL_KEY)})
), audited AS (
    INSERT INTO {audit_log.fullname} (actor, actor_role, zone_id, school_id, action, entity, entity_id, after, trace_id)
    SELECT sent.actor, sent.actor_role, sent.zone_id, CAST(sent.school_id AS text), 'student_result.created', 'student_result',
           CAST(created.id AS text), CAST(sent.audit_after AS jsonb), sent.audit_trace_id
    FROM created JOIN sent USING (n)
)
SELECT sent.n, created.id AS created_id, found.id, found.edfi_identifier, {", ".join(f"found.{name}" for name in _RESULT_FIELDS)}
FROM sent LEFT JOIN created USING (n) LEFT JOIN found USING (n)
""")


def _state_code(code: object) -> str:
    """Ed-Fi sends schoolId as a number; states write codes zero-padded (`02810320`)."""
    return str(code).strip().lstrip("0")


@dataclass
class SchoolCodes:
    """Each zone's schools by state code, from this service's directory projection. A school's code
    never changes (plans refuses it), so an entry stays right; a code not found reloads the zone."""

    _zones: dict[str, dict[str, uuid.UUID]] = field(default_factory=dict)

    async def school_of(self, db: Database, zone_id: str, school_id: int) -> uuid.UUID | None:
        code = _state_code(school_id)
        known = self._zones.get(zone_id, {})
        if code not in known:
            rows = await _read(db, select(directory.c.code, directory.c.id).where(directory.c.zone_id == zone_id))
            known = self._zones[zone_id] = {_state_code(row.code): row.id for row in rows}
        return known.get(code)


# Where a read goes: the session or connection of a transaction, or the engine when the request holds none
# (a connection is then taken only for the read, and most requests need none: their school is cached).
Database = AsyncSession | AsyncConnection | AsyncEngine


async def _read(db: Database, statement: Select) -> Sequence[Any]:
    if isinstance(db, AsyncEngine):
        async with db.connect() as conn:
            return (await conn.execute(statement)).all()
    return (await db.execute(statement)).all()


@dataclass(frozen=True)
class Upserted:
    id: int
    created: bool


@dataclass(frozen=True)
class _Record:
    """A studentAssessment in ezone's terms: the row it names and what to store there."""

    values: ResultValues
    identity: dict[str, Any]  # the Ed-Fi natural key, in the caller's zone
    new: dict[str, Any]  # the result's fields, school included

    def same_as(self, row: Any) -> bool:
        return (row.edfi_identifier == self.values.edfi_identifier
                and all(getattr(row, name) == self.new[name] for name in _RESULT_FIELDS))

    def natural_key(self) -> tuple[Any, ...]:
        return tuple(self.identity[name] if name in self.identity else self.new[name] for name in _NATURAL_KEY)


@dataclass(frozen=True)
class _Sent:
    """A record handed to the group writer by its request, with what its request knows: who sent it, and its trace
    (its span's context; formatted only for the audit entry and the events that need it)."""

    actor: Principal
    record: _Record
    span: trace.SpanContext

    def trace_id(self) -> str | None:
        return format(self.span.trace_id, "032x") if self.span.is_valid else None

    def trace_headers(self) -> dict[str, str]:
        carrier: dict[str, str] = {}
        _propagator.inject(carrier, context=trace.set_span_in_context(trace.NonRecordingSpan(self.span)))
        return carrier


_propagator = TraceContextTextMapPropagator()


class _TakeTheLockingPath:
    """The group did not settle this record: a change, ezone's own key taken, a twin in the same group, or the
    group's transaction failed. Its request decides it holding the row, in a transaction of its own."""


TAKE_THE_LOCKING_PATH = _TakeTheLockingPath()
GroupOutcome = Upserted | _TakeTheLockingPath
# Records per group: a group's statement takes every record waiting up to this (arrays of this many values).
MAX_GROUP = 256
# While requests stream in, how long a group waits for more before it is written. Each group costs a transaction
# and a results.posted per school, year and subject touched (relayed, consumed, queued for review): measured with
# 2 workers and 64 requests in flight, 5 ms cut those events from 686 to 175 for 5,000 records and the service's
# CPU per record by about a third. A request alone waits for nothing.
GROUP_LINGER_S = 0.005


@dataclass
class EdFi:
    """What the Ed-Fi endpoints of one running app share: the school code cache and the group writer."""

    kit: Kit
    codes: SchoolCodes = field(default_factory=SchoolCodes)
    writer: GroupCommit[_Sent, GroupOutcome] = field(init=False)

    def __post_init__(self) -> None:
        self.writer = GroupCommit(self._write_group, MAX_GROUP, GROUP_LINGER_S)

    async def _write_group(self, group: Sequence[_Sent]) -> list[GroupOutcome]:
        """One transaction for the group: the rows (set-based, with their audit entries), then one results.posted
        per zone, school, school year and subject the group created results for."""
        outcomes: list[GroupOutcome] = [TAKE_THE_LOCKING_PATH] * len(group)
        # A second record with an Ed-Fi key or ezone key already in the group waits for the first to be
        # committed, then takes the locking path (an identical twin is then found unchanged: 200).
        firsts: dict[tuple[Any, ...], int] = {}
        for place, sent in enumerate(group):
            keys = (("edfi", *sent.record.identity.values()), ("ezone", *sent.record.natural_key()))
            if not any(key in firsts for key in keys):
                firsts.update(dict.fromkeys(keys, place))
        places = sorted(set(firsts.values()), key=lambda place: group[place].record.natural_key())
        batch_id = uuid.uuid4()
        try:
            async with self.kit.engine.begin() as conn:
                rows = (await conn.execute(_WRITE_GROUP, _group_parameters([group[place] for place in places], batch_id))).all()
                created: list[_Sent] = []
                for row in rows:
                    place = places[row.n]
                    sent = group[place]
                    if row.created_id is not None:
                        outcomes[place] = Upserted(row.created_id, created=True)
                        created.append(sent)
                    elif row.id is not None and sent.record.same_as(row):
                        # Nothing to do; the school is the one its caller was found to act for.
                        outcomes[place] = Upserted(row.id, created=False)
                if created:
                    await self.kit.outbox.insert_rows(conn, _results_posted_rows(self.kit, created, batch_id))
        except DBAPIError as exc:
            # E.g. a deadlock with a group of another process: each record is then written on its own.
            _log.warning("An Ed-Fi group of %d records failed (%s); each takes the locking path on its own.", len(group),
                         exc.orig)
            return [TAKE_THE_LOCKING_PATH] * len(group)
        return outcomes


def _group_parameters(group: Sequence[_Sent], batch_id: uuid.UUID) -> dict[str, Any]:
    columns: dict[str, list[Any]] = {name: [] for name in _SENT}
    for n, sent in enumerate(group):
        record = sent.record
        columns["n"].append(n)
        for name in _IDENTITY:
            columns[name].append(record.identity[name])
        for name in _RESULT_FIELDS:
            columns[name].append(record.new[name])
        columns["actor"].append(sent.actor.subject)
        columns["actor_role"].append(sent.actor.role)
        columns["audit_after"].append(to_json(record.new).decode())
        columns["audit_trace_id"].append(sent.trace_id())
    return {**columns, "batch_id": batch_id}


def _results_posted_rows(kit: Kit, created: Sequence[_Sent], batch_id: uuid.UUID) -> list[dict[str, Any]]:
    """Outbox rows: one results.posted per zone, school, school year and subject, with the trace of the first
    request that touched it."""
    touched: dict[tuple[Any, ...], list[_Sent]] = {}
    for sent in created:
        touched.setdefault((sent.actor.zone, *_review_key(sent.record.new)), []).append(sent)
    rows = []
    for (zone_id, school_id, school_year, subject), sents in touched.items():
        event = ResultsPosted(zone_id=zone_id, school_id=school_id, school_year=school_year, subject=subject,
                              assessment_identifiers=sorted({sent.record.values.assessment_identifier for sent in sents}),
                              batch_id=batch_id, source="edfi", rows_inserted=len(sents), rows_updated=0,
                              posted_at=datetime.now(UTC))
        [row] = kit.outbox.rows([event])
        trace_headers = sents[0].trace_headers()
        row["traceparent"], row["tracestate"] = trace_headers.get("traceparent"), trace_headers.get("tracestate")
        rows.append(row)
    return rows


async def _school(db: Database, codes: SchoolCodes, actor: Principal,
                  reference: SchoolReference | None, student_id: str, on: date, path: str) -> uuid.UUID:
    """The ezone school an Ed-Fi school reference names, which the caller must act for. Without a
    reference: the school the student was enrolled in on that day (a studentSchoolAssociation)."""
    if reference is not None:
        school_id = await codes.school_of(db, actor.zone, reference.school_id)
        if school_id is None:
            # Another zone's school is as unknown here as one that does not exist.
            raise unresolved_reference("School", f"No school with schoolId {reference.school_id} is registered in zone {actor.zone}.")
    else:
        enrolled = await _read(db, (
            select(enrollments.c.school_id)
            .where(enrollments.c.zone_id == actor.zone, enrollments.c.student_id == student_id, enrollments.c.entry_date <= on,
                   (enrollments.c.exit_date.is_(None)) | (enrollments.c.exit_date >= on))
            .order_by(enrollments.c.entry_date.desc()).limit(1)))
        if not enrolled:
            raise data_validation_failed({path: [
                f"Required: student {student_id} has no studentSchoolAssociation on {on} to take the school from."]})
        school_id = enrolled[0].school_id
    if not actor.may_act_for_school(school_id):
        raise authorization_denied(f"The client may not post data for school {reference.school_id if reference else school_id}.")
    return school_id


def _results_posted(zone_id: str, key: dict[str, Any], assessment: str, batch_id: uuid.UUID, *, inserted: int = 0,
                    updated: int = 0) -> ResultsPosted:
    return ResultsPosted(zone_id=zone_id, school_id=key["school_id"], school_year=key["school_year"], subject=key["subject"],
                         assessment_identifiers=[assessment], batch_id=batch_id, source="edfi", rows_inserted=inserted,
                         rows_updated=updated, posted_at=datetime.now(UTC))


def _review_key(values: dict[str, Any]) -> tuple[Any, ...]:
    return values["school_id"], values["school_year"], values["subject"]


async def post_student_assessment(edfi: EdFi, actor: Principal, body: StudentAssessment) -> Upserted:
    """Upsert on the Ed-Fi natural key (studentAssessmentIdentifier, assessment, student). A new or changed
    result announces results.posted for its school, year and subject (and for the old ones if it moved);
    the same values again change nothing. Answered once the record's group is committed."""
    values, errors = result_values(body)
    if values is None:
        raise data_validation_failed(errors)
    school_id = await _school(edfi.kit.engine, edfi.codes, actor, body.reported_school_reference, values.student_id,
                              values.administration_date, "$.reportedSchoolReference")
    record = _Record(values, identity={"zone_id": actor.zone, **{name: getattr(values, name) for name in _IDENTITY[1:]}},
                     new={"school_id": school_id, **{name: getattr(values, name) for name in _RESULT_FIELDS[1:]}})
    outcome = await edfi.writer.submit(_Sent(actor, record, trace.get_current_span().get_span_context()))
    if isinstance(outcome, Upserted):
        return outcome
    async with edfi.kit.unit_of_work() as uow:
        return await _upsert_holding_the_row(uow, edfi.kit, actor, record)


def _creation(kit: Kit, actor: Principal, record: _Record, batch_id: uuid.UUID) -> dict[str, Any]:
    """The parameters of _CREATE_OR_FIND: the row, and the event and audit entry that go with it if it is inserted."""
    new = record.new
    [event] = kit.outbox.rows([_results_posted(actor.zone, new, record.values.assessment_identifier, batch_id, inserted=1)])
    event["payload"] = orjson.dumps(event["payload"]).decode()
    audit = {"actor": actor.subject, "actor_role": actor.role, "zone_id": actor.zone, "school_id": str(new["school_id"]),
             "action": "student_result.created", "entity": "student_result", "after": to_json(new).decode(),
             "trace_id": current_trace_id()}
    return {**record.identity, "batch_id": batch_id, **new, **{f"event_{name}": event[name] for name in _EVENT_FIELDS},
            **{f"audit_{name}": audit[name] for name in _AUDIT_FIELDS}}


async def _upsert_holding_the_row(uow: UnitOfWork, kit: Kit, actor: Principal, record: _Record) -> Upserted:
    session, values, new = uow.session, record.values, record.new
    batch_id = uuid.uuid4()  # this request's own batch of one, without an ingest_batches row
    row = (await session.execute(_CREATE_OR_FIND, _creation(kit, actor, record, batch_id))).one()
    if row.added_id is not None:
        await uow.commit()
        return Upserted(row.added_id, created=True)
    if row.id is None:
        # ezone's own key (student, assessment, year, date) is taken: by this request's concurrent twin, by a
        # row from a JSON/CSV batch (which this record now names), or by another Ed-Fi studentAssessment.
        row = (await session.execute(
            select(results.c.id, results.c.edfi_identifier, *(results.c[name] for name in _RESULT_FIELDS))
            .where(results.c.zone_id == actor.zone, results.c.student_id == values.student_id,
                   results.c.assessment_namespace == values.assessment_namespace,
                   results.c.assessment_identifier == values.assessment_identifier,
                   results.c.school_year == values.school_year, results.c.administration_date == values.administration_date)
            .with_for_update()
        )).one()
        if row.edfi_identifier not in (None, values.edfi_identifier):
            raise identity_conflict(f"Student {values.student_id} already has a result of {values.assessment_identifier} "
                                    f"administered {values.administration_date} under another studentAssessmentIdentifier.")
    if not actor.may_act_for_school(row.school_id):
        raise authorization_denied("The result belongs to a school the client may not post data for.")
    if record.same_as(row):
        return Upserted(row.id, created=False)
    before = {name: getattr(row, name) for name in _RESULT_FIELDS}
    try:
        await session.execute(update(results).where(results.c.id == row.id).values(
            edfi_identifier=values.edfi_identifier, batch_id=batch_id, updated_at=func.now(), **new))
    except IntegrityError:
        raise identity_conflict(f"Student {values.student_id} already has another result of {values.assessment_identifier} "
                                f"administered {values.administration_date}.") from None
    uow.emit(_results_posted(actor.zone, new, values.assessment_identifier, batch_id, updated=1))
    if _review_key(before) != _review_key(new):
        uow.emit(_results_posted(actor.zone, before, values.assessment_identifier, batch_id, updated=1))
    await uow.audit(actor=actor, action="student_result.updated", entity="student_result", entity_id=str(row.id),
                    zone_id=actor.zone, school_id=str(new["school_id"]), before=to_jsonable_python(before),
                    after=to_jsonable_python(new))
    await uow.commit()
    return Upserted(row.id, created=False)


async def post_student_school_association(edfi: EdFi, actor: Principal, body: StudentSchoolAssociation) -> Upserted:
    """Upsert an enrollment on the Ed-Fi natural key (entryDate, school, student), which is ezone's too."""
    values, errors = enrollment_values(body)
    if values is None:
        raise data_validation_failed(errors)
    async with edfi.kit.unit_of_work() as uow:
        return await _upsert_enrollment(uow, edfi.codes, actor, body, values)


async def _upsert_enrollment(uow: UnitOfWork, codes: SchoolCodes, actor: Principal, body: StudentSchoolAssociation,
                             values: EnrollmentValues) -> Upserted:
    session = uow.session
    school_id = await _school(session, codes, actor, body.school_reference, values.student_id, values.entry_date,
                              "$.schoolReference")
    key = (enrollments.c.zone_id == actor.zone, enrollments.c.student_id == values.student_id,
           enrollments.c.school_id == school_id, enrollments.c.entry_date == values.entry_date)
    new = {name: getattr(values, name) for name in _ENROLLMENT_FIELDS}
    batch_id = uuid.uuid4()
    enrollment_id = (await session.execute(
        pg_insert(enrollments)
        .values(zone_id=actor.zone, student_id=values.student_id, school_id=school_id, entry_date=values.entry_date,
                batch_id=batch_id, **new)
        .on_conflict_do_nothing(constraint="uq_enrollments_natural_key")
        .returning(enrollments.c.id)
    )).scalar()
    if enrollment_id is not None:
        await uow.audit(actor=actor, action="enrollment.created", entity="enrollment", entity_id=str(enrollment_id),
                        zone_id=actor.zone, school_id=str(school_id), after=to_jsonable_python(new))
        await uow.commit()
        return Upserted(enrollment_id, created=True)
    row = (await session.execute(
        select(enrollments.c.id, *(enrollments.c[name] for name in _ENROLLMENT_FIELDS)).where(*key).with_for_update()
    )).one()
    before = {name: getattr(row, name) for name in _ENROLLMENT_FIELDS}
    if before != new:
        await session.execute(update(enrollments).where(enrollments.c.id == row.id)
                              .values(batch_id=batch_id, updated_at=func.now(), **new))
        await uow.audit(actor=actor, action="enrollment.updated", entity="enrollment", entity_id=str(row.id),
                        zone_id=actor.zone, school_id=str(school_id), before=to_jsonable_python(before),
                        after=to_jsonable_python(new))
        await uow.commit()
    return Upserted(row.id, created=False)

