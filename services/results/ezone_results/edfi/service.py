"""Ed-Fi upserts: one studentAssessment or studentSchoolAssociation per request, in one transaction.

The per-request path is kept short because SIS clients send one record per request: the Ed-Fi
schoolId → ezone school map is cached in the process, and a new result, or one sent again unchanged,
costs one statement (find by the Ed-Fi natural key, else insert), plus the outbox and audit rows of a change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ezone_kit.auth import Principal
from ezone_kit.uow import UnitOfWork
from ezone_schemas import ResultsPosted
from pydantic_core import to_jsonable_python
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import Enrollment, StudentResult
from ..models import schools as directory
from .mapping import enrollment_values, result_values
from .problems import authorization_denied, data_validation_failed, identity_conflict, unresolved_reference
from .schemas import SchoolReference, StudentAssessment, StudentSchoolAssociation

results = StudentResult.__table__
enrollments = Enrollment.__table__

_RESULT_FIELDS = ("school_id", "subject", "grade", "school_year", "administration_date", "scale_score",
                  "performance_level", "proficient", "growth_percentile", "not_tested_reason")
_ENROLLMENT_FIELDS = ("school_year", "grade", "exit_date")
_IDENTITY = ("zone_id", "student_id", "assessment_namespace", "assessment_identifier", "edfi_identifier")


def _typed(name: str) -> str:
    return f"CAST(:{name} AS {results.c[name].type.compile(dialect=postgresql.dialect())})"


# One round trip for a new result and for one sent again: the row under the Ed-Fi key, locked, and only when
# there is none an insert — which does nothing if ezone's own key (student, assessment, year, date) is taken.
# Always one row: `added_id` set when inserted, else the found row's columns (all null when neither).
_FIND_OR_INSERT = text(f"""
WITH found AS (
    SELECT id, edfi_identifier, {", ".join(_RESULT_FIELDS)} FROM {results.fullname}
    WHERE {" AND ".join(f"{name} = :{name}" for name in _IDENTITY)}
    ORDER BY administration_date DESC LIMIT 1 FOR UPDATE
), added AS (
    INSERT INTO {results.fullname} ({", ".join((*_IDENTITY, "batch_id", *_RESULT_FIELDS))})
    SELECT {", ".join(_typed(name) for name in (*_IDENTITY, "batch_id", *_RESULT_FIELDS))}
    WHERE NOT EXISTS (SELECT FROM found)
    ON CONFLICT ON CONSTRAINT uq_student_results_natural_key DO NOTHING
    RETURNING id
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

    async def school_of(self, session: AsyncSession, zone_id: str, school_id: int) -> uuid.UUID | None:
        code = _state_code(school_id)
        known = self._zones.get(zone_id, {})
        if code not in known:
            rows = await session.execute(select(directory.c.code, directory.c.id).where(directory.c.zone_id == zone_id))
            known = self._zones[zone_id] = {_state_code(row.code): row.id for row in rows}
        return known.get(code)


@dataclass(frozen=True)
class Upserted:
    id: int
    created: bool


async def _school(session: AsyncSession, codes: SchoolCodes, actor: Principal, reference: SchoolReference | None,
                  student_id: str, on: date, path: str) -> uuid.UUID:
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


async def post_student_assessment(uow: UnitOfWork, actor: Principal, codes: SchoolCodes, body: StudentAssessment) -> Upserted:
    """Upsert on the Ed-Fi natural key (studentAssessmentIdentifier, assessment, student). A new or changed
    result announces results.posted for its school, year and subject (and for the old ones if it moved);
    the same values again change nothing."""
    values, errors = result_values(body)
    if values is None:
        raise data_validation_failed(errors)
    session = uow.session
    school_id = await _school(session, codes, actor, body.reported_school_reference, values.student_id,
                              values.administration_date, "$.reportedSchoolReference")
    new = {"school_id": school_id, **{name: getattr(values, name) for name in _RESULT_FIELDS[1:]}}
    batch_id = uuid.uuid4()  # a request is a batch of one; it has no ingest_batches row
    found = (await session.execute(_FIND_OR_INSERT, {
        "zone_id": actor.zone, "student_id": values.student_id, "assessment_namespace": values.assessment_namespace,
        "assessment_identifier": values.assessment_identifier, "edfi_identifier": values.edfi_identifier,
        "batch_id": batch_id, **new,
    })).one()
    if found.added_id is not None:
        uow.emit(_results_posted(actor.zone, new, values.assessment_identifier, batch_id, inserted=1))
        await uow.audit(actor=actor, action="student_result.created", entity="student_result", entity_id=str(found.added_id),
                        zone_id=actor.zone, school_id=str(school_id), after=to_jsonable_python(new))
        await uow.commit()
        return Upserted(found.added_id, created=True)
    row = found
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
    before = {name: getattr(row, name) for name in _RESULT_FIELDS}
    if before == new and row.edfi_identifier == values.edfi_identifier:
        return Upserted(row.id, created=False)
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
                    zone_id=actor.zone, school_id=str(school_id), before=to_jsonable_python(before), after=to_jsonable_python(new))
    await uow.commit()
    return Upserted(row.id, created=False)


async def post_student_school_association(uow: UnitOfWork, actor: Principal, codes: SchoolCodes,
                                          body: StudentSchoolAssociation) -> Upserted:
    """Upsert an enrollment on the Ed-Fi natural key (entryDate, school, student), which is ezone's too."""
    values, errors = enrollment_values(body)
    if values is None:
        raise data_validation_failed(errors)
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

