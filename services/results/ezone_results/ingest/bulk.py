"""The fast path: rows go into a temporary staging table with COPY, then ONE upsert statement moves them in.

Row-by-row ORM inserts cost a round trip and a flush per row; COPY streams thousands of rows per message and
the upsert is a single set-based statement. The upsert compares each row with what is stored
(`IS DISTINCT FROM`), so a re-sent row changes nothing, and it answers per school, school year, subject and
assessment how many rows it inserted or corrected — what `results.posted` needs, without returning every row.

Everything runs on the caller's connection, inside the caller's transaction: the rows commit with the batch
record and the events, or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ..models import Enrollment, StudentResult
from .schemas import EnrollmentRow, IngestRow, ResultRow


@dataclass(frozen=True)
class Target:
    """A table rows are upserted into, and how a change in it is reported."""

    table: Table
    constraint: str  # the natural key's unique constraint (with zone_id first)
    key: tuple[str, ...]  # the natural key's columns besides zone_id
    columns: tuple[str, ...]  # the columns a row carries, in its model's field order
    # What a change is reported by (school_id, school_year, subject, assessment_identifier): a column name, or NULL.
    report: tuple[str, str, str, str]
    keep_when_absent: tuple[str, ...] = ()  # columns a row without a value leaves as they are

    @property
    def moves(self) -> tuple[str, ...]:
        """Reported columns outside the natural key: a row that changes them leaves its old school (or subject)."""
        return tuple(c for c in self.report if c != "NULL" and c not in self.key)


RESULTS = Target(
    table=StudentResult.__table__,
    constraint="uq_student_results_natural_key",
    key=("student_id", "assessment_namespace", "assessment_identifier", "school_year", "administration_date"),
    columns=tuple(ResultRow.model_fields),
    report=("school_id", "school_year", "subject", "assessment_identifier"),
    # An Ed-Fi identifier, once known, stays when the same result comes again by another path without one.
    keep_when_absent=("edfi_identifier",),
)
ENROLLMENTS = Target(
    table=Enrollment.__table__,
    constraint="uq_enrollments_natural_key",
    key=("student_id", "school_id", "entry_date"),
    columns=tuple(EnrollmentRow.model_fields),
    report=("school_id", "school_year", "NULL", "NULL"),
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


async def upsert_results(session: AsyncSession, zone_id: str, batch_id: uuid.UUID, rows: Sequence[ResultRow], *,
                         row_numbers: Sequence[int] | None = None, schools: Collection[uuid.UUID] | None = None) -> UpsertCounts:
    """Insert new results, correct changed ones, leave identical ones alone — in the session's transaction.

    `rows` must have distinct natural keys (`validate_rows` refuses duplicates). `row_numbers` are how the caller
    numbers them (default: positions). With `schools` (a school-bound caller's), a row whose result is stored for
    another school raises `HeldByOtherSchools` before anything is written."""
    return await _upsert(session, RESULTS, zone_id, batch_id, rows, row_numbers, schools)


async def upsert_enrollments(session: AsyncSession, zone_id: str, batch_id: uuid.UUID, rows: Sequence[EnrollmentRow], *,
                             row_numbers: Sequence[int] | None = None) -> UpsertCounts:
    """The same for enrollments (natural key: student, school, entry date — never another school's row)."""
    return await _upsert(session, ENROLLMENTS, zone_id, batch_id, rows, row_numbers, None)


async def _upsert(session: AsyncSession, target: Target, zone_id: str, batch_id: uuid.UUID, rows: Sequence[IngestRow],
                  row_numbers: Sequence[int] | None, schools: Collection[uuid.UUID] | None) -> UpsertCounts:
    if len({row.natural_key() for row in rows}) != len(rows):
        raise ValueError("rows must have distinct natural keys; validate them with validate_rows first")
    staging = Staging(await session.connection(), target)
    await staging.create()
    await staging.copy(zip(row_numbers if row_numbers is not None else range(len(rows)), rows, strict=True))
    if schools is not None:
        held = await staging.held_by_other_schools(zone_id, schools)
        if held:
            raise HeldByOtherSchools(held)
    return await staging.upsert(zone_id, batch_id)


class Staging:
    """A temporary table of rows for one target: the row's number in its request or file, and the target's columns.

    `preserve=False` (one transaction): dropped at commit. `preserve=True` (a streamed upload, a transaction per
    chunk): kept until `drop()` or the end of the database session, so the caller must hold one connection."""

    def __init__(self, connection: AsyncConnection, target: Target, *, preserve: bool = False) -> None:
        self.connection = connection
        self.target = target
        self.preserve = preserve
        self.name = f"ingest_{uuid.uuid4().hex}"
        self.rows = 0

    async def create(self) -> None:
        dialect = postgresql.dialect()
        columns = ", ".join(f"{name} {self.target.table.c[name].type.compile(dialect=dialect)}" for name in self.target.columns)
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
        matches = " AND ".join(f"t.{c} = s.{c}" for c in self.target.key)
        return f"{self.name} s JOIN {_qualified(self.target.table)} t ON t.zone_id = :zone_id AND {matches}"

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

    async def held_by_other_schools(self, zone_id: str, schools: Collection[uuid.UUID]) -> list[tuple[int, uuid.UUID]]:
        result = await self.connection.execute(
            text(f"SELECT s.source_row, t.school_id FROM {self._joined()} WHERE t.school_id <> ALL(:schools) ORDER BY 1"),
            {"zone_id": zone_id, "schools": list(schools)})
        return [(number, school) for number, school in result]

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
        target = self.target
        values = [c for c in target.columns if c not in target.key]
        new = {c: f"coalesce(EXCLUDED.{c}, t.{c})" if c in target.keep_when_absent else f"EXCLUDED.{c}" for c in values}
        reported = [c for c in target.report if c != "NULL"]
        group_by = ", ".join(str(position) for position, c in enumerate(target.report, 1) if c != "NULL")

        def report(prefix: str) -> str:
            return ", ".join("NULL" if c == "NULL" else f"{prefix}{c}" for c in target.report)

        moved = ""
        if target.moves:
            before, after = (", ".join(f"{side}.{c}" for c in target.moves) for side in ("t", "s"))
            # Every part of the statement reads the table as it was before it: a row corrected into another school
            # (or subject) changes what its old one reports too.
            moved = (f" UNION ALL SELECT {report('t.')}, 0, 0, count(*) FROM {self._joined()}"
                     f" WHERE ({before}) IS DISTINCT FROM ({after}) GROUP BY {group_by}")
        # ORDER BY the key: concurrent batches lock shared rows in the same order, so they wait instead of deadlocking.
        # xmax is 0 on a row version an INSERT wrote, and set on one the ON CONFLICT UPDATE wrote.
        statement = f"""
            WITH up AS (
                INSERT INTO {_qualified(target.table)} AS t (zone_id, {", ".join(target.columns)}, batch_id)
                SELECT CAST(:zone_id AS text), {", ".join(f"s.{c}" for c in target.columns)}, CAST(:batch_id AS uuid)
                FROM {self.name} s
                ORDER BY {", ".join(f"s.{c}" for c in target.key)}
                ON CONFLICT ON CONSTRAINT {target.constraint} DO UPDATE
                SET {", ".join(f"{c} = {expr}" for c, expr in new.items())}, batch_id = EXCLUDED.batch_id, updated_at = now()
                WHERE ({", ".join(f"t.{c}" for c in values)}) IS DISTINCT FROM ({", ".join(new.values())})
                RETURNING t.xmax = 0 AS inserted, {", ".join(f"t.{c}" for c in reported)}
            )
            SELECT {report("")}, count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), 0
            FROM up GROUP BY {group_by}{moved}"""
        result = await self.connection.execute(text(statement), {"zone_id": zone_id, "batch_id": batch_id})
        inserted = updated = 0
        merged: dict[tuple, list[int]] = {}
        for school_id, school_year, subject, assessment, n_inserted, n_updated, n_moved in result:
            inserted += n_inserted
            updated += n_updated
            counts = merged.setdefault((school_id, school_year, subject, assessment), [0, 0])
            counts[0] += n_inserted
            counts[1] += n_updated + n_moved
        changes = tuple(Change(*group, *counts) for group, counts in sorted(merged.items(), key=lambda item: str(item[0])))
        return UpsertCounts(staged=self.rows, inserted=inserted, updated=updated, changes=changes)

    async def drop(self) -> None:
        await self.connection.execute(text(f"DROP TABLE IF EXISTS {self.name}"))


def _qualified(table: Table) -> str:
    return f"{table.schema}.{table.name}"
