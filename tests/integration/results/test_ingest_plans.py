"""The ingest statements on a table that empties and grows again under them: planned for the table as it is."""

from __future__ import annotations

import uuid

from ezone_results.ingest.bulk import RESULTS, upsert_rows
from ezone_results.ingest.columns import check_rows
from ezone_results.ingest.schemas import ResultRow, ZoneSchool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from tests.results_data import student_results
from tests.stack import new_database

ZONE = "plans-zone"
TABLE = "results.student_results"


async def _upsert(session: AsyncSession, school: uuid.UUID, students: int, seed: int, school_year: str) -> None:
    rows = student_results([str(school)], students_per_school=students, seed=seed, school_year=school_year, subject="MATH")
    checked = check_rows(ResultRow, rows, {school: ZoneSchool("01", "Middle", "6-8", frozenset("678"))},
                         group_by=RESULTS.report)
    assert not checked.errors, checked.errors[:3]
    async with session.begin():
        await upsert_rows(session, RESULTS, ZONE, uuid.uuid4(), checked)


async def _small_batches(session: AsyncSession, school: uuid.UUID, seeds: range) -> None:
    # Enough executions of each statement for PostgreSQL to settle on a cached plan (it tries five custom ones).
    for seed in seeds:
        await _upsert(session, school, 3, seed, f"{2000 + seed}-{(seed + 1) % 100:02d}")


async def _emptied(connection: AsyncConnection) -> None:
    await connection.execute(text(f"TRUNCATE {TABLE}"))
    await connection.execute(text(f"VACUUM ANALYZE {TABLE}"))


async def _rows_scanned(session: AsyncSession, other: AsyncConnection) -> int:
    """Rows the session's backend has read by scanning the table (its statistics flushed when its transaction ends)."""
    async with session.begin():
        await session.execute(text("SELECT pg_stat_force_next_flush()"))
    await other.execute(text("SELECT pg_stat_clear_snapshot()"))
    return (await other.execute(text(
        "SELECT seq_tup_read FROM pg_stat_user_tables WHERE schemaname = 'results' AND relname = 'student_results'"
    ))).scalar_one()


async def test_the_probe_for_stored_rows_stays_an_index_lookup_when_the_table_grows_again(postgres):
    engine = create_async_engine(await new_database(postgres))
    school = uuid.uuid4()
    try:
        async with engine.connect() as connection, engine.connect() as other:
            other = await other.execution_options(isolation_level="AUTOCOMMIT")
            await other.execute(text(f"ALTER TABLE {TABLE} SET (autovacuum_enabled = false)"))
            session = AsyncSession(bind=connection)  # one connection: one set of prepared statements
            # A big table first, then emptied (as a purge would, or a benchmark between its passes) and grown again.
            await _upsert(session, school, 20_000, 1, "2019-20")
            await _small_batches(session, school, range(10, 18))
            await _emptied(other)
            await _small_batches(session, school, range(20, 28))
            await _upsert(session, school, 20_000, 2, "2018-19")
            before = await _rows_scanned(session, other)

            await _upsert(session, school, 3, 3, "2017-18")

            # Three sample rows probed in the natural key's index read no rows by scanning; the plan made for the
            # emptied table would read all 20,000 once per sample row.
            assert await _rows_scanned(session, other) - before < 1_000
    finally:
        await engine.dispose()
