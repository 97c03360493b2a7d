"""The Ed-Fi API's work: every resource item is a document kept as its client sent it, under the zone and its
natural key; student data is also made into ezone's own rows, which the review reads.

A write is checked outside any transaction, from caches where it can be (the resource's schema, its descriptor
values, its references, and for student data the assessment's own score ranges and performance levels, the grade
taught at the school, the caller's schools). Then a POST joins the POSTs of other requests waiting to be written
(group commit, `group_commit.py`): one transaction writes the group set-wise (`writes.py`): its documents, the
rows made from them, their audit entries, and one `results.posted` per school, school year and subject the group
changed. PUT and DELETE are a transaction each.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from importlib import resources as package_files
from typing import Any

from ezone_kit.auth import SCHOOL_BOUND_ROLES, Principal
from ezone_kit.problems import Problem
from ezone_kit.service import Kit
from ezone_kit.uow import UnitOfWork
from ezone_schemas import ResultsPostedV2
from sqlalchemy import Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from .assessments import Assessments
from .group_commit import GroupCommit
from .mapping import (
    EnrollmentValues,
    ResultValues,
    enrollment_values,
    grades_in_span,
    result_values,
)
from .openapi_schemas import DESCRIPTOR_RESOURCES
from .problems import (
    authorization_denied,
    data_validation_failed,
    dependent_items_exist,
    not_found,
    precondition_failed,
    unresolved_reference,
    write_conflict,
)
from .reads import LazyConnection, Reader
from .resources import RESOURCES, Resource, references_in
from .validation import Descriptors, schema_errors
from ..announcements import announced
from .referential import referential_id
from .writes import (
    COLUMNS,
    Change,
    NewDocument,
    Stored,
    as_json,
    coalesced,
    existing_documents,
    insert_documents,
    locked_documents,
    project_enrollments,
    project_results,
    stored_from,
    update_documents,
)

_log = logging.getLogger("ezone.results.edfi")

SERVER_FIELDS = ("id", "_etag", "_lastModifiedDate")



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


# How many times a write starts again when concurrent requests changed its item meanwhile.
_ATTEMPTS = 3


class _WriteAlone(Exception):
    """A group that must be written item by item instead."""


def _new_document(actor: Principal, checked: _Checked) -> NewDocument:
    return NewDocument(actor.zone, checked.resource, checked.identity, checked.document, checked.school_id,
                       checked.result.result_key if checked.result else None)


def _audit_entry(change: Change) -> dict[str, Any]:
    stored = change.after or change.before
    assert stored is not None
    action = "deleted" if change.after is None else "updated" if change.before else "created"
    identity = {"before": stored.identity} if change.after is None else {"after": stored.identity}
    return {"actor": change.actor, "action": f"edfi.{change.resource.name}.{action}", "entity": change.resource.name,
            "entity_id": stored.id.hex, "zone_id": change.actor.zone,
            "school_id": str(stored.school_id) if stored.school_id else None, **identity}


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
    resolved: set[uuid.UUID] = field(default_factory=set)  # referential ids of items known to exist
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
                f"SELECT {COLUMNS} FROM results.edfi_documents WHERE {where} ORDER BY position OFFSET :offset LIMIT :limit"),
                {**params, "offset": offset, "limit": limit})
            items = [stored_from(row) for row in rows]
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
        if len(group) > 1:
            try:
                return await self._write_items(group)
            except (Problem, DBAPIError, _WriteAlone) as exc:
                # One item's error that only the database or the rows could tell (another school's result, an
                # identity conflict), the same item twice, a race for a new key, a deadlock with another process:
                # each item is then written on its own, and answered on its own.
                _log.info("An Ed-Fi group of %d items is written item by item: %s", len(group), exc)
        return [await _outcome(self._write_alone(item)) for item in group]

    async def _write_alone(self, item: tuple[Principal, _Checked]) -> Written:
        for _ in range(_ATTEMPTS):
            try:
                [outcome] = await self._write_items([item])
            except _WriteAlone:
                # Created or changed by a concurrent request meanwhile: written again, it starts from that.
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        raise write_conflict(f"The item was changed by other requests {_ATTEMPTS} times while this one was written.")

    async def _write_items(self, items: Sequence[tuple[Principal, _Checked]]) -> list[Written | BaseException]:
        """One transaction: every item's document (created, updated, or left as it is when sent as stored), the rows
        made from them, their audit entries, and one results.posted per school, school year and subject changed.
        An item the caller may not change is answered with its problem and written not at all."""
        outcomes: list[Written | BaseException | None] = [None] * len(items)
        keys = [referential_id(actor.zone, checked.resource.name, checked.identity) for actor, checked in items]
        if len(set(keys)) < len(keys):
            raise _WriteAlone("the same item more than once in the group")
        async with self.kit.unit_of_work() as uow:
            connection = await uow.session.connection()
            before = await existing_documents(connection, keys)
            new: list[int] = []
            changed: list[int] = []
            for n, ((actor, checked), key) in enumerate(zip(items, keys, strict=True)):
                stored = before.get(key)
                if stored is None:
                    new.append(n)
                    continue
                try:
                    _may_change(actor, checked.resource, stored)
                except Problem as problem:
                    outcomes[n] = problem
                    continue
                if stored.document == checked.document and stored.school_id == checked.school_id:
                    outcomes[n] = Written(stored, created=False)  # as sent before: no second effect
                else:
                    changed.append(n)
            locked = await locked_documents(connection, [before[keys[n]].id for n in changed])
            if any(getattr(locked.get(stored.id), "change_version", None) != stored.change_version
                   for stored in (before[keys[n]] for n in changed)):
                raise _WriteAlone("an item was changed by a concurrent request meanwhile")
            created = await insert_documents(connection, [_new_document(*items[n]) for n in new])
            if None in created:
                raise _WriteAlone("an item was created by a concurrent request meanwhile")
            updated = await update_documents(connection, [(before[keys[n]].id, _new_document(*items[n]))
                                                          for n in changed])
            changes: list[Change] = []
            for indexes, written, is_new in ((new, created, True), (changed, updated, False)):
                for n, stored in zip(indexes, written, strict=True):
                    assert stored is not None
                    actor, checked = items[n]
                    outcomes[n] = Written(stored, created=is_new)
                    changes.append(Change(actor, checked.resource, None if is_new else before[keys[n]], stored,
                                          checked.enrollment))
            await self._project(uow, changes)
            await uow.commit()
        for actor, checked in items:
            self._forget(actor.zone, checked.resource, checked.identity)
        return [outcome for outcome in outcomes if outcome is not None]

    async def replace(self, actor: Principal, resource: Resource, item_id: str, body: Any, if_match: str | None) -> Stored:
        """PUT: the item's whole new document; its natural key cannot change."""
        checked = await self._check(actor, resource, body)
        async with self.kit.unit_of_work() as uow:
            stored = await _by_id(uow.session, actor.zone, resource, item_id, lock=True)
            _may_change(actor, resource, stored)
            _check_etag(stored, if_match)
            if stored.identity != checked.identity:
                raise data_validation_failed({"$": [
                    f"The natural key of a {resource.name} item cannot be changed (it is {as_json(stored.identity)}); "
                    "delete it and create the new one."]})
            if stored.document == checked.document and stored.school_id == checked.school_id:
                return stored
            [updated] = await update_documents(await uow.session.connection(),
                                               [(stored.id, _new_document(actor, checked))])
            await self._project(uow, [Change(actor, resource, stored, updated, checked.enrollment)])
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
                {"id": stored.id, "zone_id": actor.zone, "resource": resource.name, "identity": as_json(stored.identity),
                 "school_id": stored.school_id})
            await self._project(uow, [Change(actor, resource, stored, None)])
            await uow.commit()
        self._forget(actor.zone, resource, stored.identity)

    async def _project(self, uow: UnitOfWork, changes: Sequence[Change]) -> None:
        """ezone's rows made from the changed documents, the audit entries, and the results.posted events."""
        connection = await uow.session.connection()
        events: list[ResultsPostedV2] = []
        await project_results(connection, self.assessments,
                              [change for change in changes if change.resource.name == "studentAssessments"],
                              events, uuid.uuid4())
        await project_enrollments(connection,
                                  [change for change in changes if change.resource.name == "studentSchoolAssociations"])
        await uow.audit_many([_audit_entry(change) for change in changes])
        uow.emit(*announced(coalesced(events)))

    def _forget(self, zone_id: str, resource: Resource, identity: dict[str, Any]) -> None:
        if resource.descriptor:
            self.descriptors.forget(zone_id)
        elif resource.name == "assessments":
            self.assessments.forget(zone_id, identity["namespace"], identity["assessmentIdentifier"])
        self.resolved.discard(referential_id(zone_id, resource.name, identity))

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
                identities = [{"namespace": value["namespace"], "codeValue": value["codeValue"]} for _, value in defaults]
                await seeding.execute(text(
                    "INSERT INTO results.edfi_documents (id, referential_id, zone_id, resource, identity, document)"
                    " SELECT gen_random_uuid(), ref, :z, resource, identity, document"
                    " FROM unnest(CAST(:refs AS uuid[]), CAST(:resources AS text[]), CAST(:identities AS jsonb[]),"
                    " CAST(:documents AS jsonb[])) AS d(ref, resource, identity, document) ON CONFLICT DO NOTHING"),
                    {"z": zone_id, "refs": [referential_id(zone_id, name, identity)
                                            for (name, _), identity in zip(defaults, identities, strict=True)],
                     "resources": [name for name, _ in defaults], "identities": [as_json(i) for i in identities],
                     "documents": [as_json(value) for _, value in defaults]})
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
        wanted: dict[uuid.UUID, tuple[str, dict[str, Any], list[str]]] = {}
        for path, reference, key in references_in(resource, document):
            if reference.resource == "schools":
                school = await self.codes.school_of(conn, actor.zone, key["schoolId"])
                if school is None:
                    # Another zone's school is as unknown here as one that does not exist.
                    raise unresolved_reference("School", f"No school with schoolId {key['schoolId']} is registered in "
                                                         f"zone {actor.zone} (at {path}).")
                schools[path] = school
            elif (ref := referential_id(actor.zone, reference.resource, key)) not in self.resolved:
                wanted.setdefault(ref, (reference.resource, key, []))[2].append(path)
        if wanted:
            found = await conn.execute(text("SELECT referential_id FROM results.edfi_documents"
                                            " WHERE referential_id = ANY(CAST(:refs AS uuid[]))"), {"refs": list(wanted)})
            for (ref,) in found:
                self._remember(ref)
                wanted.pop(ref)
            if wanted:
                name, key, paths = next(iter(wanted.values()))
                singular = name[:-1]
                raise unresolved_reference(singular[0].upper() + singular[1:],
                                           f"No {singular} {as_json(key)} in zone {actor.zone} (at {', '.join(paths)});"
                                           f" send it to {name} first.")
        return schools

    def _remember(self, ref: uuid.UUID) -> None:
        if len(self.resolved) > 200_000:
            self.resolved.clear()
        self.resolved.add(ref)

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


async def _outcome(write: Awaitable[Written]) -> Written | BaseException:
    try:
        return await write
    except Exception as exc:  # noqa: BLE001 - the item's own answer
        return exc


async def _enrolled_school(conn: Reader, zone_id: str, values: ResultValues) -> Row[Any] | None:
    """The school the student was enrolled in on the day of the assessment."""
    return (await conn.execute(text(
        "SELECT s.id, s.code, s.name, s.grade_span FROM results.enrollments e JOIN results.schools s ON s.id = e.school_id"
        " WHERE e.zone_id = :z AND e.student_id = :student AND e.entry_date <= :day"
        " AND (e.exit_date IS NULL OR e.exit_date >= :day) ORDER BY e.entry_date DESC LIMIT 1"),
        {"z": zone_id, "student": values.student_id, "day": values.administration_date})).one_or_none()


async def _by_id(db: AsyncConnection | AsyncSession, zone_id: str, resource: Resource, item_id: str, *,
                 lock: bool = False) -> Stored:
    try:
        parsed = uuid.UUID(item_id)
    except ValueError:
        raise not_found(resource.name, item_id) from None
    row = (await db.execute(text(
        f"SELECT {COLUMNS} FROM results.edfi_documents WHERE id = :id AND zone_id = :z AND resource = :r"
        + (" FOR UPDATE" if lock else "")), {"id": parsed, "z": zone_id, "r": resource.name})).one_or_none()
    if row is None:
        raise not_found(resource.name, item_id)
    return stored_from(row)


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
                {"z": zone_id, "r": other.name, "pattern": as_json(pattern)})).scalar_one()
            if referring:
                raise dependent_items_exist(f"{referring} {other.name} item(s) refer to this {resource.name} item: "
                                            "delete them first.")
    if resource.descriptor:
        # A descriptor is referred to by its URI (namespace#codeValue) as a value, wherever a document uses it.
        uri = f"{stored.identity['namespace']}#{stored.identity['codeValue']}"
        users = (await connection.execute(_DESCRIPTOR_USERS, {"z": zone_id, "uri": uri})).all()
        if users:
            named = ", ".join(f"{count} {name}" for name, count in users)
            raise dependent_items_exist(f"{named} item(s) use the descriptor {uri}: change or delete them first.")


_DESCRIPTOR_USERS = text(
    "SELECT resource, count(*) FROM results.edfi_documents WHERE zone_id = :z"
    " AND jsonb_path_exists(document, '$.** ? (@ == $uri)', jsonb_build_object('uri', CAST(:uri AS text)))"
    " GROUP BY resource ORDER BY resource")


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
