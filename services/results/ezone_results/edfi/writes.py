"""The Ed-Fi write path's statements, set-based: a group of items is read, written and made into ezone's rows with
a few statements whatever its size (an Ed-Fi loader sends one record a request, tens to hundreds at once).

studentAssessments → student_results. Ed-Fi's key (studentAssessmentIdentifier, assessment, student) lets two
records share one administration (the same student, assessment and day); ezone keeps one result per
administration, made from one of them chosen whatever order they came in: a record with a score or a level
before one without, then the lowest studentAssessmentIdentifier. studentSchoolAssociations → enrollments.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
from ezone_kit.auth import Principal
from ezone_schemas import ResultsPostedV2
from pydantic_core import to_jsonable_python
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from .assessments import Assessments
from .mapping import EnrollmentValues, ResultValues, result_values
from .problems import authorization_denied, identity_conflict
from .referential import referential_id
from .resources import Resource



def as_json(value: Any) -> str:
    return orjson.dumps(value, default=to_jsonable_python).decode()


@dataclass(frozen=True)
class Stored:
    id: uuid.UUID
    resource: str
    identity: dict[str, Any]
    document: dict[str, Any]
    school_id: uuid.UUID | None
    result_key: str | None
    change_version: int
    last_modified: datetime

    @property
    def etag(self) -> str:
        return str(self.change_version)

    def body(self) -> dict[str, Any]:
        modified = self.last_modified.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return {"id": self.id.hex, **self.document, "_etag": self.etag, "_lastModifiedDate": modified}


def stored_from(row: Any) -> Stored:
    return Stored(row.id, row.resource, row.identity, row.document, row.school_id, row.result_key, row.change_version,
                  row.last_modified)


@dataclass(frozen=True)
class NewDocument:
    """What an item's write stores: its document, and what ezone made of it (school, administration)."""

    zone_id: str
    resource: Resource
    identity: dict[str, Any]
    document: dict[str, Any]
    school_id: uuid.UUID | None
    result_key: str | None


@dataclass(frozen=True)
class Change:
    """One item's write: its document before (None: created) and after (None: deleted), and by whom."""

    actor: Principal
    resource: Resource
    before: Stored | None
    after: Stored | None
    enrollment: EnrollmentValues | None = None

    @property
    def result_keys(self) -> list[str]:
        """The administrations whose row may change: the one the record left first."""
        keys = [stored.result_key for stored in (self.before, self.after) if stored is not None and stored.result_key]
        return list(dict.fromkeys(keys))




# --- documents -------------------------------------------------------------------------------------------------

COLUMNS = "id, resource, identity, document, school_id, result_key, change_version, last_modified"
# What a write returns: the rest is what it sent (read back, the documents would be decoded again for nothing).
_WRITTEN = "id, change_version, last_modified"
_EXISTING = text(f"SELECT referential_id, {COLUMNS} FROM results.edfi_documents"
                 " WHERE referential_id = ANY(CAST(:refs AS uuid[]))")
# In id order: two writers of the same items take their locks in the same order.
_LOCKED = text(f"SELECT zone_id, {COLUMNS} FROM results.edfi_documents WHERE id = ANY(CAST(:ids AS uuid[]))"
               " ORDER BY id FOR UPDATE")
_INSERT_DOCUMENTS = text(
    "INSERT INTO results.edfi_documents (id, referential_id, zone_id, resource, identity, document, school_id,"
    " result_key) SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:refs AS uuid[]), CAST(:zones AS text[]),"
    " CAST(:resources AS text[]), CAST(:identities AS jsonb[]), CAST(:documents AS jsonb[]), CAST(:schools AS uuid[]),"
    f" CAST(:keys AS text[])) ON CONFLICT ON CONSTRAINT uq_edfi_documents_referential_id DO NOTHING RETURNING {_WRITTEN}")
_UPDATE_DOCUMENTS = text(
    "UPDATE results.edfi_documents d SET document = u.document, school_id = u.school_id, result_key = u.result_key,"
    " change_version = nextval('results.edfi_change_version'), last_modified = now()"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:documents AS jsonb[]), CAST(:schools AS uuid[]),"
    " CAST(:keys AS text[])) AS u(id, document, school_id, result_key)"
    f" WHERE d.id = u.id RETURNING d.{_WRITTEN.replace(', ', ', d.')}")


async def existing_documents(connection: AsyncConnection, refs: Sequence[uuid.UUID]) -> dict[uuid.UUID, Stored]:
    """The items stored under these referential ids, as committed now (not locked: most are sent again unchanged)."""
    rows = await connection.execute(_EXISTING, {"refs": list(refs)})
    return {row.referential_id: stored_from(row) for row in rows}


async def locked_documents(connection: AsyncConnection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Stored]:
    """These items as they are once locked until the transaction ends (an item may have changed since it was read);
    an item deleted meanwhile is missing."""
    if not ids:
        return {}
    return {row.id: stored_from(row) for row in await connection.execute(_LOCKED, {"ids": list(ids)})}


async def insert_documents(connection: AsyncConnection, documents: Sequence[NewDocument]) -> list[Stored | None]:
    """Each new item, or None where a concurrent request stored one with the same key meanwhile."""
    if not documents:
        return []
    ids = [uuid.uuid4() for _ in documents]
    rows = await connection.execute(_INSERT_DOCUMENTS, {
        "ids": ids, "refs": [referential_id(new.zone_id, new.resource.name, new.identity) for new in documents],
        "zones": [new.zone_id for new in documents], "resources": [new.resource.name for new in documents],
        "identities": [as_json(new.identity) for new in documents],
        "documents": [as_json(new.document) for new in documents],
        "schools": [new.school_id for new in documents], "keys": [new.result_key for new in documents]})
    created = {row.id: row for row in rows}
    return [_written(created[id_], new) if id_ in created else None for id_, new in zip(ids, documents, strict=True)]


async def update_documents(connection: AsyncConnection, updates: Sequence[tuple[uuid.UUID, NewDocument]]) -> list[Stored]:
    """Each item's new document, by the item's id; in the order given."""
    if not updates:
        return []
    rows = await connection.execute(_UPDATE_DOCUMENTS, {
        "ids": [id_ for id_, _ in updates], "documents": [as_json(new.document) for _, new in updates],
        "schools": [new.school_id for _, new in updates], "keys": [new.result_key for _, new in updates]})
    updated = {row.id: row for row in rows}
    return [_written(updated[id_], new) for id_, new in updates]


def _written(row: Any, new: NewDocument) -> Stored:
    return Stored(row.id, new.resource.name, new.identity, new.document, new.school_id, new.result_key,
                  row.change_version, row.last_modified)


# --- ezone's rows ----------------------------------------------------------------------------------------------

_RESULT_COLUMNS = ("school_id", "student_id", "assessment_namespace", "assessment_identifier", "subject",
                   "assessment_category", "grade", "school_year", "administration_date", "scale_score",
                   "performance_level", "proficient", "growth_percentile", "not_tested_reason", "edfi_identifier",
                   "edfi_document_id")
# Taken in the order of the array (sorted): two writers never wait for each other's locks in a circle.
_LOCK_RESULTS = text("SELECT count(pg_advisory_xact_lock(hashtextextended(key, 0)))"
                     " FROM unnest(CAST(:keys AS text[])) AS key")
_DOCUMENTS_OF_RESULTS = text(f"SELECT {COLUMNS} FROM results.edfi_documents"
                             " WHERE zone_id = :z AND result_key = ANY(CAST(:keys AS text[]))")
_RESULT_ROWS = text(
    "SELECT * FROM results.student_results WHERE zone_id = :z AND"
    " (student_id, assessment_namespace, assessment_identifier, school_year, administration_date) IN"
    " (SELECT * FROM unnest(CAST(:students AS text[]), CAST(:namespaces AS text[]), CAST(:identifiers AS text[]),"
    " CAST(:years AS text[]), CAST(:days AS date[]))) ORDER BY id FOR UPDATE")
_DELETE_RESULTS = text("DELETE FROM results.student_results WHERE id = ANY(CAST(:ids AS bigint[]))")
_INSERT_RESULT = text(f"INSERT INTO results.student_results (zone_id, batch_id, {', '.join(_RESULT_COLUMNS)})"
                      f" VALUES (:zone_id, :batch_id, {', '.join(f':{name}' for name in _RESULT_COLUMNS)})")
_UPDATE_RESULT = text(f"UPDATE results.student_results SET {', '.join(f'{name} = :{name}' for name in _RESULT_COLUMNS)},"
                      " batch_id = :batch_id, updated_at = now() WHERE id = :id")
_UPSERT_ENROLLMENT = text(
    "INSERT INTO results.enrollments (zone_id, student_id, school_id, entry_date, school_year, grade, exit_date,"
    " edfi_document_id, batch_id) VALUES (:zone_id, :student_id, :school_id, :entry_date, :school_year, :grade,"
    " :exit_date, :document_id, :batch_id) ON CONFLICT ON CONSTRAINT uq_enrollments_natural_key DO UPDATE SET"
    " school_year = excluded.school_year, grade = excluded.grade, exit_date = excluded.exit_date,"
    " edfi_document_id = excluded.edfi_document_id, batch_id = excluded.batch_id, updated_at = now()")
_DELETE_ENROLLMENTS = text("DELETE FROM results.enrollments WHERE edfi_document_id = ANY(CAST(:ids AS uuid[]))")


async def project_results(connection: AsyncConnection, assessments: Assessments, changes: Sequence[Change],
                          events: list[ResultsPostedV2], batch_id: uuid.UUID) -> None:
    """Make each administration the changes touched into its student_results row, from the record chosen among its
    documents (or remove the row when none is left), announcing what changed."""
    by_zone: dict[str, dict[str, list[Change]]] = {}
    for change in changes:
        for key in change.result_keys:
            by_zone.setdefault(change.actor.zone, {}).setdefault(key, []).append(change)
    for zone_id, touched in by_zone.items():
        await _project_zone(connection, assessments, zone_id, touched, events, batch_id)


async def _project_zone(connection: AsyncConnection, assessments: Assessments, zone_id: str,
                        touched: dict[str, list[Change]], events: list[ResultsPostedV2], batch_id: uuid.UUID) -> None:
    keys = sorted(touched)
    # Two records of one administration may be written at once (an Ed-Fi loader sends in parallel, to two
    # processes): one writer at a time makes its row.
    await connection.execute(_LOCK_RESULTS, {"keys": [f"edfi-result|{zone_id}|{key}" for key in keys]})
    documents: dict[str, list[Stored]] = {}
    for row in await connection.execute(_DOCUMENTS_OF_RESULTS, {"z": zone_id, "keys": keys}):
        documents.setdefault(row.result_key, []).append(stored_from(row))
    parts = [key.split("|") for key in keys]
    rows = {_key_of_row(row): row for row in await connection.execute(_RESULT_ROWS, {
        "z": zone_id, "students": [p[0] for p in parts], "namespaces": [p[1] for p in parts],
        "identifiers": [p[2] for p in parts], "years": [p[3] for p in parts],
        "days": [date.fromisoformat(p[4]) for p in parts]})}
    deletes: list[int] = []
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    # The administrations a record left first: their rows let go of it before another row takes it (one record
    # makes one row at most).
    for key in sorted(keys, key=lambda key: not _left(key, touched[key])):
        chosen = min(documents.get(key, ()), key=_choice, default=None)
        values = None
        if chosen is not None:
            reference = chosen.document["assessmentReference"]
            assessment = await assessments.get(connection, zone_id, reference["namespace"],
                                               reference["assessmentIdentifier"])
            if assessment is not None:
                values, _ = result_values(chosen.document, assessment)
        row = rows.get(key)
        if row is not None and not all(change.actor.may_act_for_school(row.school_id) for change in touched[key]):
            raise authorization_denied("The result belongs to a school the client may not post data for.")
        if values is None or chosen is None:
            if row is not None and row.edfi_document_id is not None:
                deletes.append(row.id)
                _announce(events, zone_id, row._mapping, batch_id, updated=1)
            continue
        new = _result_columns(values, chosen)
        if row is None:
            inserts.append({"zone_id": zone_id, "batch_id": batch_id, **new})
            _announce(events, zone_id, new, batch_id, inserted=1)
        elif any(row._mapping[name] != value for name, value in new.items()):
            updates.append({**new, "batch_id": batch_id, "id": row.id})
            _announce(events, zone_id, new, batch_id, updated=1)
            if (row.school_id, row.subject) != (new["school_id"], new["subject"]):
                _announce(events, zone_id, row._mapping, batch_id, updated=1)
    if deletes:
        await connection.execute(_DELETE_RESULTS, {"ids": deletes})
    try:
        if updates:
            await connection.execute(_UPDATE_RESULT, updates)
        if inserts:
            await connection.execute(_INSERT_RESULT, inserts)
    except IntegrityError as exc:
        if "ix_student_results_edfi_document" in str(exc):
            raise identity_conflict("Another administration's result is already made from this record.") from None
        raise


def _left(key: str, changes: list[Change]) -> bool:
    return any(change.before is not None and change.before.result_key == key
               and (change.after is None or change.after.result_key != key) for change in changes)


def _key_of_row(row: Any) -> str:
    return "|".join((row.student_id, row.assessment_namespace, row.assessment_identifier, row.school_year,
                     row.administration_date.isoformat()))


async def project_enrollments(connection: AsyncConnection, changes: Sequence[Change]) -> None:
    """studentSchoolAssociations → enrollments: the one made from each record, or none once it is deleted."""
    upserts = [_enrollment_params(change) for change in changes if change.after is not None and change.enrollment]
    deleted = [change.before.id for change in changes if change.after is None and change.before is not None]
    if upserts:
        await connection.execute(_UPSERT_ENROLLMENT, upserts)
    if deleted:
        await connection.execute(_DELETE_ENROLLMENTS, {"ids": deleted})


def _enrollment_params(change: Change) -> dict[str, Any]:
    values, after = change.enrollment, change.after
    assert values is not None and after is not None
    return {"zone_id": change.actor.zone, "student_id": values.student_id, "school_id": after.school_id,
            "entry_date": values.entry_date, "school_year": values.school_year, "grade": values.grade,
            "exit_date": values.exit_date, "document_id": after.id, "batch_id": uuid.uuid4()}


def _choice(stored: Stored) -> tuple[bool, str]:
    document = stored.document
    has_result = bool(document.get("scoreResults") or document.get("performanceLevels"))
    return not has_result, document["studentAssessmentIdentifier"]


def _result_columns(values: ResultValues, chosen: Stored) -> dict[str, Any]:
    return {
        "school_id": chosen.school_id, "student_id": values.student_id,
        "assessment_namespace": values.assessment_namespace, "assessment_identifier": values.assessment_identifier,
        "subject": values.subject, "assessment_category": values.assessment_category, "grade": values.grade,
        "school_year": values.school_year, "administration_date": values.administration_date,
        "scale_score": values.scale_score, "performance_level": values.performance_level,
        "proficient": values.proficient, "growth_percentile": values.growth_percentile,
        "not_tested_reason": values.not_tested_reason, "edfi_identifier": values.edfi_identifier,
        "edfi_document_id": chosen.id,
    }


def _announce(events: list[ResultsPostedV2], zone_id: str, row: Any, batch_id: uuid.UUID, *, inserted: int = 0,
              updated: int = 0) -> None:
    """results.posted for the row's school, year and subject, whatever the subject."""
    events.append(ResultsPostedV2(zone_id=zone_id, school_id=row["school_id"], school_year=row["school_year"],
                                  subject=row["subject"], assessment_identifiers=[row["assessment_identifier"]],
                                  batch_id=batch_id, source="edfi", rows_inserted=inserted, rows_updated=updated,
                                  posted_at=datetime.now(UTC)))


def coalesced(events: Sequence[ResultsPostedV2]) -> list[ResultsPostedV2]:
    """One event per zone, school, school year and subject, counting all the group's rows."""
    merged: dict[tuple[Any, ...], ResultsPostedV2] = {}
    for event in events:
        key = (event.zone_id, event.school_id, event.school_year, event.subject)
        first = merged.get(key)
        merged[key] = event if first is None else first.model_copy(update={
            "rows_inserted": first.rows_inserted + event.rows_inserted,
            "rows_updated": first.rows_updated + event.rows_updated,
            "assessment_identifiers": sorted({*first.assessment_identifiers, *event.assessment_identifiers})})
    return list(merged.values())
