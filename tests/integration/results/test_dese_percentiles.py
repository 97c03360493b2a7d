"""ezone's achievement percentiles against DESE's own, on DESE's published 3-8 files, and the state's ranking rule.

Each file goes in as `ezone import mcas` sends it (POST /state-aggregates/mcas), its `ach_pctl` column blanked first,
into a database of this module's own (statewide files stay out of the shared zone's); then every school of the file
is ranked by the statement a review ranks its schools with, and compared with the percentile DESE published.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from ezone_results.review import queries
from ezone_results.review.engine import Standing
from ezone_results.review.state_ranking import unranked_reason
from ezone_results.state_aggregates.mcas import STUDENT_GROUPS, school_year_of
from sqlalchemy import text

from ezone.demo import default_data_dir, file_parameters
from tests.stack import Stack, new_database

MCAS_DIR = default_data_dir() / "mcas"
ZONE = "z-dese"  # a zone with no school of its own: it compares with the state's figures as published
STATE = "00000000"  # the files' only totals rows: the state's


def published(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [{name.strip(): (value or "").strip() for name, value in row.items()} for row in csv.DictReader(handle)]


def percentile_files() -> list[Path]:
    """The files of the years DESE ranked schools in (it published no percentile in 2021)."""
    return [path for path in sorted(MCAS_DIR.glob("grades_3-8_*.csv")) if any(row.get("ach_pctl") for row in published(path))]


def blanked(path: Path) -> bytes:
    """The file with every `ach_pctl` emptied: whatever ezone ranks, it cannot have read DESE's."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header, *rows = list(csv.reader(handle))
    column = header.index("ach_pctl")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *([*r[:column], "", *r[column + 1:]] for r in rows)])
    return out.getvalue().encode()


@dataclass(frozen=True)
class Row:
    key: tuple[str, str, str, str]  # school code, school year, subject, subgroup
    average: str  # as published (rounded to 0.1)
    dese: int | None
    ours: Standing


@pytest.fixture(scope="module")
async def dese_stack(postgres, broker, key_dir) -> AsyncIterator[Stack]:
    stack = Stack(await new_database(postgres), broker.bootstrap_servers, key_dir,
                  {"ezone_run_relay": False, "ezone_run_consumers": False})
    await stack.start(only=("results",))
    try:
        yield stack
    finally:
        await stack.stop()


@pytest.fixture(scope="module")
async def dese(dese_stack) -> dict[str, list[Row]]:
    """Every percentile file loaded, blanked; per file, each of its rows with DESE's percentile and ezone's."""
    ranked: dict[str, list[Row]] = {}
    for path in percentile_files():
        loaded = await dese_stack.clients["results"].post(
            "/state-aggregates/mcas", content=blanked(path), params=file_parameters(path),
            headers={**dese_stack.auth("state", ZONE), "Content-Type": "text/csv"})
        assert loaded.status_code == 200, loaded.text
        rows = published(path)
        keys = [(r["school_code"].zfill(8), school_year_of(int(r["year"])), r["subject"],
                 STUDENT_GROUPS[(r.get("student_group") or "all students").lower()].value) for r in rows]
        async with dese_stack.kits["results"].sessions() as session:
            counts = await queries.percentile_counts(session, {(k[1], k[2]) for k in keys}, {(ZONE, k[0]) for k in keys})
        ranked[path.name] = [
            Row(key, r["avg_scaled_score"], int(float(r["ach_pctl"])) if r["ach_pctl"] else None,
                Standing.of(counts.get((ZONE, *key)), unranked_reason(key, int(r["num_of_students_included"].replace(",", "")))))
            for key, r in zip(keys, rows, strict=True)]
    return ranked


@dataclass(frozen=True)
class Agreement:
    exact: float  # of the rows DESE ranked
    exact_where_determined: float  # of those whose rounded average no other school shares with another percentile
    within_one: float

    def __str__(self) -> str:
        return (f"exact {self.exact:.2%}, where the file determines DESE's value {self.exact_where_determined:.2%}, "
                f"within ±1 {self.within_one:.2%}")


def agreement(rows: list[Row]) -> Agreement:
    ranked = [r for r in rows if r.dese is not None]
    given = defaultdict(set)  # (subject, rounded average) → the percentiles DESE gave it
    for r in ranked:
        given[(r.key[2], r.average)].add(r.dese)
    determined = [r for r in ranked if len(given[(r.key[2], r.average)]) == 1]

    def share(agrees: Callable[[int, int], bool], rows: list[Row]) -> float:
        return sum(1 for r in rows if r.ours.percentile is not None and agrees(r.ours.percentile, r.dese)) / len(rows)

    def equal(ours: int, theirs: int) -> bool:
        return ours == theirs

    return Agreement(share(equal, ranked), share(equal, determined), share(lambda o, t: abs(o - t) <= 1, ranked))


def sharing_a_district(rows: list[Row]) -> list[Row]:
    """The rows of schools that are not their district's only school in the file: of a school that is (a charter,
    a one-school town), DESE publishes figures other than those it ranked the school by (its percentiles are out of
    order with its averages), so there the file cannot tell DESE's value."""
    schools = defaultdict(set)
    for r in rows:
        schools[r.key[0][:4]].add(r.key[0])
    return [r for r in rows if len(schools[r.key[0][:4]]) > 1]


# Measured (docs/reviews.md), each floor the measured share truncated to 0.1%: exact, exact where the file determines
# DESE's value, within ±1.
MEASURED = {
    "grades_3-8_all_students_2017.csv": (0.846, 0.985, 0.982),
    "grades_3-8_all_students_2018.csv": (0.891, 0.944, 0.981),
    "grades_3-8_all_students_2019.csv": (0.899, 0.956, 0.981),
    "grades_3-8_all_students_2022.csv": (0.906, 0.964, 0.986),
    "grades_3-8_EL_2019.csv": (0.894, 0.927, 0.983),
    "grades_3-8_EL_2022.csv": (0.900, 0.930, 0.985),
    "grades_3-8_afr_american-black_2022.csv": (0.856, 0.906, 0.978),
    "grades_3-8_high_needs_2019.csv": (0.884, 0.943, 0.977),
    "grades_3-8_high_needs_2022.csv": (0.884, 0.943, 0.975),
    "grades_3-8_hispanic-latino_2022.csv": (0.892, 0.943, 0.979),
    "grades_3-8_low-income_2022.csv": (0.889, 0.944, 0.978),
    "grades_3-8_students_with_disabilities_2019.csv": (0.898, 0.940, 0.978),
    "grades_3-8_students_with_disabilities_2022.csv": (0.903, 0.948, 0.978),
}


@pytest.mark.parametrize("name", MEASURED)
async def test_each_groups_percentile_is_dese_s_rank_of_it_among_the_same_group_at_every_school_dese_ranks(dese, name):
    if name not in dese:
        pytest.skip(f"{name} is not in {MCAS_DIR}")
    rows = dese[name]
    found = agreement(rows)
    measured = (found.exact, found.exact_where_determined, found.within_one)
    assert all(share >= floor for share, floor in zip(measured, MEASURED[name], strict=True)), str(found)
    # Where the file's average is the one DESE ranked, ezone is within one of DESE (all but a row or two of EL's).
    assert agreement(sharing_a_district(rows)).within_one >= 0.998


@pytest.mark.parametrize("name", MEASURED)
async def test_the_schools_dese_left_unranked_and_the_state_totals_get_no_percentile_and_say_why(dese, name):
    if name not in dese:
        pytest.skip(f"{name} is not in {MCAS_DIR}")
    rows = dese[name]
    # A school for the deaf, day schools, groups DESE gave none: none, with the reason; every other school, one.
    assert {r.key for r in rows if r.ours.percentile is None} == {r.key for r in rows if r.dese is None}
    assert all(r.ours.unranked_reason for r in rows if r.ours.percentile is None)
    # The state's totals are no school: not ranked (nor counted: see the next test).
    assert {r.ours for r in rows if r.key[0] == STATE} == {Standing(None, "not a school: the state's or a district's totals")}


@pytest.mark.parametrize("padding", [0, queries.COUNTED_PERCENTILES_MAX_CODES], ids=["counted", "ranked"])
async def test_the_state_ranks_no_totals_row_and_no_group_of_fewer_than_10_students(dese_stack, padding):
    year = f"2{padding:03d}-99"  # a year no file has
    rows = {"01230000": (500, 900), "01230005": (505, 9), "01230010": (510, 10), "01230015": (515, None),
            "01230020": (520, 40)}  # a district's totals, a group of 9, of 10, of a count not published, of 40
    async with dese_stack.kits["results"].sessions() as session, session.begin():
        await session.execute(text(
            "INSERT INTO results.school_aggregates (school_code, school_year, subject, subgroup, school_name, n_tested,"
            " average_scaled_score, source) VALUES (:code, :year, 'MATH', 'el', :code, :n, :score, 'mcas')"),
            [{"code": code, "year": year, "n": n, "score": score} for code, (score, n) in rows.items()])
        absent = [(ZONE, f"9{i:07d}") for i in range(padding)]  # codes with no figures: they only make the count many
        counts = await queries.percentile_counts(session, {(year, "MATH")}, [(ZONE, code) for code in rows] + absent)
    assert {code: found for (_, code, _, _, _), found in counts.items()} == {
        "01230010": (0, 0, 3), "01230015": (1, 0, 3), "01230020": (2, 0, 3)}
    assert unranked_reason(("01230000", year, "MATH", "el"), 900) == "not a school: the state's or a district's totals"
    assert unranked_reason(("01230005", year, "MATH", "el"), 9) == (
        "fewer than 10 students tested: the state ranks no smaller group")
