"""Ingest use cases: a JSON batch of results or enrollments, a streamed CSV file of results, a batch's status.

Every path ends the same way: one transaction stores the rows (bulk upsert), the batch record, the audit
entry and the `results.posted` events — one per school, school year and subject the batch changed.
"""

from __future__ import annotations

import contextlib
import gc
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ezone_kit.auth import SCHOOL_BOUND_ROLES, Principal
from ezone_kit.idempotency import request_digest
from ezone_kit.problems import TYPE_BASE, Problem, validation_problem
from ezone_kit.service import Kit
from ezone_kit.uow import UnitOfWork
from ezone_schemas import Event, ResultsPostedV2
import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..announcements import announced
from ..edfi.mapping import grades_in_span
from ..groups import vocabulary
from ..models import IngestBatch, StudentResult
from .bulk import ENROLLMENTS, RESULTS, Change, HeldByOtherSchools, Staging, Target, UpsertCounts, upsert_rows
from .columns import CheckedRows, check_rows
from .csvstream import CsvFormatError, csv_records
from .schemas import (
    MAX_ROWS,
    BatchSummary,
    EnrollmentBatchIn,
    EnrollmentRow,
    IngestRow,
    ResultBatchIn,
    ResultRow,
    RowError,
    ZoneSchool,
    ZoneSchools,
    foreign_rows,
    known_groups,
    parse_row,
)

CSV_CHUNK_ROWS = 5_000
MAX_LISTED_ERRORS = 1_000  # a CSV batch lists its first errors and counts the rest


# ---- storing rows: what every ingest path (JSON, CSV, Ed-Fi) shares ----

def school_scope(principal: Principal) -> frozenset[uuid.UUID] | None:
    """The schools a school-bound caller acts for; None: the whole zone."""
    return frozenset(map(uuid.UUID, principal.schools)) if principal.role in SCHOOL_BOUND_ROLES else None


# One row of arrays, not a row per school: a zone of 100 schools cost a request ~0.3 ms more as rows.
_ZONE_SCHOOLS = text("SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(code), '{}'),"
                     " coalesce(array_agg(name), '{}'), coalesce(array_agg(grade_span), '{}')"
                     " FROM results.schools WHERE zone_id = :zone_id")


async def zone_schools(session: AsyncSession, zone_id: str) -> dict[uuid.UUID, ZoneSchool]:
    """The zone's schools and the grades each teaches, as the directory projection knows them."""
    ids, codes, names, spans = (await session.execute(_ZONE_SCHOOLS, {"zone_id": zone_id})).one()
    return {school_id: ZoneSchool(code, name, span, grades_in_span(span))
            for school_id, code, name, span in zip(ids, codes, names, spans, strict=True)}


def new_batch(session: AsyncSession, zone_id: str, source: str, submitted_by: str, *, rows_received: int = 0) -> IngestBatch:
    batch = IngestBatch(id=uuid.uuid4(), zone_id=zone_id, source=source, status="processing", submitted_by=submitted_by,
                        rows_received=rows_received, rows_inserted=0, rows_updated=0, rows_unchanged=0, rows_rejected=0,
                        errors=[], created_at=datetime.now(UTC))
    session.add(batch)
    return batch


def complete_batch(batch: IngestBatch, counts: UpsertCounts, rejected: int, errors: list[RowError]) -> None:
    batch.status = "completed"
    batch.rows_inserted, batch.rows_updated, batch.rows_unchanged = counts.inserted, counts.updated, counts.unchanged
    batch.rows_rejected = rejected
    batch.errors = errors
    batch.completed_at = datetime.now(UTC)


def results_posted(zone_id: str, batch_id: uuid.UUID, source: str, changes: Iterable[Change]) -> list[Event]:
    """One announcement per school, school year and subject with changed results (not one per row)."""
    groups: dict[tuple[uuid.UUID, str, str], list[Any]] = {}
    for change in changes:
        group = groups.setdefault((change.school_id, change.school_year, change.subject), [set(), 0, 0])
        group[0].add(change.assessment_identifier)
        group[1] += change.inserted
        group[2] += change.updated
    now = datetime.now(UTC)
    return announced(
        ResultsPostedV2(zone_id=zone_id, school_id=school_id, school_year=school_year, subject=subject,
                        assessment_identifiers=sorted(identifiers - {None}), batch_id=batch_id, source=source,
                        rows_inserted=inserted, rows_updated=updated, posted_at=now)
        for (school_id, school_year, subject), (identifiers, inserted, updated) in sorted(groups.items(), key=str)
    )


async def store_results(uow: UnitOfWork, zone_id: str, batch_id: uuid.UUID, source: str, rows: CheckedRows, *,
                        schools: Collection[uuid.UUID] | None = None) -> UpsertCounts:
    """Upsert checked results (see `upsert_rows`) and queue `results.posted` for what changed; the caller commits
    the unit of work."""
    counts = await upsert_rows(uow.session, RESULTS, zone_id, batch_id, rows, schools=schools)
    uow.emit(*results_posted(zone_id, batch_id, source, counts.changes))
    return counts


async def store_enrollments(uow: UnitOfWork, zone_id: str, batch_id: uuid.UUID, source: str, rows: CheckedRows) -> UpsertCounts:
    """Upsert checked enrollments (see `upsert_rows`); the caller commits the unit of work.

    Enrollments are participation's denominator. Results usually arrive once a year, often before the enrollment
    snapshot, so a review that waited for the next results would keep a wrong participation rate (and its integrity
    flag) all year. An enrollment change therefore re-reviews every subject already having results for that school
    and year: `results.posted` with no assessments and no result rows. Where no results are stored yet there is
    nothing to re-review; the first results will count these enrollments."""
    counts = await upsert_rows(uow.session, ENROLLMENTS, zone_id, batch_id, rows)
    touched = {(change.school_id, change.school_year) for change in counts.changes}
    if touched:
        subjects = await uow.session.execute(
            select(StudentResult.school_id, StudentResult.school_year, StudentResult.subject).distinct()
            .where(StudentResult.zone_id == zone_id, tuple_(StudentResult.school_id, StudentResult.school_year).in_(list(touched)))
        )
        uow.emit(*results_posted(zone_id, batch_id, source,
                                 (Change(school_id, year, subject, None, 0, 0) for school_id, year, subject in subjects)))
    return counts


# ---- JSON batches ----

@dataclass(frozen=True)
class RowKind:
    name: str  # results | enrollments
    model: type[IngestRow]
    body: type[BaseModel]  # the request body: {"rows": [...]}
    target: Target


RESULT_ROWS = RowKind("results", ResultRow, ResultBatchIn, RESULTS)
ENROLLMENT_ROWS = RowKind("enrollments", EnrollmentRow, EnrollmentBatchIn, ENROLLMENTS)


async def post_batch(uow: UnitOfWork, principal: Principal, zone_id: str, kind: RowKind, body: bytes, *,
                     partial: bool, idempotency_key: str | None) -> tuple[BatchSummary, bool]:
    """Store a JSON batch (the request body as sent); the summary, and False when it answers a re-sent
    Idempotency-Key (nothing done again).

    All or nothing unless `partial`: one invalid row and nothing is stored, every invalid row listed at once."""
    schools, groups = await zone_schools(uow.session, zone_id), await vocabulary.codes(uow.session)
    with known_groups(groups):
        received = _read_batch(kind, body, principal, zone_id, schools, partial=partial, keyed=idempotency_key is not None)
    scope = f"{kind.name}.post/{zone_id}/{principal.subject}"
    if idempotency_key is not None:
        replay = await uow.idempotency.claim(uow.session, scope, idempotency_key, received.digest)
        if replay is not None:
            return await get_batch(uow.session, principal, zone_id, uuid.UUID(replay.resource_id)), False
    checked = received.checked
    # Partial or not, a batch of which no row is valid stores nothing: it is refused, not a 201 of nothing.
    if checked.errors and (not partial or not checked.numbers):
        raise _invalid_rows(checked.errors, received.rows, partial=partial)
    batch = new_batch(uow.session, zone_id, "json", principal.subject, rows_received=received.rows)
    # The batch row is written once, complete, with the next statement after it (not inserted, then updated).
    with uow.session.no_autoflush:
        if kind is ENROLLMENT_ROWS:
            counts = await store_enrollments(uow, zone_id, batch.id, "json", checked)
        else:
            try:
                counts = await store_results(uow, zone_id, batch.id, "json", checked, schools=school_scope(principal))
            except HeldByOtherSchools as exc:
                raise _forbidden_rows([number for number, _ in exc.rows], held=True) from None
        complete_batch(batch, counts, received.rows - len(checked.numbers), checked.errors)
    await _audit(uow, principal, batch, kind.name)
    if idempotency_key is not None:
        await uow.idempotency.record(uow.session, scope, idempotency_key, str(batch.id))
    await uow.commit()
    return summary(batch), True


@dataclass(frozen=True)
class _ReceivedBatch:
    rows: int
    checked: CheckedRows
    digest: str | None  # of the rows and `partial`, for an Idempotency-Key


def _read_batch(kind: RowKind, body: bytes, principal: Principal, zone_id: str, known_schools: ZoneSchools, *,
                partial: bool, keyed: bool) -> _ReceivedBatch:
    """The body parsed and its rows checked, in one step the garbage collector sits out; in order: the body, the
    number of rows, schools the token does not act for, then the rows themselves.

    A parsed row is two objects the collector tracks (a dict, its subgroups list). Left to live through the request,
    a batch's 10,000 would be walked by young collections, then promoted, and every few batches make the collector
    walk the whole heap: 15-30 % of the requests' time in benchmark runs. Here they die, held by nothing once the
    rows are checked and encoded, before any collection sees them."""
    with _collector_paused():
        try:
            rows = _rows_of(kind, orjson.loads(body))
        except orjson.JSONDecodeError as exc:
            raise validation_problem([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": exc.msg}]) from None
        except ValidationError as exc:
            raise validation_problem([{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]) from None
        if len(rows) > MAX_ROWS:
            raise Problem(413, f"A batch holds at most {MAX_ROWS:,} rows; this one has {len(rows):,}. Split it, or upload "
                               f"the rows as a CSV file (POST /zones/{zone_id}/results/csv), which has no limit.")
        forbidden = foreign_rows(rows, principal.may_act_for_school)
        if forbidden:
            raise _forbidden_rows(forbidden)
        digest = request_digest({"rows": rows, "partial": partial}) if keyed else None
        return _ReceivedBatch(len(rows), check_rows(kind.model, rows, known_schools, group_by=kind.target.report), digest)


def _rows_of(kind: RowKind, body: Any) -> list[Any]:
    """The rows of a body `{"rows": [...]}`; any other body is left to its model to say what is wrong with it."""
    if type(body) is dict and body.keys() == {"rows"} and type(body["rows"]) is list and body["rows"]:
        return body["rows"]  # as the model would answer, without walking the rows
    return kind.body.model_validate(body).rows


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _forbidden_rows(rows: list[int], *, held: bool = False) -> Problem:
    listed = ", ".join(map(str, rows[:20])) + (", ..." if len(rows) > 20 else "")
    one = len(rows) == 1
    schools = "a school" if one else "schools"
    what = f"would change results stored for {schools}" if held else f"{'is' if one else 'are'} for {schools}"
    return Problem(403, f"{'Row' if one else 'Rows'} {listed} {what} your token does not act for; nothing was stored. "
                        "Send them with a token that acts for those schools.", rows=rows)


def _invalid_rows(errors: list[RowError], received: int, *, partial: bool = False) -> Problem:
    rows = sorted({error["row"] for error in errors})
    listed = ", ".join(map(str, rows[:20])) + (", ..." if len(rows) > 20 else "")
    then = "send the batch again." if partial else \
        "send the batch again, or send it with partial=true to store the valid rows."
    return Problem(422, f"{len(rows):,} of {received:,} rows are invalid (rows {listed}); nothing was stored. Fix them and "
                        f"{then}", type=f"{TYPE_BASE}validation", title="Invalid request", errors=errors)


async def _audit(uow: UnitOfWork, principal: Principal, batch: IngestBatch, kind: str) -> None:
    if batch.rows_inserted or batch.rows_updated:  # a batch that changed nothing changed no state worth auditing
        await uow.audit(actor=principal, action=f"{kind}.posted", entity="ingest_batch", entity_id=str(batch.id),
                        zone_id=batch.zone_id, after={"source": batch.source, "inserted": batch.rows_inserted,
                                                      "updated": batch.rows_updated, "rejected": batch.rows_rejected})


# ---- streamed CSV ----

class _Rejections:
    """Rejected rows: all counted, the first MAX_LISTED_ERRORS errors kept."""

    def __init__(self) -> None:
        self.rows = 0
        self.errors: list[RowError] = []

    def add(self, errors: list[RowError], rows: int = 1) -> None:
        self.rows += rows
        self.errors.extend(errors[:MAX_LISTED_ERRORS - len(self.errors)])

    @property
    def room(self) -> int:
        return MAX_LISTED_ERRORS - len(self.errors)


async def upload_results_csv(kit: Kit, principal: Principal, zone_id: str, body: AsyncIterable[bytes]) -> BatchSummary:
    """Stream a CSV file of results into a staging table, then store its valid rows in one transaction.

    Always partial: a file is too big to send again for one bad row, so invalid rows (and, for a school-bound
    token, rows of other schools) are listed and the rest stored. Rows are staged in chunks of CSV_CHUNK_ROWS,
    each in its own short transaction that also records the progress `GET /zones/{zone}/batches/{id}` shows;
    nothing reaches student_results before the whole file has arrived, so an interrupted upload stores nothing."""
    records = csv_records(body)
    header = await _csv_header(records)
    async with kit.sessions() as session:
        known_schools, groups = await zone_schools(session, zone_id), await vocabulary.codes(session)
    # One connection throughout: the staging table is temporary, so it lives in this database session.
    async with kit.engine.connect() as connection:
        upload = _CsvUpload(kit, principal, zone_id, header, known_schools, Staging(connection, RESULTS, preserve=True))
        await upload.open()
        try:
            with known_groups(groups):
                await upload.stage(records)
            return await upload.store()
        except CsvFormatError as exc:
            await upload.fail(exc.line, exc.reason)
            raise Problem(422, f"The file cannot be read past line {exc.line}: {exc.reason}. Nothing was stored.",
                          type=f"{TYPE_BASE}validation", title="Invalid file", batch_id=str(upload.batch_id),
                          errors=[{"row": exc.line, "field": None, "reason": exc.reason}]) from None
        except BaseException as exc:  # a client that went away, a cancelled request, a database failure
            await upload.fail(None, f"the upload stopped ({type(exc).__name__})")
            raise


async def _csv_header(records: AsyncIterator[tuple[int, list[str]]]) -> list[str]:
    """The column names of the first non-blank line: the fields of a result row."""
    try:
        fields: list[str] = []
        while not fields:
            _, fields = await anext(records)
    except StopAsyncIteration:
        raise Problem(422, "The file is empty; send a header line naming the columns, then the rows.",
                      type=f"{TYPE_BASE}validation", title="Invalid file") from None
    except CsvFormatError as exc:
        raise Problem(422, f"The file cannot be read at line {exc.line}: {exc.reason}.",
                      type=f"{TYPE_BASE}validation", title="Invalid file") from None
    header = [name.strip().lower() for name in fields]
    known = ResultRow.model_fields
    problems = [
        *(f"unknown column {name!r}" for name in header if name not in known),
        *(f"missing column {name!r}" for name, field in known.items() if field.is_required() and name not in header),
        *(f"column {name!r} appears twice" for name in sorted({name for name in header if header.count(name) > 1})),
    ]
    if problems:
        raise Problem(422, f"The header line must name the columns of a result row: {'; '.join(problems)}. "
                           f"The columns are {', '.join(known)}.", type=f"{TYPE_BASE}validation", title="Invalid file",
                      errors=[{"row": 1, "field": None, "reason": problem} for problem in problems])
    return header


class _CsvUpload:
    def __init__(self, kit: Kit, principal: Principal, zone_id: str, header: list[str], known_schools: ZoneSchools,
                 staging: Staging) -> None:
        self.kit = kit
        self.principal = principal
        self.zone_id = zone_id
        self.header = header
        self.known_schools = known_schools
        self.allowed = school_scope(principal)
        self.staging = staging
        self.connection = staging.connection
        self.batch_id = uuid.uuid4()
        self.received = 0
        self.rejections = _Rejections()

    async def open(self) -> None:
        async with self.connection.begin():
            await self.connection.execute(IngestBatch.__table__.insert().values(
                id=self.batch_id, zone_id=self.zone_id, source="csv", status="receiving", submitted_by=self.principal.subject))
            await self.staging.create()

    async def stage(self, records: AsyncIterator[tuple[int, list[str]]]) -> None:
        chunk: list[tuple[int, ResultRow]] = []
        async for line, fields in records:
            if not fields:
                continue  # a blank line
            self.received += 1
            row, errors = self._row(line, fields)
            if row is None:
                self.rejections.add(errors)
                continue
            chunk.append((line, row))
            if len(chunk) == CSV_CHUNK_ROWS:
                await self._stage(chunk, "receiving")
                chunk = []
        await self._stage(chunk, "processing")

    def _row(self, line: int, fields: list[str]) -> tuple[ResultRow | None, list[RowError]]:
        if len(fields) != len(self.header):
            return None, [{"row": line, "field": None, "reason": f"{len(fields)} fields; the header names {len(self.header)}"}]
        # An empty cell is a field left out (its default applies), as in a JSON row without it.
        raw = {name: value for name, value in zip(self.header, fields) if value != ""}
        row, errors = parse_row(ResultRow, raw, line, self.known_schools)
        if row is not None and self.allowed is not None and row.school_id not in self.allowed:
            return None, [{"row": line, "field": "school_id", "reason": f"your token does not act for school {row.school_id}"}]
        return row, errors

    async def _stage(self, chunk: list[tuple[int, ResultRow]], status: str) -> None:
        async with self.connection.begin():
            await self.connection.execute(update(IngestBatch).where(IngestBatch.id == self.batch_id).values(
                rows_received=self.received, rows_rejected=self.rejections.rows, status=status))
            await self.staging.copy(chunk)

    async def store(self) -> BatchSummary:
        # control_fully: the unit of work commits the connection's transaction whichever statement began it.
        sessions = async_sessionmaker(bind=self.connection, expire_on_commit=False, join_transaction_mode="control_fully")
        async with UnitOfWork(sessions, self.kit.outbox, self.kit.audit, self.kit.idempotency) as uow:
            await self._reject_staged()
            counts = await self.staging.upsert(self.zone_id, self.batch_id)
            uow.emit(*results_posted(self.zone_id, self.batch_id, "csv", counts.changes))
            batch = await uow.session.get_one(IngestBatch, self.batch_id)
            complete_batch(batch, counts, self.rejections.rows, sorted(self.rejections.errors, key=lambda e: e["row"]))
            await _audit(uow, self.principal, batch, "results")
            await self.staging.drop()
            await uow.commit()
            return summary(batch)

    async def _reject_staged(self) -> None:
        """What only the whole file shows: a natural key an earlier line already has (the first is kept, as in a
        JSON batch), and a school-bound caller's rows whose result is stored for another school."""
        rejections = self.rejections
        count, duplicates = await self.staging.discard_duplicates(rejections.room)
        rejections.add([{"row": line, "field": None, "reason": f"the same natural key as line {first}"}
                        for line, first in duplicates], rows=count)
        if self.allowed is not None:
            count, held = await self.staging.discard_held_by_other_schools(self.zone_id, self.allowed, rejections.room)
            rejections.add([{"row": line, "field": "school_id", "reason": f"this result is stored for school {school}, "
                             "which your token does not act for"} for line, school in held], rows=count)

    async def fail(self, line: int | None, reason: str) -> None:
        # The connection may be broken or inside a failed transaction; dropping it drops the staging table too.
        await self.connection.invalidate()
        async with self.kit.sessions() as session:
            await session.execute(update(IngestBatch).where(IngestBatch.id == self.batch_id).values(
                status="failed", rows_received=self.received, rows_rejected=self.rejections.rows,
                completed_at=datetime.now(UTC), errors=[*self.rejections.errors, {"row": line, "field": None, "reason": reason}]))
            await session.commit()


# ---- batches ----

async def get_batch(session: AsyncSession, principal: Principal, zone_id: str, batch_id: uuid.UUID) -> BatchSummary:
    batch = await session.get(IngestBatch, batch_id)
    if batch is None or batch.zone_id != zone_id:
        raise Problem(404, f"Batch {batch_id} was not found in zone {zone_id!r}.")
    if principal.role in SCHOOL_BOUND_ROLES and batch.submitted_by != principal.subject:
        raise Problem(403, "This batch was submitted by someone else; an SIS sees only its own batches.")
    return summary(batch)


async def list_batches(session: AsyncSession, principal: Principal, zone_id: str, status: str | None, limit: int) -> list[BatchSummary]:
    query = select(IngestBatch).where(IngestBatch.zone_id == zone_id).order_by(IngestBatch.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(IngestBatch.status == status)
    if principal.role in SCHOOL_BOUND_ROLES:
        query = query.where(IngestBatch.submitted_by == principal.subject)
    return [summary(batch) for batch in (await session.execute(query)).scalars()]


def summary(batch: IngestBatch) -> BatchSummary:
    return BatchSummary(
        batch_id=batch.id, zone_id=batch.zone_id, source=batch.source, status=batch.status, rows_received=batch.rows_received,
        inserted=batch.rows_inserted, updated=batch.rows_updated, unchanged=batch.rows_unchanged, rejected=batch.rows_rejected,
        errors=batch.errors, changed=bool(batch.rows_inserted or batch.rows_updated), message=_message(batch),
        created_at=batch.created_at, completed_at=batch.completed_at,
    )


def _rows(count: int) -> str:
    return f"{count:,} row" + ("" if count == 1 else "s")


def _message(batch: IngestBatch) -> str:
    if batch.status == "receiving":
        return f"receiving: {_rows(batch.rows_received)} so far"
    if batch.status == "processing":
        return f"storing {_rows(batch.rows_received)}"
    if batch.status == "failed":
        return f"failed after {_rows(batch.rows_received)}: {batch.errors[-1]['reason']}; nothing was stored"
    stored = batch.rows_inserted + batch.rows_updated + batch.rows_unchanged
    rejected = f"; {_rows(batch.rows_rejected)} rejected" if batch.rows_rejected else ""
    if batch.rows_inserted or batch.rows_updated:
        return f"{batch.rows_inserted:,} inserted, {batch.rows_updated:,} updated, {batch.rows_unchanged:,} unchanged{rejected}"
    if not stored:
        return f"nothing stored: {'the row was' if batch.rows_rejected == 1 else f'all {batch.rows_rejected:,} rows were'} rejected"
    already = "the row was" if stored == 1 else (f"all {stored:,} rows were" if not batch.rows_rejected else f"{stored:,} rows were")
    return f"nothing changed: {already} already stored{rejected}"
