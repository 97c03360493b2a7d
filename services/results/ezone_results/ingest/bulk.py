"""The fast path: ONE statement moves a batch's rows in, from a JSON document or a staging table.

Row-by-row ORM inserts cost a round trip and a flush per row. A JSON batch's checked rows go to PostgreSQL as one
JSON document (an array of rows, each an array of values) that the statement reads and casts itself: encoding it
costs well under 1 µs a row in Python, where binary COPY of the same rows spends ~8 µs a row in Python codecs, and
reading it costs the server ~3 µs a row. A streamed CSV file, never held whole, is COPYed into a staging table
chunk by chunk.

The upsert compares each row with what is stored (`IS DISTINCT FROM`), so a re-sent row changes nothing, and it
answers per school, school year, subject and assessment how many rows it inserted or corrected — what
`results.posted` needs, without returning every row. `RETURNING old.…` (PostgreSQL 18) tells a new row from a
corrected one, and what a corrected row was: a row moved to another school or subject reports its old one too, and
a school-bound caller's row that would take over another school's result is found by the same statement. A batch
whose rows are all new is inserted without ON CONFLICT (see `upsert_rows`).

Everything runs on the caller's connection, inside the caller's transaction: the rows commit with the batch
record and the events, or not at all.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, Table, TextClause, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ..models import Enrollment, StudentResult
from .columns import CheckedRows
from .schemas import EnrollmentRow, IngestRow, ResultRow


UNIQUE_VIOLATION = "23505"  # SQLSTATE


@dataclass(frozen=True)
class Target:
    """A table rows are upserted into, and how a change in it is reported."""

    table: Table
    constraint: str  # the natural key's unique constraint (with zone_id first)
    key: tuple[str, ...]  # the natural key's columns besides zone_id
    columns: tuple[str, ...]  # the columns a row carries, in its model's field order
    # What a change is reported by: school_id, school_year, and for results subject and assessment_identifier.
    report: tuple[str, ...]
    keep_when_absent: tuple[str, ...] = ()  # columns a row without a value leaves as they are

    @property
    def moves(self) -> tuple[str, ...]:
        """Reported columns outside the natural key: a row that changes them leaves its old school (or subject)."""
        return tuple(c for c in self.report if c not in self.key)

    def sql_type(self, column: str) -> str:
        return self.table.c[column].type.compile(dialect=_POSTGRESQL)


_POSTGRESQL = postgresql.dialect()  # building a dialect costs more than compiling a type name with it

RESULTS = Target(
    table=StudentResult.__table__,
    constraint="uq_student_results_natural_key",
    key=ResultRow.NATURAL_KEY,
    columns=tuple(ResultRow.model_fields),
    report=("school_id", "school_year", "subject", "assessment_identifier"),
    # An Ed-Fi identifier, once known, stays when the same result comes again by another path without one.
    keep_when_absent=("edfi_identifier",),
)
ENROLLMENTS = Target(
    table=Enrollment.__table__,
    constraint="uq_enrollments_natural_key",
    key=EnrollmentRow.NATURAL_KEY,
    columns=tuple(EnrollmentRow.model_fields),
    report=("school_id", "school_year"),
)


@dataclass(frozen=True)
class Change:
    """Rows of one school, school year (and, for results, subject and assessment) that a batch changed."""

    school_id: uuid.UUID
    school_year: str
    subject: str | None
    assessment_identifier: str | None
    inserted: int
    updated: int  # corrected, or moved from here to another school or subject


@dataclass(frozen=True)
class UpsertCounts:
    staged: int
    inserted: int
    updated: int
    changes: tuple[Change, ...]

    @property
    def unchanged(self) -> int:
        return self.staged - self.inserted - self.updated

    @property
    def changed(self) -> bool:
        return bool(self.changes)


class HeldByOtherSchools(Exception):
    """Rows whose natural key is stored for a school the caller may not act for: (row number, that school)."""

    def __init__(self, rows: list[tuple[int, uuid.UUID]]) -> None:
        super().__init__(f"{len(rows)} row(s) would change results of other schools")
        self.rows = rows


_PLANNED_EACH_TIME = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def upsert_rows(session: AsyncSession, target: Target, zone_id: str, batch_id: uuid.UUID, rows: CheckedRows, *,
                      schools: Collection[uuid.UUID] | None = None) -> UpsertCounts:
    """Insert new rows, correct changed ones, leave identical ones alone — in the session's transaction.

    `rows` are checked (`columns.check_rows`), with distinct natural keys. With `schools` (a school-bound caller's),
    a row whose result is stored for another school raises `HeldByOtherSchools`, and nothing the statement wrote
    stays.

    A batch of new rows — a school year's results sent the first time — is inserted without ON CONFLICT, which
    costs PostgreSQL a second look into the natural key's index for every row and the RETURNING that tells new rows
    from corrected ones (measured: ~1.5 times the server CPU of a plain insert). New means that none of its sample
    rows is stored; if a row is stored after all (the sample missed it, or another batch stored it meanwhile), the
    insert fails on the natural key, is rolled back to its savepoint, and the upsert does the work."""
    params = {"zone_id": zone_id, "batch_id": batch_id, "rows": rows.document.decode()}
    source = _json_rows(target, "rows")
    insert_statement, upsert_statement = _json_batch_statements(target)
    # Savepoints of the connection, not the session: the session's would flush first, writing the caller's pending
    # rows (a JSON batch's ingest_batches row) before they are complete, then updating them.
    connection = await session.connection()
    # Planned for the table as it is now, each time: a connection's prepared statements otherwise keep a generic plan
    # made while the table was small, and a key probe that scanned a few rows then scans the whole table a bulk load
    # has since written (measured: 3 full scans a request, PostgreSQL's CPU a row tripled).
    await session.execute(_PLANNED_EACH_TIME)
    if not await _any_stored(session, target, zone_id, rows.sample):
        try:
            async with connection.begin_nested():
                await connection.execute(insert_statement, params)
        except IntegrityError as exc:
            if getattr(exc.orig, "sqlstate", None) != UNIQUE_VIOLATION:
                raise
        else:
            changes = [_change(target, group, inserted, 0) for group, inserted in rows.groups.items()]
            return UpsertCounts(len(rows.numbers), len(rows.numbers), 0, tuple(sorted(changes, key=_by_group)))
    if schools is None:
        counts, _ = _counts(target, len(rows.numbers), await session.execute(upsert_statement, params))
        return counts
    savepoint = await connection.begin_nested()
    counts, corrected_from = _counts(target, len(rows.numbers), await connection.execute(upsert_statement, params))
    if not corrected_from <= set(schools):
        await savepoint.rollback()
        held = await session.execute(
            text(f"SELECT s.position, t.school_id FROM {source} s JOIN {_qualified(target.table)} t"
                 f" ON t.zone_id = :zone_id AND {_same_key(target)} WHERE t.school_id <> ALL(:schools) ORDER BY 1"),
            {**params, "schools": list(schools)})
        raise HeldByOtherSchools([(rows.numbers[position - 1], school) for position, school in held])
    await savepoint.commit()
    return counts


async def _any_stored(session: AsyncSession, target: Target, zone_id: str, sample: bytes) -> bool:
    """Whether a row with the natural key of one of the sample rows is stored."""
    # A subquery per sample row, so each is a lookup in the natural key's index: as a join, the planner may hash the
    # zone's whole table when its statistics are older than its rows.
    found = await session.execute(_any_stored_statement(target), {"zone_id": zone_id, "sample": sample.decode()})
    return found.scalar_one()


# A JSON batch's statements are the same text for every batch of a target: built, and their text parsed, once.
@functools.cache
def _any_stored_statement(target: Target) -> TextClause:
    return text(f"SELECT coalesce(bool_or(EXISTS (SELECT FROM {_qualified(target.table)} t"
                f" WHERE t.zone_id = :zone_id AND {_same_key(target)})), false) FROM {_json_rows(target, 'sample')} s")


@functools.cache
def _json_batch_statements(target: Target) -> tuple[TextClause, TextClause]:
    """(insert, upsert) of a JSON batch's rows."""
    source = _json_rows(target, "rows")
    return text(_insert_statement(target, source)), text(_upsert_statement(target, source))


@functools.cache
def _json_rows(target: Target, parameter: str) -> str:
    """The rows of a JSON document (the parameter) as a relation of the target's columns, and each row's position
    (from 1)."""
    casts = ", ".join(f"CAST(r ->> {i} AS {target.sql_type(c)}) AS {c}" for i, c in enumerate(target.columns))
    return (f"(SELECT {casts}, position FROM jsonb_array_elements(CAST(:{parameter} AS jsonb))"
            " WITH ORDINALITY AS e(r, position))")


class Staging:
    """A temporary table of rows for one target: the row's number in its file, and the target's columns.

    `preserve=False` (one transaction): dropped at commit. `preserve=True` (a streamed upload, a transaction per
    chunk): kept until `drop()` or the end of the database session, so the caller must hold one connection."""

    def __init__(self, connection: AsyncConnection, target: Target, *, preserve: bool = False) -> None:
        self.connection = connection
        self.target = target
        self.preserve = preserve
        self.name = f"ingest_{uuid.uuid4().hex}"
        self.rows = 0

    async def create(self) -> None:
        columns = ", ".join(f"{name} {self.target.sql_type(name)}" for name in self.target.columns)
        on_commit = "PRESERVE ROWS" if self.preserve else "DROP"
        await self.connection.execute(text(f"CREATE TEMP TABLE {self.name} (source_row integer NOT NULL, {columns}) ON COMMIT {on_commit}"))

    async def copy(self, rows: Iterable[tuple[int, IngestRow]]) -> int:
        driver = (await self.connection.get_raw_connection()).driver_connection
        # SQLAlchemy begins its transaction lazily, at its first statement; COPY on the driver before that would
        # run outside it (autocommit). Every caller has executed a statement first (create, or a progress update).
        assert driver.is_in_transaction(), "COPY must run inside the caller's transaction"
        columns = self.target.columns
        records = [(number, *map(row.__dict__.__getitem__, columns)) for number, row in rows]
        await driver.copy_records_to_table(self.name, records=records, columns=("source_row", *columns))
        self.rows += len(records)
        return len(records)

    def _joined(self) -> str:
        """The staged rows with the stored row of the same natural key."""
        return f"{self.name} s JOIN {_qualified(self.target.table)} t ON t.zone_id = :zone_id AND {_same_key(self.target)}"

    async def discard_duplicates(self, limit: int) -> tuple[int, list[tuple[int, int]]]:
        """Remove every row whose natural key an earlier row has; how many, and the first `limit` of them as
        (row number, the earlier row's number)."""
        key = ", ".join(self.target.key)
        count, listed = await self._discard(
            f"ranked AS (SELECT source_row, min(source_row) OVER (PARTITION BY {key}) AS first FROM {self.name}),"
            f" gone(n, other) AS (DELETE FROM {self.name} s USING ranked r"
            f" WHERE s.source_row = r.source_row AND r.source_row <> r.first RETURNING r.source_row, r.first)",
            limit, {})
        return count, [(n, int(first)) for n, first in listed]

    async def discard_held_by_other_schools(self, zone_id: str, schools: Collection[uuid.UUID], limit: int
                                            ) -> tuple[int, list[tuple[int, uuid.UUID]]]:
        """Remove every row whose stored result belongs to a school not in `schools`; how many, and the first
        `limit` of them as (row number, that school)."""
        count, listed = await self._discard(
            f"held AS (SELECT s.source_row, t.school_id FROM {self._joined()} WHERE t.school_id <> ALL(:schools)),"
            f" gone(n, other) AS (DELETE FROM {self.name} s USING held h WHERE s.source_row = h.source_row"
            f" RETURNING h.source_row, h.school_id)",
            limit, {"zone_id": zone_id, "schools": list(schools)})
        return count, [(n, uuid.UUID(school)) for n, school in listed]

    async def _discard(self, ctes: str, limit: int, params: dict[str, object]) -> tuple[int, list[tuple[int, str]]]:
        # Counted and listed in SQL: a file that repeats itself could discard a million rows.
        result = await self.connection.execute(
            text(f"WITH {ctes} SELECT (SELECT count(*) FROM gone),"
                 " (SELECT coalesce(array_agg(array[n::text, other::text] ORDER BY n), '{}')"
                 "  FROM (SELECT n, other FROM gone ORDER BY n LIMIT :limit) listed)"),
            {**params, "limit": limit})
        count, listed = result.one()
        self.rows -= count
        return count, [(int(n), other) for n, other in listed]

    async def upsert(self, zone_id: str, batch_id: uuid.UUID) -> UpsertCounts:
        """Move every staged row into the target in one statement: insert the new, correct the changed, skip the same."""
        result = await self.connection.execute(text(_upsert_statement(self.target, self.name)),
                                               {"zone_id": zone_id, "batch_id": batch_id})
        counts, _ = _counts(self.target, self.rows, result)
        return counts

    async def drop(self) -> None:
        await self.connection.execute(text(f"DROP TABLE IF EXISTS {self.name}"))


def _insert_statement(target: Target, source: str) -> str:
    """Insert `source`'s rows (a relation of the target's columns) into the target."""
    # ORDER BY the key: concurrent batches lock shared rows in the same order, so they wait instead of deadlocking.
    # Any one order does; comparing text bytewise (COLLATE "C") costs the sort the least.
    order = ", ".join(f's.{c} COLLATE "C"' if isinstance(target.table.c[c].type, String) else f"s.{c}" for c in target.key)
    return f"""
        INSERT INTO {_qualified(target.table)} AS t (zone_id, {", ".join(target.columns)}, batch_id)
        SELECT CAST(:zone_id AS text), {", ".join(f"s.{c}" for c in target.columns)}, CAST(:batch_id AS uuid)
        FROM {source} s
        ORDER BY {order}"""


def _upsert_statement(target: Target, source: str) -> str:
    """`_insert_statement`, correcting the stored rows that differ and leaving the others alone, and answering one
    row per group of `_counts`."""
    values = [c for c in target.columns if c not in target.key]
    new = {c: f"coalesce(EXCLUDED.{c}, t.{c})" if c in target.keep_when_absent else f"EXCLUDED.{c}" for c in values}
    groups = [*target.report, *(f"was_{c}" for c in target.moves)]
    return f"""
        WITH up AS ({_insert_statement(target, source)}
            ON CONFLICT ON CONSTRAINT {target.constraint} DO UPDATE
            SET {", ".join(f"{c} = {expr}" for c, expr in new.items())}, batch_id = EXCLUDED.batch_id, updated_at = now()
            WHERE ({", ".join(f"t.{c}" for c in values)}) IS DISTINCT FROM ({", ".join(new.values())})
            RETURNING old.id IS NULL AS inserted, {", ".join(f"new.{c}" for c in target.report)},
                      {", ".join(f"old.{c} AS was_{c}" for c in target.moves)}
        )
        SELECT {", ".join(groups)}, count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
        FROM up GROUP BY {", ".join(groups)}"""


def _counts(target: Target, staged: int, result: Iterable[Sequence[Any]]) -> tuple[UpsertCounts, set[uuid.UUID]]:
    """What the upsert statement answered (a row per group of new rows, and of corrected rows with what they were):
    the changes per reported group, a moved row counting as corrected in its old group too; and the schools the
    corrected rows were stored for."""
    inserted = updated = 0
    merged: dict[tuple[Any, ...], list[int]] = {}
    corrected_from = set()
    width = len(target.report)
    for row in result:
        group, was = tuple(row[:width]), dict(zip(target.moves, row[width:-2]))
        n_inserted, n_updated = row[-2:]
        inserted += n_inserted
        updated += n_updated
        counts = merged.setdefault(group, [0, 0])
        counts[0] += n_inserted
        counts[1] += n_updated
        if n_updated:
            before = tuple(was.get(c, value) for c, value in zip(target.report, group))
            if before != group:
                merged.setdefault(before, [0, 0])[1] += n_updated
            corrected_from.add(before[target.report.index("school_id")])
    changes = [_change(target, group, *counts) for group, counts in merged.items()]
    return UpsertCounts(staged, inserted, updated, tuple(sorted(changes, key=_by_group))), corrected_from


def _change(target: Target, group: Sequence[Any], inserted: int, updated: int) -> Change:
    """The change of one group of `target.report` values (a school id as a UUID or as written)."""
    reported = dict(zip(target.report, group, strict=True))
    return Change(uuid.UUID(str(reported["school_id"])), reported["school_year"], reported.get("subject"),
                  reported.get("assessment_identifier"), inserted, updated)


def _by_group(change: Change) -> tuple[str, ...]:
    return tuple(map(str, (change.school_id, change.school_year, change.subject, change.assessment_identifier)))


def _same_key(target: Target) -> str:
    return " AND ".join(f"t.{c} = s.{c}" for c in target.key)


def _qualified(table: Table) -> str:
    return f"{table.schema}.{table.name}"
