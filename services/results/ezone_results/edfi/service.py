"""The Ed-Fi API's work: every resource item is a document kept as its client sent it, under the zone and its
natural key; student data is also made into ezone's own rows, which the review reads.

A write is checked outside any transaction, from caches where it can be (the resource's schema, its descriptor
values, its references, and for student data the assessment's own score ranges and performance levels, the grade
taught at the school, the caller's schools). Then a POST joins the POSTs of other requests waiting to be written (group commit, `group_commit.py`): one transaction writes
the group, each item in a savepoint of its own — its document, the row made from it, its audit entry — and one
`results.posted` per school, school year and subject the group changed. PUT and DELETE are a transaction each.

studentAssessments → student_results. Ed-Fi's key (studentAssessmentIdentifier, assessment, student) lets two
records share one administration (the same student, assessment and day); ezone keeps one result per
administration, made from one of them chosen whatever order they came in: a record with a score or a level
before one without, then the lowest studentAssessmentIdentifier. studentSchoolAssociations → enrollments.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import resources as package_files
from typing import Any

import orjson
from ezone_kit.auth import SCHOOL_BOUND_ROLES, Principal
from ezone_kit.problems import Problem
from ezone_kit.service import Kit
from ezone_kit.uow import UnitOfWork
from ezone_schemas import ResultsPosted
from ezone_schemas.vocabulary import Subject
from pydantic_core import to_jsonable_python
from sqlalchemy import Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from .assessments import Assessment, Assessments
from .group_commit import GroupCommit
from .mapping import EnrollmentValues, ResultValues, enrollment_values, grades_in_span, result_values
from .openapi_schemas import DESCRIPTOR_RESOURCES
from .reads import LazyConnection, Reader
from .problems import (
    authorization_denied,
    data_validation_failed,
    dependent_items_exist,
    identity_conflict,
    not_found,
    precondition_failed,
    unresolved_reference,
)
from .resources import RESOURCES, Resource, references_in
from .validation import Descriptors, schema_errors

_log = logging.getLogger("ezone.results.edfi")

SERVER_FIELDS = ("id", "_etag", "_lastModifiedDate")
_SUBJECTS = {str(subject) for subject in Subject}


def _json(value: Any) -> str:
    return orjson.dumps(value, default=to_jsonable_python).decode()


def client_document(body: Any) -> Any:
    """What a client sent, without what the server sets: `id`, `_etag`, `_lastModifiedDate`, and each
    reference's `link` (so that a document read with GET can be written back as it is)."""
    if isinstance(body, dict):
        # A null is an absent value, as Ed-Fi reads it.
        return {name: client_document(value) for name, value in body.items()
                if name not in SERVER_FIELDS and value is not None and not (name == "link" and isinstance(value, dict))}
    if isinstance(body, list):
        return [client_document(item) for item in body]
    return body


def _default_descriptors() -> dict[str, list[dict[str, str]]]:
    return json.loads(package_files.files(__package__).joinpath("descriptors.json").read_text())


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


@dataclass(frozen=True)
class Written:
    stored: Stored
    created: bool


@dataclass
class SchoolCodes:
    """Each zone's schools by state code (Ed-Fi's schoolId), from this service's directory projection; a code not
    found reloads the zone (a school registered since)."""

    _zones: dict[str, dict[str, Row[Any]]] = field(default_factory=dict)

    async def school_of(self, conn: Reader, zone_id: str, school_id: object) -> Row[Any] | None:
        code = _state_code(school_id)
        known = self._zones.get(zone_id, {})
        if code not in known:
            rows = await conn.execute(text("SELECT id, code, name, grade_span FROM results.schools WHERE zone_id = :z"),
                                      {"z": zone_id})
            known = self._zones[zone_id] = {_state_code(row.code): row for row in rows}
        return known.get(code)


def _state_code(code: object) -> str:
    """Ed-Fi sends schoolId as a number; states write codes zero-padded (`02810320`)."""
    return str(code).strip().lstrip("0")


@dataclass(frozen=True)
class _Checked:
    """A document that passed every check, and what it makes of ezone's rows."""

    resource: Resource
    document: dict[str, Any]
    identity: dict[str, Any]
    school_id: uuid.UUID | None = None
    result: ResultValues | None = None
    enrollment: EnrollmentValues | None = None


# A group's statement count grows with its items; 128 is about as many requests as a loader keeps in flight.
MAX_GROUP = 128
# While requests stream in, how long a group waits for more before it is written: fewer, larger groups (a
# transaction and one results.posted per school, year and subject for the whole group). A request alone waits
# for nothing.
GROUP_LINGER_S = 0.005


@dataclass
class EdFi:
    """What the Ed-Fi endpoints of one running app share: caches of the zone's schools, descriptors, assessments
    and resolved references, the zones whose descriptors were seeded, and the writer of POSTs' groups."""

    kit: Kit
    codes: SchoolCodes = field(default_factory=SchoolCodes)
    descriptors: Descriptors = field(default_factory=Descriptors)
    assessments: Assessments = field(default_factory=Assessments)
    seeded: set[str] = field(default_factory=set)
    resolved: set[tuple[str, str, str]] = field(default_factory=set)
    writer: GroupCommit[tuple[Principal, _Checked], Written] = field(init=False)

    def __post_init__(self) -> None:
        self.writer = GroupCommit(self._write_group, MAX_GROUP, GROUP_LINGER_S)

    # --- reading ---------------------------------------------------------------------------------------------

    async def get(self, actor: Principal, resource: Resource, item_id: str) -> Stored:
        async with self.kit.engine.connect() as conn:
            await self.ensure_seeded(actor.zone)
            stored = await _by_id(conn, actor.zone, resource, item_id)
        _may_read(actor, resource, stored)
        return stored

    async def page(self, actor: Principal, resource: Resource, keys: dict[str, str], properties: dict[str, str], *,
                   offset: int, limit: int, min_change: int | None, max_change: int | None,
                   count: bool) -> tuple[list[Stored], int | None]:
        """A page of items, by natural key fields (`keys`) and other top-level properties; names are the schema's."""
        conditions = ["zone_id = :zone_id", "resource = :resource"]
        params: dict[str, Any] = {"zone_id": actor.zone, "resource": resource.name}
        for n, (name, value) in enumerate(keys.items()):
            conditions.append(f"identity->>'{name}' = :k{n}")
            params[f"k{n}"] = value
        for n, (name, value) in enumerate(properties.items()):
            conditions.append(f"document->>'{name}' = :p{n}")
            params[f"p{n}"] = value
        if min_change is not None:
            conditions.append("change_version >= :min_change")
            params["min_change"] = min_change
        if max_change is not None:
            conditions.append("change_version <= :max_change")
            params["max_change"] = max_change
        if resource.school_bound and actor.role in SCHOOL_BOUND_ROLES:
            conditions.append("school_id = ANY(CAST(:schools AS uuid[]))")
            params["schools"] = sorted(actor.schools)
        where = " AND ".join(conditions)
        async with self.kit.engine.connect() as conn:
            await self.ensure_seeded(actor.zone)
            rows = await conn.execute(text(
                f"SELECT {_COLUMNS} FROM results.edfi_documents WHERE {where} ORDER BY position OFFSET :offset LIMIT :limit"),
                {**params, "offset": offset, "limit": limit})
            items = [_stored(row) for row in rows]
            total = (await conn.execute(text(f"SELECT count(*) FROM results.edfi_documents WHERE {where}"), params)
                     ).scalar_one() if count else None
        return items, total

    async def deletes(self, actor: Principal, resource: Resource, *, offset: int, limit: int, min_change: int | None,
                      max_change: int | None) -> list[dict[str, Any]]:
        conditions = ["zone_id = :zone_id", "resource = :resource", "change_version >= :min_change",
                      "change_version <= :max_change"]
        params: dict[str, Any] = {"zone_id": actor.zone, "resource": resource.name, "min_change": min_change or 0,
                                  "max_change": max_change if max_change is not None else 2**63 - 1}
        if resource.school_bound and actor.role in SCHOOL_BOUND_ROLES:
            conditions.append("school_id = ANY(CAST(:schools AS uuid[]))")
            params["schools"] = sorted(actor.schools)
        async with self.kit.engine.connect() as conn:
            rows = await conn.execute(text(
                f"SELECT id, change_version, identity FROM results.edfi_deletes WHERE {' AND '.join(conditions)}"
                " ORDER BY change_version OFFSET :offset LIMIT :limit"), {**params, "offset": offset, "limit": limit})
            return [{"id": row.id.hex, "changeVersion": row.change_version, "keyValues": row.identity} for row in rows]

    async def newest_change_version(self, actor: Principal) -> int:
        async with self.kit.engine.connect() as conn:
            return (await conn.execute(text(
                "SELECT greatest((SELECT max(change_version) FROM results.edfi_documents WHERE zone_id = :z),"
                " (SELECT max(change_version) FROM results.edfi_deletes WHERE zone_id = :z), 0)"), {"z": actor.zone})
                    ).scalar_one()

    async def schools(self, actor: Principal) -> list[dict[str, Any]]:
        """The zone's schools as Ed-Fi `schools` (read-only: the plans service registers them)."""
        async with self.kit.engine.connect() as conn:
            rows = await conn.execute(text("SELECT id, code, name, grade_span FROM results.schools WHERE zone_id = :z"
                                           " ORDER BY code"), {"z": actor.zone})
            return [_school_document(row) for row in rows if actor.may_act_for_school(row.id)]

    # --- writing ---------------------------------------------------------------------------------------------

    async def upsert(self, actor: Principal, resource: Resource, body: Any) -> Written:
        """POST: create, or update the item with the same natural key; the same document again changes nothing.
        Answered once the group the item was written in is committed."""
        checked = await self._check(actor, resource, body)
        return await self.writer.submit((actor, checked))

    async def _write_group(self, group: Sequence[tuple[Principal, _Checked]]) -> list[Written | BaseException]:
        """One transaction for a group of POSTs; each item in a savepoint of its own, so that its error is its alone;
        one results.posted per school, year and subject the group changed."""
        outcomes: list[Written | BaseException] = []
        announced: list[ResultsPosted] = []
        batch_id = uuid.uuid4()
        try:
            async with self.kit.unit_of_work() as uow:
                connection = await uow.session.connection()
                for actor, checked in group:
                    events: list[ResultsPosted] = []
                    try:
                        if len(group) == 1:  # its transaction is its own
                            outcomes.append(await self._upsert_one(uow, actor, checked, events, batch_id))
                        else:
                            async with connection.begin_nested():
                                outcomes.append(await self._upsert_one(uow, actor, checked, events, batch_id))
                    except Problem as problem:
                        if len(group) == 1:
                            raise
                        outcomes.append(problem)
                    else:
                        announced.extend(events)
                uow.emit(*_coalesced(announced))
                await uow.commit()
        except DBAPIError as exc:
            if len(group) == 1:
                raise
            # E.g. a deadlock with a group of another process: each item is then written on its own.
            _log.warning("An Ed-Fi group of %d items failed (%s); each is written on its own.", len(group), exc.orig)
            return [await _outcome(self._write_group([item])) for item in group]
        for actor, checked in group:
            self._forget(actor.zone, checked.resource, checked.identity)
        return outcomes

    async def _upsert_one(self, uow: UnitOfWork, actor: Principal, checked: _Checked, events: list[ResultsPosted],
                          batch_id: uuid.UUID) -> Written:
        connection = await uow.session.connection()
        stored = await _by_identity(connection, actor.zone, checked.resource, checked.identity)
        if stored is None:
            created = await _insert(connection, actor.zone, checked)
            if created is not None:
                await self._after_write(uow, actor, checked, None, created, events, batch_id)
                return Written(created, created=True)
            # Created meanwhile by a concurrent request with the same key: this one updates it.
            stored = await _by_identity(connection, actor.zone, checked.resource, checked.identity)
            assert stored is not None
        return Written(await self._update(uow, actor, checked, stored, events, batch_id), created=False)

    async def replace(self, actor: Principal, resource: Resource, item_id: str, body: Any, if_match: str | None) -> Stored:
        """PUT: the item's whole new document; its natural key cannot change."""
        checked = await self._check(actor, resource, body)
        async with self.kit.unit_of_work() as uow:
            stored = await _by_id(uow.session, actor.zone, resource, item_id, lock=True)
            _may_change(actor, resource, stored)
            _check_etag(stored, if_match)
            if stored.identity != checked.identity:
                raise data_validation_failed({"$": [
                    f"The natural key of a {resource.name} item cannot be changed (it is {_json(stored.identity)}); "
                    "delete it and create the new one."]})
            events: list[ResultsPosted] = []
            updated = await self._update(uow, actor, checked, stored, events, uuid.uuid4())
            uow.emit(*events)
            await uow.commit()
        self._forget(actor.zone, resource, checked.identity)
        return updated

    async def delete(self, actor: Principal, resource: Resource, item_id: str, if_match: str | None) -> None:
        if resource.read_only:
            raise _read_only(resource)
        async with self.kit.unit_of_work() as uow:
            stored = await _by_id(uow.session, actor.zone, resource, item_id, lock=True)
            _may_change(actor, resource, stored)
            _check_etag(stored, if_match)
            connection = await uow.session.connection()
            await _refuse_if_referenced(connection, actor.zone, resource, stored)
            await connection.execute(text("DELETE FROM results.edfi_documents WHERE id = :id"), {"id": stored.id})
            await connection.execute(text(
                "INSERT INTO results.edfi_deletes (id, zone_id, resource, identity, school_id)"
                " VALUES (:id, :zone_id, :resource, CAST(:identity AS jsonb), :school_id)"),
                {"id": stored.id, "zone_id": actor.zone, "resource": resource.name, "identity": _json(stored.identity),
                 "school_id": stored.school_id})
            if stored.result_key is not None:
                events: list[ResultsPosted] = []
                await self._project_results(actor, connection, [stored.result_key], events, uuid.uuid4())
                uow.emit(*events)
            elif resource.name == "studentSchoolAssociations":
                await connection.execute(text("DELETE FROM results.enrollments WHERE edfi_document_id = :id"),
                                      {"id": stored.id})
            await uow.audit(actor=actor, action=f"edfi.{resource.name}.deleted", entity=resource.name,
                            entity_id=stored.id.hex, zone_id=actor.zone,
                            school_id=str(stored.school_id) if stored.school_id else None, before=stored.identity)
            await uow.commit()
        self._forget(actor.zone, resource, stored.identity)

    async def _update(self, uow: UnitOfWork, actor: Principal, checked: _Checked, stored: Stored,
                      events: list[ResultsPosted], batch_id: uuid.UUID) -> Stored:
        _may_change(actor, checked.resource, stored)
        if stored.document == checked.document and stored.school_id == checked.school_id:
            return stored  # as sent before: no second effect
        row = (await (await uow.session.connection()).execute(_UPDATE_DOCUMENT, {"id": stored.id, "document": _json(checked.document), "school_id": checked.school_id,
             "result_key": checked.result.result_key if checked.result else None})).one()
        updated = _stored(row)
        await self._after_write(uow, actor, checked, stored, updated, events, batch_id)
        return updated

    async def _after_write(self, uow: UnitOfWork, actor: Principal, checked: _Checked, before: Stored | None,
                           after: Stored, events: list[ResultsPosted], batch_id: uuid.UUID) -> None:
        """ezone's rows made from the document, and the audit entry."""
        connection = await uow.session.connection()
        if checked.resource.name == "studentAssessments":
            # The old administration first: it lets go of its row before the new one takes it.
            keys = [before.result_key if before else None, after.result_key]
            await self._project_results(actor, connection, [key for n, key in enumerate(keys) if key and key not in keys[:n]],
                                        events, batch_id)
        elif checked.enrollment is not None:
            await _project_enrollment(connection, actor, checked, after)
        await uow.audit(actor=actor, action=f"edfi.{checked.resource.name}.{'updated' if before else 'created'}",
                        entity=checked.resource.name, entity_id=after.id.hex, zone_id=actor.zone,
                        school_id=str(after.school_id) if after.school_id else None, after=checked.identity)

    def _forget(self, zone_id: str, resource: Resource, identity: dict[str, Any]) -> None:
        if resource.descriptor:
            self.descriptors.forget(zone_id)
        elif resource.name == "assessments":
            self.assessments.forget(zone_id, identity["namespace"], identity["assessmentIdentifier"])
        self.resolved.discard((zone_id, resource.name, _json(identity)))

    # --- checks ----------------------------------------------------------------------------------------------

    async def ensure_seeded(self, zone_id: str) -> None:
        """The zone's descriptors start as Ed-Fi's defaults, once: what a client deletes or changes stays so."""
        if zone_id in self.seeded:
            return
        async with self.kit.engine.begin() as seeding:
            claimed = (await seeding.execute(text(
                "INSERT INTO results.edfi_seeded_zones (zone_id) VALUES (:z) ON CONFLICT DO NOTHING RETURNING zone_id"),
                {"z": zone_id})).scalar()
            if claimed is not None:
                defaults = [(name, value) for name, values in _default_descriptors().items()
                            if name in DESCRIPTOR_RESOURCES for value in values]
                await seeding.execute(text(
                    "INSERT INTO results.edfi_documents (id, zone_id, resource, identity, document)"
                    " SELECT gen_random_uuid(), :z, resource, jsonb_build_object('namespace', document->>'namespace',"
                    " 'codeValue', document->>'codeValue'), document"
                    " FROM unnest(CAST(:resources AS text[]), CAST(:documents AS jsonb[])) AS d(resource, document)"
                    " ON CONFLICT DO NOTHING"),
                    {"z": zone_id, "resources": [name for name, _ in defaults],
                     "documents": [_json(value) for _, value in defaults]})
        self.seeded.add(zone_id)

    async def _check(self, actor: Principal, resource: Resource, body: Any) -> _Checked:
        if resource.read_only:
            raise _read_only(resource)
        if not isinstance(body, dict):
            raise data_validation_failed({"$": ["The request body must be a JSON object."]})
        document = client_document(body)
        if errors := schema_errors(resource, document):
            raise data_validation_failed(errors)
        identity = resource.identity_of(document)
        assert identity is not None  # the schema requires every key field
        async with LazyConnection(self.kit.engine) as conn:
            await self.ensure_seeded(actor.zone)
            if errors := await self.descriptors.unknown(conn, actor.zone, document):
                raise data_validation_failed(errors)
            schools = await self._resolve_references(conn, actor, resource, document)
            if resource.name == "studentAssessments":
                return await self._check_result(conn, actor, resource, document, identity, schools)
            if resource.name == "studentSchoolAssociations":
                values, errors = enrollment_values(document)
                school = schools["$.schoolReference"]
                if values is not None and values.grade not in grades_in_span(school.grade_span):
                    errors["$.entryGradeLevelDescriptor"] = [_grade_not_taught(values.grade, school)]
                if values is None or errors:
                    raise data_validation_failed(errors)
                _may_act_for(actor, school)
                return _Checked(resource, document, identity, school_id=school.id, enrollment=values)
        return _Checked(resource, document, identity)

    async def _resolve_references(self, conn: Reader, actor: Principal, resource: Resource,
                                  document: dict[str, Any]) -> dict[str, Row[Any]]:
        """Every reference must name an item of the zone (409 Unresolved Reference otherwise); the schools referred
        to, by JSON path."""
        schools: dict[str, Row[Any]] = {}
        wanted: dict[tuple[str, str], list[str]] = {}
        for path, reference, key in references_in(resource, document):
            if reference.resource == "schools":
                school = await self.codes.school_of(conn, actor.zone, key["schoolId"])
                if school is None:
                    # Another zone's school is as unknown here as one that does not exist.
                    raise unresolved_reference("School", f"No school with schoolId {key['schoolId']} is registered in "
                                                         f"zone {actor.zone} (at {path}).")
                schools[path] = school
            elif (actor.zone, reference.resource, identity := _json(key)) not in self.resolved:
                wanted.setdefault((reference.resource, identity), []).append(path)
        if wanted:
            found = await conn.execute(text(
                "SELECT resource, identity FROM results.edfi_documents WHERE zone_id = :z AND (resource, identity) IN"
                " (SELECT * FROM unnest(CAST(:resources AS text[]), CAST(:identities AS jsonb[])))"),
                {"z": actor.zone, "resources": [name for name, _ in wanted], "identities": [key for _, key in wanted]})
            for name, identity in found:
                key = (name, _json(identity))
                if key not in wanted:  # jsonb prints its keys in its own order
                    key = next(k for k in wanted if k[0] == name and orjson.loads(k[1]) == identity)
                self._remember(actor.zone, *key)
                wanted.pop(key)
            if wanted:
                (name, key), paths = next(iter(wanted.items()))
                singular = name[:-1]
                raise unresolved_reference(singular[0].upper() + singular[1:],
                                           f"No {singular} {key} in zone {actor.zone} (at {', '.join(paths)}); "
                                           f"send it to {name} first.")
        return schools

    def _remember(self, zone_id: str, resource: str, identity: str) -> None:
        if len(self.resolved) > 200_000:
            self.resolved.clear()
        self.resolved.add((zone_id, resource, identity))

    async def _check_result(self, conn: Reader, actor: Principal, resource: Resource,
                            document: dict[str, Any], identity: dict[str, Any], schools: dict[str, Row[Any]]) -> _Checked:
        reference = document["assessmentReference"]
        assessment = await self.assessments.get(conn, actor.zone, reference["namespace"], reference["assessmentIdentifier"])
        assert assessment is not None  # resolved above
        values, errors = result_values(document, assessment)
        if errors:
            raise data_validation_failed(errors)
        reported = schools.get("$.reportedSchoolReference")
        if values is None:
            if reported is None:
                raise data_validation_failed({"$.administrationDate": [
                    "Without an administrationDate ezone cannot tell the school year or the enrollment the result "
                    "counts for: send the date, or reportedSchoolReference to keep the record as it is."]})
            _may_act_for(actor, reported)
            return _Checked(resource, document, identity, school_id=reported.id)
        school = reported or await _enrolled_school(conn, actor.zone, values)
        if school is None:
            raise data_validation_failed({"$.reportedSchoolReference": [
                f"Student {values.student_id} has no studentSchoolAssociation on {values.administration_date} to take "
                "the school from: send reportedSchoolReference, or the enrollment first."]})
        if values.grade is not None and values.grade not in grades_in_span(school.grade_span):
            raise data_validation_failed({"$.whenAssessedGradeLevelDescriptor": [_grade_not_taught(values.grade, school)]})
        _may_act_for(actor, school)
        return _Checked(resource, document, identity, school_id=school.id, result=values)

    # --- ezone's rows ----------------------------------------------------------------------------------------

    async def _project_results(self, actor: Principal, connection: AsyncConnection, keys: Sequence[str],
                               events: list[ResultsPosted], batch_id: uuid.UUID) -> None:
        """Make each administration's student_results row from the record chosen among its documents (or remove
        the row when none is left), announcing what changed."""
        # Two records of one administration may be written at once (an Ed-Fi loader sends in parallel): one at a
        # time makes the row, in key order so that two writers never wait for each other.
        for key in sorted(keys):
            await connection.execute(_LOCK_RESULT, {"key": f"edfi-result|{actor.zone}|{key}"})
        for key in keys:
            documents = (await connection.execute(_DOCUMENTS_OF_RESULT, {"z": actor.zone, "key": key})).all()
            chosen = min((_stored(row) for row in documents), key=_choice, default=None)
            values = None
            if chosen is not None:
                reference = chosen.document["assessmentReference"]
                assessment = await self.assessments.get(connection, actor.zone, reference["namespace"],
                                                        reference["assessmentIdentifier"])
                values = _values_of(chosen, assessment)
            student, namespace, identifier, year, day = key.split("|")
            row = (await connection.execute(_RESULT_ROW, {"z": actor.zone, "s": student, "n": namespace, "a": identifier, "y": year, "d": date.fromisoformat(day)}
            )).one_or_none()
            if row is not None and not actor.may_act_for_school(row.school_id):
                raise authorization_denied("The result belongs to a school the client may not post data for.")
            if values is None or chosen is None:
                if row is not None and row.edfi_document_id is not None:
                    await connection.execute(_DELETE_RESULT, {"id": row.id})
                    _announce(events, actor.zone, row._mapping, batch_id, updated=1)
                continue
            new = _result_columns(values, chosen)
            if row is None:
                await connection.execute(_INSERT_RESULT, {"zone_id": actor.zone, "batch_id": batch_id, **new})
                _announce(events, actor.zone, new, batch_id, inserted=1)
            elif any(row._mapping[name] != value for name, value in new.items()):
                try:
                    async with connection.begin_nested():
                        await connection.execute(_UPDATE_RESULT, {**new, "batch_id": batch_id, "id": row.id})
                except Exception as exc:
                    if "ix_student_results_edfi_document" in str(exc):
                        raise identity_conflict("Another administration's result is already made from this record.") from None
                    raise
                _announce(events, actor.zone, new, batch_id, updated=1)
                if (row.school_id, row.subject) != (new["school_id"], new["subject"]):
                    _announce(events, actor.zone, row._mapping, batch_id, updated=1)


def _coalesced(events: Sequence[ResultsPosted]) -> list[ResultsPosted]:
    """One event per zone, school, school year and subject, counting all the group's rows."""
    merged: dict[tuple[Any, ...], ResultsPosted] = {}
    for event in events:
        key = (event.zone_id, event.school_id, event.school_year, event.subject)
        first = merged.get(key)
        merged[key] = event if first is None else first.model_copy(update={
            "rows_inserted": first.rows_inserted + event.rows_inserted,
            "rows_updated": first.rows_updated + event.rows_updated,
            "assessment_identifiers": sorted({*first.assessment_identifiers, *event.assessment_identifiers})})
    return list(merged.values())


async def _outcome(write: Awaitable[list[Written | BaseException]]) -> Written | BaseException:
    try:
        [outcome] = await write
    except Exception as exc:  # noqa: BLE001 - the item's own answer
        return exc
    return outcome


_COLUMNS = "id, resource, identity, document, school_id, result_key, change_version, last_modified"
_RESULT_COLUMNS = ("school_id", "student_id", "assessment_namespace", "assessment_identifier", "subject",
                   "assessment_category", "grade", "school_year", "administration_date", "scale_score",
                   "performance_level", "proficient", "growth_percentile", "not_tested_reason", "edfi_identifier",
                   "edfi_document_id")
# The write path's statements, their text parsed once.
_BY_IDENTITY = text(f"SELECT {_COLUMNS} FROM results.edfi_documents WHERE zone_id = :z AND resource = :r"
                    " AND identity = CAST(:identity AS jsonb)")
_BY_IDENTITY_FOR_UPDATE = text(f"{_BY_IDENTITY.text} FOR UPDATE")
_INSERT_DOCUMENT = text(
    "INSERT INTO results.edfi_documents (id, zone_id, resource, identity, document, school_id, result_key)"
    " VALUES (:id, :z, :r, CAST(:identity AS jsonb), CAST(:document AS jsonb), :school_id, :result_key)"
    f" ON CONFLICT ON CONSTRAINT uq_edfi_documents_identity DO NOTHING RETURNING {_COLUMNS}")
_UPDATE_DOCUMENT = text(
    "UPDATE results.edfi_documents SET document = CAST(:document AS jsonb), school_id = :school_id,"
    " result_key = :result_key, change_version = nextval('results.edfi_change_version'), last_modified = now()"
    f" WHERE id = :id RETURNING {_COLUMNS}")
_LOCK_RESULT = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_DOCUMENTS_OF_RESULT = text(f"SELECT {_COLUMNS} FROM results.edfi_documents WHERE zone_id = :z AND result_key = :key")
_RESULT_ROW = text(
    "SELECT * FROM results.student_results WHERE zone_id = :z AND student_id = :s AND assessment_namespace = :n"
    " AND assessment_identifier = :a AND school_year = :y AND administration_date = :d FOR UPDATE")
_DELETE_RESULT = text("DELETE FROM results.student_results WHERE id = :id")
_INSERT_RESULT = text(f"INSERT INTO results.student_results (zone_id, batch_id, {', '.join(_RESULT_COLUMNS)})"
                      f" VALUES (:zone_id, :batch_id, {', '.join(f':{name}' for name in _RESULT_COLUMNS)})")
_UPDATE_RESULT = text(f"UPDATE results.student_results SET {', '.join(f'{name} = :{name}' for name in _RESULT_COLUMNS)},"
                      " batch_id = :batch_id, updated_at = now() WHERE id = :id")


def _stored(row: Any) -> Stored:
    return Stored(row.id, row.resource, row.identity, row.document, row.school_id, row.result_key, row.change_version,
                  row.last_modified)


def _choice(stored: Stored) -> tuple[bool, str]:
    document = stored.document
    has_result = bool(document.get("scoreResults") or document.get("performanceLevels"))
    return not has_result, document["studentAssessmentIdentifier"]


def _values_of(stored: Stored, assessment: Assessment | None) -> ResultValues | None:
    if assessment is None:
        return None
    values, _ = result_values(stored.document, assessment)
    return values


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


def _announce(events: list[ResultsPosted], zone_id: str, row: Any, batch_id: uuid.UUID, *, inserted: int = 0,
              updated: int = 0) -> None:
    """results.posted for the row's school, year and subject, when the subject is one ezone reviews."""
    if row["subject"] not in _SUBJECTS:
        return
    events.append(ResultsPosted(zone_id=zone_id, school_id=row["school_id"], school_year=row["school_year"],
                           subject=row["subject"], assessment_identifiers=[row["assessment_identifier"]],
                           batch_id=batch_id, source="edfi", rows_inserted=inserted, rows_updated=updated,
                           posted_at=datetime.now(UTC)))


async def _project_enrollment(connection: AsyncConnection, actor: Principal, checked: _Checked, stored: Stored) -> None:
    values = checked.enrollment
    assert values is not None
    params = {"zone_id": actor.zone, "student_id": values.student_id, "school_id": checked.school_id,
              "entry_date": values.entry_date, "school_year": values.school_year, "grade": values.grade,
              "exit_date": values.exit_date, "document_id": stored.id, "batch_id": uuid.uuid4()}
    await connection.execute(text(
        "INSERT INTO results.enrollments (zone_id, student_id, school_id, entry_date, school_year, grade, exit_date,"
        " edfi_document_id, batch_id) VALUES (:zone_id, :student_id, :school_id, :entry_date, :school_year, :grade,"
        " :exit_date, :document_id, :batch_id) ON CONFLICT ON CONSTRAINT uq_enrollments_natural_key DO UPDATE SET"
        " school_year = excluded.school_year, grade = excluded.grade, exit_date = excluded.exit_date,"
        " edfi_document_id = excluded.edfi_document_id, batch_id = excluded.batch_id, updated_at = now()"), params)


async def _enrolled_school(conn: Reader, zone_id: str, values: ResultValues) -> Row[Any] | None:
    """The school the student was enrolled in on the day of the assessment."""
    return (await conn.execute(text(
        "SELECT s.id, s.code, s.name, s.grade_span FROM results.enrollments e JOIN results.schools s ON s.id = e.school_id"
        " WHERE e.zone_id = :z AND e.student_id = :student AND e.entry_date <= :day"
        " AND (e.exit_date IS NULL OR e.exit_date >= :day) ORDER BY e.entry_date DESC LIMIT 1"),
        {"z": zone_id, "student": values.student_id, "day": values.administration_date})).one_or_none()


async def _by_identity(connection: AsyncConnection, zone_id: str, resource: Resource,
                              identity: dict[str, Any], *, lock: bool = True) -> Stored | None:
    row = (await connection.execute(_BY_IDENTITY_FOR_UPDATE if lock else _BY_IDENTITY,
        {"z": zone_id, "r": resource.name, "identity": _json(identity)})).one_or_none()
    return _stored(row) if row is not None else None


async def _insert(connection: AsyncConnection, zone_id: str, checked: _Checked) -> Stored | None:
    row = (await connection.execute(_INSERT_DOCUMENT,
        {"id": uuid.uuid4(), "z": zone_id, "r": checked.resource.name, "identity": _json(checked.identity),
         "document": _json(checked.document), "school_id": checked.school_id,
         "result_key": checked.result.result_key if checked.result else None})).one_or_none()
    return _stored(row) if row is not None else None


async def _by_id(db: AsyncConnection | AsyncSession, zone_id: str, resource: Resource, item_id: str, *,
                 lock: bool = False) -> Stored:
    try:
        parsed = uuid.UUID(item_id)
    except ValueError:
        raise not_found(resource.name, item_id) from None
    row = (await db.execute(text(
        f"SELECT {_COLUMNS} FROM results.edfi_documents WHERE id = :id AND zone_id = :z AND resource = :r"
        + (" FOR UPDATE" if lock else "")), {"id": parsed, "z": zone_id, "r": resource.name})).one_or_none()
    if row is None:
        raise not_found(resource.name, item_id)
    return _stored(row)


async def _refuse_if_referenced(connection: AsyncConnection, zone_id: str, resource: Resource, stored: Stored) -> None:
    """Ed-Fi keeps references whole: an item others refer to is not deleted (409) until they are."""
    for other in RESOURCES.values():
        for reference in other.references:
            if reference.resource != resource.name:
                continue
            key = {field: stored.identity[target] for field, target in reference.fields}
            pattern = {reference.path: key} if reference.collection is None else {reference.collection: [{reference.path: key}]}
            referring = (await connection.execute(text(
                "SELECT count(*) FROM results.edfi_documents WHERE zone_id = :z AND resource = :r"
                " AND document @> CAST(:pattern AS jsonb)"),
                {"z": zone_id, "r": other.name, "pattern": _json(pattern)})).scalar_one()
            if referring:
                raise dependent_items_exist(f"{referring} {other.name} item(s) refer to this {resource.name} item: "
                                            "delete them first.")


def _may_read(actor: Principal, resource: Resource, stored: Stored) -> None:
    if resource.school_bound and stored.school_id is not None and not actor.may_act_for_school(stored.school_id):
        raise authorization_denied(f"The client may not read this {resource.name} item: it belongs to a school the "
                                   "client does not act for.")


def _may_change(actor: Principal, resource: Resource, stored: Stored) -> None:
    if resource.read_only:
        raise _read_only(resource)
    if resource.school_bound and stored.school_id is not None and not actor.may_act_for_school(stored.school_id):
        raise authorization_denied(f"The client may not change this {resource.name} item: it belongs to a school the "
                                   "client does not act for.")


def _may_act_for(actor: Principal, school: Row[Any]) -> None:
    if not actor.may_act_for_school(school.id):
        raise authorization_denied(f"The client may not send data for school {school.code} ({school.name}).")


def _check_etag(stored: Stored, if_match: str | None) -> None:
    if if_match is None:
        return
    wanted = {tag.strip().removeprefix("W/").strip('"') for tag in if_match.split(",")}
    if "*" not in wanted and stored.etag not in wanted:
        raise precondition_failed(f"The item has changed since it was read (its _etag is now {stored.etag}): read it "
                                  "again and apply the change to what it is now.")


def _read_only(resource: Resource) -> Exception:
    return authorization_denied(f"{resource.name} are read-only here: the zone's schools are registered through the "
                                "plans service (POST /zones/{zone}/schools).")


def _grade_not_taught(grade: str, school: Row[Any]) -> str:
    return f"Grade {grade} is not taught at {school.name} ({school.code}, grades {school.grade_span})."


def _school_document(row: Any) -> dict[str, Any]:
    low_high = sorted(grades_in_span(row.grade_span), key=lambda grade: _GRADE_POSITION.get(grade, 99))
    return {
        "id": row.id.hex, "schoolId": int(_state_code(row.code) or 0), "nameOfInstitution": row.name,
        "educationOrganizationCategories": [
            {"educationOrganizationCategoryDescriptor": "uri://ed-fi.org/EducationOrganizationCategoryDescriptor#School"}],
        "gradeLevels": [{"gradeLevelDescriptor": f"uri://ed-fi.org/GradeLevelDescriptor#{_GRADE_NAMES[grade]}"}
                        for grade in low_high],
    }


_GRADE_NAMES = {"PK": "Preschool/Prekindergarten", "K": "Kindergarten", "1": "First grade", "2": "Second grade",
                "3": "Third grade", "4": "Fourth grade", "5": "Fifth grade", "6": "Sixth grade", "7": "Seventh grade",
                "8": "Eighth grade", "9": "Ninth grade", "10": "Tenth grade", "11": "Eleventh grade",
                "12": "Twelfth grade"}
_GRADE_POSITION = {grade: n for n, grade in enumerate(_GRADE_NAMES)}
