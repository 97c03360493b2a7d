"""The column-wise check of a JSON batch (no database): for any batch it accepts, normalises and refuses exactly what
checking each row with its model (`parse_row`) does, whatever mix of values and types the rows hold."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

import orjson
import pytest
from ezone_results.ingest.columns import CheckedRows, check_rows, sql_value
from ezone_results.ingest.schemas import EnrollmentRow, IngestRow, ResultRow, ZoneSchool, parse_row

from tests.results_data import enrollments, student_results

SCHOOL = uuid.UUID("5b3f8a52-6c1e-4d7a-9f0e-2a4b6c8d0e1f")
OTHER_SCHOOL = uuid.UUID("0c9d8e7f-1a2b-4c3d-8e5f-6a7b8c9d0e1f")
ZONE = {school: ZoneSchool(code, "School", "K-12", frozenset(("K", *map(str, range(1, 13)))))
        for school, code in ((SCHOOL, "01"), (OTHER_SCHOOL, "02"))}
NOT_IN_ZONE = "7b0c4a4e-0000-4000-8000-000000000000"

# Values a field may take in a row, valid or not, in the forms JSON gives them: equal values of different types
# (1, 1.0, true), spaces to strip, other spellings, wrong types, nested values.
RESULT_VARIANTS: dict[str, list[object]] = {
    "student_id": ["S-1", " S-1 ", "S 1", "", "x" * 65, 7, None, ["S-1"]],
    "school_id": [str(SCHOOL), str(SCHOOL).upper(), SCHOOL.hex, NOT_IN_ZONE, "not-a-uuid", 5, None],
    "assessment_namespace": ["uri://doe.mass.edu/mcas", " uri://doe.mass.edu/mcas ", "uri://nwea.org/map", "", "MCAS", 1],
    "assessment_identifier": ["MCAS-G7-MATH", "MCAS-G7-MATH ", "x" * 101, "", 12, {"id": 1}],
    "subject": ["MATH", "ELA", "SCI", "math", " MATH", "HISTORY", None, 1],
    "grade": ["7", "07", 7, 7.0, " k ", "K", "13", 0, True, "", None],
    "school_year": ["2024-25", "2024-26", "2024/25", " 2024-25 ", 2024, None, "0000-01"],
    "administration_date": ["2025-05-06", "2025-08-15", "2024-07-01", "2025-06-30", "2025-05-06T00:00:00", "06/05/2025",
                            1746489600, None],
    "scale_score": [503, 503.0, 503.5, "503.50", "503.125", 440, 560, 561, 12, -1, 1, 1.0, True, 12345678, None, "abc"],
    "performance_level": ["Meeting Expectations", "meeting", "Exceeding", "Not Meeting", "Level 3", " Meeting ", "", 3, None],
    "proficient": [True, False, 1, 0, 1.0, "true", "no", "yes", 2, None],
    "growth_percentile": [61, 61.0, 1, True, 99, 100, 0, "50.5", 50.125, None],
    "not_tested_reason": ["absent", "Medical", " exempt ", "", None, 0],
    "subgroups": [["el", "low_income"], ["low_income", "el"], ["el", "el", "all_students"], "el; low_income", "", [],
                  ["martians"], [["el"]], [1], None],
    "edfi_identifier": ["edfi-1", " edfi-2 ", "", "x" * 256, None],
}
ENROLLMENT_VARIANTS: dict[str, list[object]] = {
    "student_id": ["S-1", " S-1 ", "S 1", None],
    "school_id": [str(SCHOOL), str(OTHER_SCHOOL).upper(), NOT_IN_ZONE, None],
    "school_year": ["2024-25", "2024-26", None],
    "grade": [6, "6", "06", "K", "13"],
    "entry_date": ["2024-08-28", "2024-09-03", "2025-08-01", None],
    "exit_date": ["2025-02-14", "2024-08-01", "2026-01-01", None],
    "subgroups": ["swd", ["el"], ["el", "swd"], [["el"]], None],
}
MISSING = object()


def mutated(base: list[dict], variants: dict[str, list[object]], seed: int, rate: float) -> list[object]:
    """The rows with some fields changed, dropped or added at random, and the odd row that is not an object."""
    rng = random.Random(seed)
    rows: list[object] = []
    for row in base:
        row = dict(row)
        for field, values in variants.items():
            if rng.random() < rate:
                value = rng.choice([*values, MISSING])
                if value is MISSING:
                    row.pop(field, None)
                else:
                    row[field] = value
        if rng.random() < rate / 10:
            row["first_name"] = "Jane"
        rows.append(row if rng.random() > rate / 10 else rng.choice(["a row", 7, None, [row]]))
    # Re-sent rows: the same natural key again, as written or in another spelling.
    rows += [dict(row) for row in rng.sample([row for row in rows if isinstance(row, dict)], k=len(rows) // 10)]
    return orjson.loads(orjson.dumps(rows))  # exactly what a JSON body gives


def one_by_one(model: type[IngestRow], raw_rows: list[object]) -> tuple[list[int], list[list], list[dict]]:
    """What checking each row with its model gives, with the first row of a natural key kept (rows as JSON)."""
    numbers, values, errors, first_seen = [], [], [], {}
    for index, raw in enumerate(raw_rows):
        row, row_errors = parse_row(model, raw, index, ZONE)
        if row is None:
            errors += row_errors
            continue
        first = first_seen.setdefault(row.natural_key(), index)
        if first != index:
            errors.append({"row": index, "field": None, "reason": f"the same natural key as row {first}"})
            continue
        numbers.append(index)
        values.append(tuple(sql_value(getattr(row, name)) for name in model.model_fields))
    return numbers, orjson.loads(orjson.dumps(values)), errors


def outcome(checked: CheckedRows) -> tuple[list[int], list[list], list[dict]]:
    return checked.numbers, orjson.loads(checked.document), checked.errors


@pytest.mark.parametrize("rate", [0.0, 0.02, 0.2, 0.6])
@pytest.mark.parametrize("seed", range(4))
def test_results_are_checked_as_one_by_one(seed, rate):
    base = (student_results([SCHOOL], students_per_school=150, school_year="2024-25", subject="MATH", seed=seed)
            + student_results([OTHER_SCHOOL], students_per_school=150, school_year="2024-25", subject="ELA", seed=seed))
    rows = mutated(base, RESULT_VARIANTS, seed, rate)
    checked = check_rows(ResultRow, rows, ZONE)
    assert outcome(checked) == one_by_one(ResultRow, rows)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("seed", range(3))
def test_enrollments_are_checked_as_one_by_one(seed, rate):
    rows = mutated(enrollments([SCHOOL, OTHER_SCHOOL], students_per_school=100, school_year="2024-25", seed=seed),
                   ENROLLMENT_VARIANTS, seed, rate)
    checked = check_rows(EnrollmentRow, rows, ZONE)
    assert outcome(checked) == one_by_one(EnrollmentRow, rows)


def test_rows_in_the_usual_forms_are_checked_without_the_row_model(monkeypatch):
    # What keeps a batch fast: only rows the column checks refuse go through the row model one by one.
    def one_row(*args: object) -> None:
        raise AssertionError("a row went through parse_row")

    monkeypatch.setattr("ezone_results.ingest.columns.parse_row", one_row)
    rows = orjson.loads(orjson.dumps(
        student_results([SCHOOL], students_per_school=200, school_year="2024-25", subject="MATH")
        + student_results([OTHER_SCHOOL], students_per_school=200, school_year="2024-25", subject="ELA")))
    assert len(check_rows(ResultRow, rows, ZONE).numbers) == 400
    enrolled = orjson.loads(orjson.dumps(enrollments([SCHOOL], students_per_school=200, school_year="2024-25")))
    assert len(check_rows(EnrollmentRow, enrolled, ZONE).numbers) == 200


def test_equal_values_of_different_types_are_checked_apart():
    row = student_results([SCHOOL], students_per_school=1, school_year="2024-25", subject="MATH")[0]
    row |= {"scale_score": 503, "performance_level": "Meeting", "growth_percentile": 61}
    rows = [dict(row, student_id="S-1", growth_percentile=1), dict(row, student_id="S-2", growth_percentile=True),
            dict(row, student_id="S-3", growth_percentile=1.0), dict(row, student_id="S-4", proficient=1),
            dict(row, student_id="S-5", proficient=True)]
    checked = check_rows(ResultRow, rows, ZONE)
    assert outcome(checked) == one_by_one(ResultRow, rows)
    assert [error["row"] for error in checked.errors] == [1]  # true is not a percentile


def test_values_are_written_for_postgresql():
    row = {"student_id": "S-1", "school_id": str(SCHOOL).upper(), "assessment_namespace": "uri://doe.mass.edu/mcas",
           "assessment_identifier": "MCAS-G7-MATH", "subject": "MATH", "grade": "07", "school_year": "2024-25",
           "administration_date": "2025-05-06", "scale_score": 503.5, "performance_level": "Meeting",
           "subgroups": "low_income;el;all_students"}
    checked = check_rows(ResultRow, [row, dict(row, student_id="S-2", school_id=str(SCHOOL))], ZONE)
    expected = ("S-1", SCHOOL, "uri://doe.mass.edu/mcas", "MCAS-G7-MATH", "MATH", "7", "2024-25", "2025-05-06", "503.5",
                "Meeting", True, None, None, "{el,low_income}", None)
    assert orjson.loads(checked.document) == [
        [str(value) if isinstance(value, uuid.UUID) else value for value in expected],
        [str(value) if isinstance(value, uuid.UUID) else "S-2" if value == "S-1" else value for value in expected]]
    assert sql_value(Decimal("503.50")) == "503.50" and sql_value([]) == "{}"


def test_valid_rows_are_counted_by_group():
    rows = (student_results([SCHOOL], students_per_school=30, school_year="2024-25", subject="MATH")
            + student_results([SCHOOL, OTHER_SCHOOL], students_per_school=20, school_year="2024-25", subject="ELA"))
    rows[0]["grade"] = "13"
    checked = check_rows(ResultRow, rows, ZONE, group_by=("school_id", "subject"))
    assert checked.groups == {(str(SCHOOL), "MATH"): 29, (str(SCHOOL), "ELA"): 20, (str(OTHER_SCHOOL), "ELA"): 20}
    assert orjson.loads(checked.sample) == [orjson.loads(checked.document)[i] for i in (0, 34, 68)]
