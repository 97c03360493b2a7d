"""Row checks of the results ingest (no database): each rule, normalisation, duplicates, and the CSV reader."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from ezone_results.ingest.csvstream import CsvFormatError, csv_records
from ezone_results.ingest.columns import check_rows
from ezone_results.ingest.schemas import SCHOOL_ID_REASON, EnrollmentRow, ResultRow, ZoneSchool, foreign_rows, parse_row

SCHOOL = uuid.UUID("5b3f8a52-6c1e-4d7a-9f0e-2a4b6c8d0e1f")
ZONE = {SCHOOL: ZoneSchool("01", "Kiley Middle", "K-12", frozenset(("K", *map(str, range(1, 13)))))}
OTHER = uuid.UUID("0c9d8e7f-1a2b-4c3d-8e5f-6a7b8c9d0e1f")


def result(**changes: object) -> dict:
    row = {
        "student_id": "S-000123", "school_id": str(SCHOOL), "assessment_namespace": "uri://doe.mass.edu/mcas",
        "assessment_identifier": "MCAS-G7-MATH", "subject": "MATH", "grade": "7", "school_year": "2024-25",
        "administration_date": "2025-05-06", "scale_score": 503, "performance_level": "Meeting Expectations",
        "growth_percentile": 61, "subgroups": ["low_income", "el"],
    }
    return {key: value for key, value in (row | changes).items() if value is not None}


def errors_of(raw: dict, model: type = ResultRow) -> dict[str | None, str]:
    row, errors = parse_row(model, raw, 0, ZONE)
    assert row is None
    return {error["field"]: error["reason"] for error in errors}


def test_a_valid_row_is_normalised():
    row, errors = parse_row(ResultRow, result(grade="07", subgroups="el; low_income;el;all_students", not_tested_reason=None),
                            0, ZONE)
    assert errors == []
    assert (row.grade, row.subgroups, row.proficient) == ("7", ["el", "low_income"], True)
    assert row.natural_key() == ("S-000123", "uri://doe.mass.edu/mcas", "MCAS-G7-MATH", "2024-25", row.administration_date)
    kindergarten, _ = parse_row(ResultRow, result(grade=" k ", assessment_namespace="local", scale_score=12), 0, ZONE)
    assert kindergarten.grade == "K"


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"subject": "HISTORY"}, "subject", "Input should be 'ELA', 'MATH' or 'SCI'"),
    ({"grade": "13"}, "grade", "grade must be K or 1 to 12"),
    ({"scale_score": 561}, "scale_score", "an MCAS scale_score is from 440 to 560"),
    ({"assessment_namespace": "uri://nwea.org/map", "scale_score": -1}, "scale_score", "scale_score cannot be negative"),
    ({"scale_score": "503.125"}, "scale_score", "Decimal input should have no more than 2 decimal places"),
    ({"growth_percentile": 100}, "growth_percentile", "Input should be less than or equal to 99"),
    ({"school_year": "2024-26"}, "school_year", "school_year must name two consecutive years, e.g. 2024-25"),
    ({"school_year": "2024/25"}, "school_year", "String should match pattern '^\\d{4}-\\d{2}$'"),
    ({"administration_date": "2025-07-01"}, "administration_date",
     "administration_date must fall in school year 2024-25 (2024-07-01 to 2025-06-30)"),
    ({"subgroups": ["el", "martians"]}, "subgroups.1", None),
    ({"proficient": False}, "proficient", "performance_level 'Meeting Expectations' is proficient"),
    ({"not_tested_reason": "absent"}, "not_tested_reason",
     "a student who was not tested has no scale_score, performance_level, growth_percentile"),
    ({"scale_score": None, "performance_level": None, "growth_percentile": None}, "not_tested_reason",
     "a row needs a scale_score or performance_level, or a not_tested_reason"),
    ({"student_id": "Jane Doe"}, "student_id", None),
    ({"school_id": str(OTHER)}, "school_id", f"{OTHER} is not a school of this zone"),
    ({"first_name": "Jane"}, "first_name", "unknown field"),
    ({"subject": None}, "subject", "required"),
])
def test_each_rule_names_its_field_and_reason(changes, field, reason):
    errors = errors_of(result(**changes))
    assert field in errors, errors
    if reason is not None:
        assert errors[field] == reason


def test_every_error_of_a_row_is_listed_together():
    errors = errors_of(result(subject="HISTORY", grade="0", scale_score=600, school_year="2024-26"))
    assert set(errors) == {"subject", "grade", "scale_score", "school_year"}


def test_a_row_for_a_student_who_was_not_tested_has_a_reason_and_no_outcome():
    row, errors = parse_row(ResultRow, result(scale_score=None, performance_level=None, growth_percentile=None,
                                              not_tested_reason="Medical"), 0, ZONE)
    assert errors == []
    assert (row.not_tested_reason, row.proficient, row.scale_score) == ("medical", None, None)


def test_a_level_the_state_does_not_define_keeps_the_senders_proficient_flag():
    row, _ = parse_row(ResultRow, result(assessment_namespace="uri://nwea.org/map", scale_score=231,
                                         performance_level="Hi", proficient=True), 0, ZONE)
    assert row.proficient is True
    unknown, _ = parse_row(ResultRow, result(performance_level="Level 3"), 0, ZONE)
    assert unknown.proficient is None


def test_a_batch_lists_every_invalid_row_and_refuses_a_second_row_with_the_same_natural_key():
    rows = [result(), result(grade="13"), "not an object", result(student_id="S-2"), result(scale_score=510)]
    checked = check_rows(ResultRow, rows, ZONE)
    assert checked.numbers == [0, 3]
    assert [(e["row"], e["field"]) for e in checked.errors] == [(1, "grade"), (2, None), (4, None)]
    assert checked.errors[2]["reason"] == "the same natural key as row 0"


def test_rows_for_schools_a_token_does_not_act_for_are_found_before_anything_else():
    rows = [result(), result(school_id=str(OTHER).upper()), {"school_id": 12}, result(school_id="02810316")]
    # A value that is no school id at all (a state code) is left to validation, which says what to send.
    assert foreign_rows(rows, lambda school: school == str(SCHOOL)) == [1]


def test_a_state_code_as_school_id_is_refused_saying_to_send_the_schools_id():
    _, errors = parse_row(ResultRow, result(school_id="02810316"), 0, ZONE)
    assert [(error["field"], error["reason"]) for error in errors] == [("school_id", SCHOOL_ID_REASON)]


def test_enrollment_dates_fall_in_the_school_year_and_in_order():
    enrollment = {"student_id": "S-1", "school_id": str(SCHOOL), "school_year": "2024-25", "grade": 6,
                  "entry_date": "2024-08-28", "subgroups": "swd"}
    row, errors = parse_row(EnrollmentRow, enrollment, 0, ZONE)
    assert errors == [] and (row.grade, row.subgroups, row.exit_date) == ("6", ["swd"], None)
    assert row.natural_key() == ("S-1", SCHOOL, row.entry_date)
    assert set(errors_of(enrollment | {"entry_date": "2025-08-01"}, EnrollmentRow)) == {"entry_date"}
    assert errors_of(enrollment | {"exit_date": "2024-08-01"}, EnrollmentRow) == {"exit_date": "exit_date cannot be before entry_date"}


async def _records(data: bytes, chunk: int) -> list[tuple[int, list[str]]]:
    async def chunks():
        for start in range(0, len(data), chunk):
            yield data[start:start + chunk]
            await asyncio.sleep(0)

    return [record async for record in csv_records(chunks())]


@pytest.mark.parametrize("chunk", [1, 2, 5, 64, 10_000])
async def test_csv_records_do_not_depend_on_where_the_network_cuts_the_bytes(chunk):
    data = '\ufeffa,b\r\n1,"x, ""y""\nz"\r\n\nö,2\n3,4'.encode()
    assert await _records(data, chunk) == [(1, ["a", "b"]), (2, ["1", 'x, "y"\nz']), (4, []), (5, ["ö", "2"]), (6, ["3", "4"])]


@pytest.mark.parametrize(("data", "line", "reason"), [
    (b'a,b\n1,"never closed\n2,3\n', 2, "a quoted field is never closed"),
    (b"a,b\n1,2\n3,\xff\n", 3, "the file is not UTF-8"),
    (b"a,b\n1,\xc3", 2, "the file ends inside a UTF-8 character"),
])
async def test_an_unreadable_csv_names_the_line(data, line, reason):
    with pytest.raises(CsvFormatError) as raised:
        await _records(data, 3)
    assert (raised.value.line, raised.value.reason) == (line, reason)


def test_a_grade_the_school_does_not_teach_is_refused_naming_the_schools_grades_by_rows_and_by_columns():
    middle = {SCHOOL: ZoneSchool("02810316", "Kiley Middle", "6-8", frozenset("678"))}
    row, errors = parse_row(ResultRow, result(grade="4"), 0, middle)
    assert row is None
    assert errors == [{"row": 0, "field": "grade",
                       "reason": "grade 4 is not taught at Kiley Middle (02810316, grades 6-8)"}]
    checked = check_rows(ResultRow, [result(grade="7"), result(grade="4", student_id="S-000124")], middle)
    assert checked.numbers == [0] and checked.errors == [{**errors[0], "row": 1}]
