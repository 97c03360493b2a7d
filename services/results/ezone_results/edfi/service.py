"""Ed-Fi upserts: one studentAssessment or studentSchoolAssociation per request, in one transaction.

SIS clients send one record per request, so the common cases cost one or two statements and no
BEGIN/COMMIT: a studentAssessment sent again unchanged is one read; a new one is that read plus one
statement that inserts the result, its `results.posted` outbox row and its audit entry together (one
statement is one transaction). Only a change, or a clash with ezone's own key, takes the locking path
in a transaction. The Ed-Fi schoolId → ezone school map is cached in the process.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from ezone_kit.auth import Principal
from ezone_kit.service import Kit
from ezone_kit.telemetry import current_trace_id
from ezone_kit.uow import UnitOfWork
from ezone_schemas import ResultsPosted
from pydantic_core import to_json, to_jsonable_python
from sqlalchemy import Table, func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from ..models import Enrollment, StudentResult, metadata
from ..models import schools as directory
from .mapping import EnrollmentValues, ResultValues, enrollment_values, result_values
from .problems import authorization_denied, data_validation_failed, identity_conflict, unresolved_reference
from .schemas import SchoolReference, StudentAssessment, StudentSchoolAssociation

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
_FIND = text(_FOUND)

# The row under the Ed-Fi key, locked, and only when there is none an insert — which does nothing if
# ezone's own key (student, assessment, year, date) is taken — with the new row's event and audit entry.
# Always one row: `added_id` set when inserted, else the found row's columns (all null when neither).
# The outbox's statement trigger notifies the relay even when no event row goes in, so outside a
# transaction this runs only where no row was found a moment before.
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


def _state_code(code: object) -> str:
    """Ed-Fi sends schoolId as a number; states write codes zero-padded (`02810320`)."""
    return str(code).strip().lstrip("0")


@dataclass
class SchoolCodes:
    """Each zone's schools by state code, from this service's directory projection. A school's code
    never changes (plans refuses it), so an entry stays right; a code not found reloads the zone."""

    _zones: dict[str, dict[str, uuid.UUID]] = field(default_factory=dict)

    async def school_of(self, session: AsyncSession | AsyncConnection, zone_id: str, school_id: int) -> uuid.UUID | None:
        code = _state_code(school_id)
        known = self._zones.get(zone_id, {})
        if code not in known:
            rows = await session.execute(select(directory.c.code, directory.c.id).where(directory.c.zone_id == zone_id))
            known = self._zones[zone_id] = {_state_code(row.code): row.id for row in rows}
        return known.get(code)


@dataclass
class EdFi:
    """What the Ed-Fi endpoints of one running app share."""

    kit: Kit
    codes: SchoolCodes = field(default_factory=SchoolCodes)
    # One statement is a transaction by itself: without BEGIN and COMMIT, two round trips fewer.
    autocommit: AsyncEngine = field(init=False)

    def __post_init__(self) -> None:
        self.autocommit = self.kit.engine.execution_options(isolation_level="AUTOCOMMIT")


@dataclass(frozen=True)
class Upserted:
    id: int
    created: bool


async def _school(session: AsyncSession | AsyncConnection, codes: SchoolCodes, actor: Principal,
                  reference: SchoolReference | None, student_id: str, on: date, path: str) -> uuid.UUID:
    """The ezone school an Ed-Fi school reference names, which the caller must act for. Without a
    reference: the school the student was enrolled in on that day (a studentSchoolAssociation)."""
    if reference is not None:
        school_id = await codes.school_of(session, actor.zone, reference.school_id)
        if school_id is None:
            # Another zone's school is as unknown here as one that does not exist.
            raise unresolved_reference("School", f"No school with schoolId {reference.school_id} is registered in zone {actor.zone}.")
    else:
        school_id = (await session.execute(
            select(enrollments.c.school_id)
            .where(enrollments.c.zone_id == actor.zone, enrollments.c.student_id == student_id, enrollments.c.entry_date <= on,
                   (enrollments.c.exit_date.is_(None)) | (enrollments.c.exit_date >= on))
            .order_by(enrollments.c.entry_date.desc()).limit(1)
        )).scalar()
        if school_id is None:
            raise data_validation_failed({path: [
                f"Required: student {student_id} has no studentSchoolAssociation on {on} to take the school from."]})
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


@dataclass(frozen=True)
class _Record:
    """A studentAssessment in ezone's terms: the row it names, what to store there, and its request's batch."""

    values: ResultValues
    identity: dict[str, Any]  # the Ed-Fi natural key, in the caller's zone
    new: dict[str, Any]  # the result's fields, school included
    batch_id: uuid.UUID = field(default_factory=uuid.uuid4)  # a request is a batch of one, without an ingest_batches row

    def same_as(self, row: Any) -> bool:
        return (row.edfi_identifier == self.values.edfi_identifier
                and all(getattr(row, name) == self.new[name] for name in _RESULT_FIELDS))


async def post_student_assessment(edfi: EdFi, actor: Principal, body: StudentAssessment) -> Upserted:
    """Upsert on the Ed-Fi natural key (studentAssessmentIdentifier, assessment, student). A new or changed
    result announces results.posted for its school, year and subject (and for the old ones if it moved);
    the same values again change nothing."""
    values, errors = result_values(body)
    if values is None:
        raise data_validation_failed(errors)
    async with edfi.autocommit.connect() as conn:
        school_id = await _school(conn, edfi.codes, actor, body.reported_school_reference, values.student_id,
                                  values.administration_date, "$.reportedSchoolReference")
        record = _Record(values, identity={"zone_id": actor.zone, **{name: getattr(values, name) for name in _IDENTITY[1:]}},
                         new={"school_id": school_id, **{name: getattr(values, name) for name in _RESULT_FIELDS[1:]}})
        found = (await conn.execute(_FIND, record.identity)).one_or_none()
        if found is None:
            created = (await conn.execute(_CREATE_OR_FIND, _creation(edfi.kit, actor, record))).one()
            if created.added_id is not None:
                return Upserted(created.added_id, created=True)
        elif record.same_as(found):
            # Nothing to do; the school is the one the caller was just found to act for.
            return Upserted(found.id, created=False)
    # A change, a row created meanwhile, or ezone's own key taken: decided holding the row, in one transaction.
    async with edfi.kit.unit_of_work() as uow:
        return await _upsert_holding_the_row(uow, edfi.kit, actor, record)


def _creation(kit: Kit, actor: Principal, record: _Record) -> dict[str, Any]:
    """The parameters of _CREATE_OR_FIND: the row, and the event and audit entry that go with it if it is inserted."""
    new = record.new
    [event] = kit.outbox.rows([_results_posted(actor.zone, new, record.values.assessment_identifier, record.batch_id, inserted=1)])
    event["payload"] = orjson.dumps(event["payload"]).decode()
    audit = {"actor": actor.subject, "actor_role": actor.role, "zone_id": actor.zone, "school_id": str(new["school_id"]),
             "action": "student_result.created", "entity": "student_result", "after": to_json(new).decode(),
             "trace_id": current_trace_id()}
    return {**record.identity, "batch_id": record.batch_id, **new, **{f"event_{name}": event[name] for name in _EVENT_FIELDS},
            **{f"audit_{name}": audit[name] for name in _AUDIT_FIELDS}}


async def _upsert_holding_the_row(uow: UnitOfWork, kit: Kit, actor: Principal, record: _Record) -> Upserted:
    session, values, new = uow.session, record.values, record.new
    row = (await session.execute(_CREATE_OR_FIND, _creation(kit, actor, record))).one()
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
            edfi_identifier=values.edfi_identifier, batch_id=record.batch_id, updated_at=func.now(), **new))
    except IntegrityError:
        raise identity_conflict(f"Student {values.student_id} already has another result of {values.assessment_identifier} "
                                f"administered {values.administration_date}.") from None
    uow.emit(_results_posted(actor.zone, new, values.assessment_identifier, record.batch_id, updated=1))
    if _review_key(before) != _review_key(new):
        uow.emit(_results_posted(actor.zone, before, values.assessment_identifier, record.batch_id, updated=1))
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

