"""The rows an SIS sends (student results, enrollments), how each one is checked, and the batch summary it gets back.

`parse_row` checks one row: types, vocabularies, ranges, the rules between its fields, and that its school is one
of the zone's. A JSON batch is checked column by column (`columns.check_rows`) with the same field types and
rules, and every row that check does not accept as it is goes through `parse_row`. Whether a natural key is already
in the batch is checked by `check_rows` for a JSON batch, and in the staging table for a streamed CSV file (which is
never held whole).
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import repeat
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from ezone_schemas.vocabulary import GroupCode, Subgroup, Subject, grade_as_named
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

MAX_ROWS = 10_000
GRADES = ("K", *(str(grade) for grade in range(1, 13)))
MCAS_SCALE = (Decimal(440), Decimal(560))

# Performance levels whose meaning is known -> proficient (meeting or exceeding). MCAS since 2017, as the state
# writes them and as SIS exports shorten them, and the legacy MCAS levels. Other assessments send `proficient`.
PROFICIENT_BY_LEVEL = {
    "exceeding expectations": True, "exceeding": True, "meeting expectations": True, "meeting": True,
    "partially meeting expectations": False, "partially meeting": False, "not meeting expectations": False,
    "not meeting": False, "advanced": True, "proficient": True, "needs improvement": False, "warning": False,
    "failing": False, "warning/failing": False,
}


def _invalid(message: str) -> PydanticCustomError:
    # A custom error keeps the reason as written (a ValueError would be prefixed with "Value error, ").
    return PydanticCustomError("invalid_row_value", message)


def consecutive_years(value: str) -> str:
    start, end = int(value[:4]), int(value[5:])
    if end != (start + 1) % 100:
        raise _invalid("school_year must name two consecutive years, e.g. 2024-25")
    if not 1990 <= start <= 9998:  # a date's years end at 9999
        raise _invalid("school_year must be 1990-91 or later")
    return value


@functools.cache
def school_year_bounds(school_year: str) -> tuple[date, date]:
    """A school year runs from July 1 to June 30 (the state's reporting year)."""
    start = int(school_year[:4])
    return date(start, 7, 1), date(start + 1, 6, 30)


def _known_grade(value: str) -> str:
    if value not in GRADES:
        raise _invalid("grade must be K or 1 to 12")
    return value


def _subgroup_list(value: Any) -> Any:
    # A CSV cell holds the memberships separated by `;`; JSON sends a list.
    if isinstance(value, str):
        return [part for part in (piece.strip() for piece in value.split(";")) if part]
    return value


# The deployment's group codes, as the request checking the rows read them (`known_groups`). Checked outside a request,
# rows may name the groups every deployment has (the v1 events' ones).
_KNOWN_GROUPS: ContextVar[frozenset[str]] = ContextVar("known_groups", default=frozenset(Subgroup))


@contextlib.contextmanager
def known_groups(codes: frozenset[str]) -> Iterator[None]:
    """Rows checked within name only these groups (the deployment's vocabulary)."""
    token = _KNOWN_GROUPS.set(codes)
    try:
        yield
    finally:
        _KNOWN_GROUPS.reset(token)


def _known(code: str) -> str:
    if code not in _KNOWN_GROUPS.get():
        raise _invalid(f"{code!r} is not a student group of this deployment (GET /student-groups lists them; the state "
                       "adds one with POST /student-groups)")
    return code


def _sorted_unique(value: list[str]) -> list[str]:
    # One order for the same memberships, so a re-sent row in another order is not a change. Every student is in
    # all_students; storing it too would count them twice there.
    return sorted(set(value) - {Subgroup.ALL_STUDENTS})


STUDENT_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
StudentId = Annotated[str, Field(pattern=STUDENT_ID_PATTERN, examples=["S-000123"],
                                 description="The SIS's pseudonymous student id: letters, digits and `._:-`, never a name.")]
SchoolYear = Annotated[str, Field(pattern=r"^\d{4}-\d{2}$", examples=["2024-25"]), AfterValidator(consecutive_years)]
Grade = Annotated[str, BeforeValidator(grade_as_named), Field(examples=["7"], description="K or 1 to 12."), AfterValidator(_known_grade)]
Subgroups = Annotated[list[Annotated[GroupCode, AfterValidator(_known)]], BeforeValidator(_subgroup_list),
                      AfterValidator(_sorted_unique), Field(description=(
                          "The student's group memberships, codes of the deployment's student groups (`GET "
                          "/student-groups`; in CSV: separated by `;`); all_students is implied."))]
ShortText = Annotated[str, Field(min_length=1, max_length=100)]


@dataclass(frozen=True)
class Rule:
    """A check between fields: `check(field, value, data)` answers the field's value or raises. `data` holds the
    fields declared before it (as a model validator's `info.data` does): `reads` names those whose values the check
    reads, `reads_presence` those it only asks whether they are set (not None)."""

    check: Callable[[str, Any, Mapping[str, Any]], Any]
    reads: tuple[str, ...] = ()
    reads_presence: tuple[str, ...] = ()


class IngestRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    # The natural key's fields, and the rules between fields by the field they check: the model applies them one row
    # at a time, `columns.check_rows` once to each distinct combination of values in a batch.
    NATURAL_KEY: ClassVar[tuple[str, ...]]
    RULES: ClassVar[dict[str, Rule]]

    student_id: StudentId
    school_id: uuid.UUID

    def natural_key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.NATURAL_KEY)


def _score_on_the_scale(field: str, value: Decimal | None, data: Mapping[str, Any]) -> Decimal | None:
    namespace = data.get("assessment_namespace")
    if value is None or namespace is None:
        return value
    if "mcas" in namespace.lower():
        low, high = MCAS_SCALE
        if not low <= value <= high:
            raise _invalid(f"an MCAS scale_score is from {low} to {high}")
    elif value < 0:
        raise _invalid("scale_score cannot be negative")
    return value


def _in_the_school_year(field: str, value: date | None, data: Mapping[str, Any]) -> date | None:
    school_year = data.get("school_year")
    if value is None or school_year is None:
        return value
    first, last = school_year_bounds(school_year)
    if not first <= value <= last:
        raise _invalid(f"{field} must fall in school year {school_year} ({first} to {last})")
    entry = data.get("entry_date")
    if field == "exit_date" and entry is not None and value < entry:
        raise _invalid("exit_date cannot be before entry_date")
    return value


def _agrees_with_the_level(field: str, value: bool | None, data: Mapping[str, Any]) -> bool | None:
    level = data.get("performance_level")
    known = PROFICIENT_BY_LEVEL.get(level.lower()) if level else None
    if value is None:
        return known
    if known is not None and value != known:
        raise _invalid(f"performance_level {level!r} {'is' if known else 'is not'} proficient")
    return value


def _tested_or_not(field: str, value: str | None, data: Mapping[str, Any]) -> str | None:
    if value is not None:
        present = [name for name in ("scale_score", "performance_level", "growth_percentile") if data.get(name) is not None]
        if present:
            raise _invalid(f"a student who was not tested has no {', '.join(present)}")
        return value.lower()
    # Only when both were valid (a field that failed its own check is missing from data).
    if all(name in data and data[name] is None for name in ("scale_score", "performance_level")):
        raise _invalid("a row needs a scale_score or performance_level, or a not_tested_reason")
    return value


class ResultRow(IngestRow):
    """One student's result on one administration of one assessment, or why an enrolled student was not tested."""

    NATURAL_KEY = ("student_id", "assessment_namespace", "assessment_identifier", "school_year", "administration_date")
    RULES = {
        "administration_date": Rule(_in_the_school_year, reads=("school_year",)),
        "scale_score": Rule(_score_on_the_scale, reads=("assessment_namespace",)),
        "proficient": Rule(_agrees_with_the_level, reads=("performance_level",)),
        "not_tested_reason": Rule(_tested_or_not, reads_presence=("scale_score", "performance_level", "growth_percentile")),
    }

    # The field order matters: a field's checks read the fields declared before it.
    assessment_namespace: Annotated[str, Field(min_length=1, max_length=255, examples=["uri://doe.mass.edu/mcas"],
                                               description="Who defines the assessment; `mcas` in it means MCAS scales.")]
    assessment_identifier: Annotated[ShortText, Field(examples=["MCAS-G7-MATH"])]
    subject: Subject
    grade: Grade
    school_year: SchoolYear
    administration_date: date
    scale_score: Annotated[Decimal | None, Field(max_digits=7, decimal_places=2, description="MCAS: 440–560.")] = None
    performance_level: Annotated[str | None, Field(min_length=1, max_length=60, examples=["Meeting Expectations"])] = None
    proficient: Annotated[bool | None, Field(validate_default=True, description=(
        "Whether the level counts as proficient; derived from known levels (e.g. MCAS) when left out."))] = None
    growth_percentile: Annotated[Decimal | None, Field(ge=1, le=99, decimal_places=2)] = None
    not_tested_reason: Annotated[str | None, Field(min_length=1, max_length=60, validate_default=True, examples=["absent"],
                                                   description="Why an enrolled student has no score, e.g. absent, medical, exempt.")] = None
    subgroups: Subgroups = []
    edfi_identifier: Annotated[str | None, Field(min_length=1, max_length=255)] = None

    @field_validator(*RULES)
    @classmethod
    def _rules(cls, value: Any, info: ValidationInfo) -> Any:
        return cls.RULES[info.field_name].check(info.field_name, value, info.data)


class EnrollmentRow(IngestRow):
    """A student's enrollment at a school in a school year; participation = tested ÷ enrolled."""

    NATURAL_KEY = ("student_id", "school_id", "entry_date")
    RULES = {"entry_date": Rule(_in_the_school_year, reads=("school_year",)),
             "exit_date": Rule(_in_the_school_year, reads=("school_year", "entry_date"))}

    school_year: SchoolYear
    grade: Grade
    entry_date: date
    exit_date: date | None = None
    subgroups: Subgroups = []

    @field_validator(*RULES)
    @classmethod
    def _rules(cls, value: Any, info: ValidationInfo) -> Any:
        return cls.RULES[info.field_name].check(info.field_name, value, info.data)


Row = TypeVar("Row", bound=IngestRow)
RowError = dict[str, Any]  # {"row": int | None, "field": str | None, "reason": str}


@dataclass(frozen=True)
class ZoneSchool:
    """What a row is checked against of its school: the grades it teaches."""

    code: str
    name: str
    grade_span: str
    grades: frozenset[str]

    def not_taught(self, grade: str) -> str:
        return f"grade {grade} is not taught at {self.name} ({self.code}, grades {self.grade_span})"


ZoneSchools = Mapping[uuid.UUID, ZoneSchool]


def parse_row(model: type[Row], raw: Any, index: int, zone_schools: ZoneSchools) -> tuple[Row | None, list[RowError]]:
    """The row as `model`, or every reason it is invalid; its school must be one of `zone_schools`, teaching its
    grade."""
    if not isinstance(raw, dict):
        return None, [{"row": index, "field": None, "reason": "a row must be an object of named fields"}]
    try:
        row = model.model_validate(raw)
    except ValidationError as exc:
        return None, [{"row": index, "field": ".".join(map(str, error["loc"])) or None, "reason": _reason(error)}
                      for error in exc.errors(include_url=False, include_input=False)]
    school = zone_schools.get(row.school_id)
    if school is None:
        return None, [{"row": index, "field": "school_id", "reason": f"{row.school_id} is not a school of this zone"}]
    if row.grade not in school.grades:
        return None, [{"row": index, "field": "grade", "reason": school.not_taught(row.grade)}]
    return row, []


# What people know a school by is its state code; a row must name the school by its id in ezone.
SCHOOL_ID_REASON = ("must be the school's id in ezone, a UUID such as 3f2b6c1e-8d4a-4c3b-9a7e-1b2c3d4e5f60, not its "
                    "state code: GET /zones/{zone_id}/schools lists each school's `id` beside its `code`")


def _reason(error: Any) -> str:
    if error["loc"] == ("school_id",) and error["type"] in ("uuid_parsing", "uuid_type"):
        return SCHOOL_ID_REASON
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required"
    return error["msg"]


def foreign_rows(raw_rows: Sequence[Any], may_act_for_school: Callable[[str], bool]) -> list[int]:
    """Indexes of the rows whose `school_id` the caller may not act for (rows without one, or with a value that is no
    school id at all, such as a state code, are left to validation, which says what to send)."""
    if set(map(type, raw_rows)) == {dict}:
        school_ids = list(map(dict.get, raw_rows, repeat("school_id")))
    else:
        school_ids = [raw.get("school_id") if isinstance(raw, dict) else None for raw in raw_rows]
    # A batch names a handful of schools: each is asked about once.
    if set(map(type, school_ids)) <= {str, type(None)}:
        named = set(school_ids) - {None}
    else:
        named = {school for school in school_ids if isinstance(school, str)}
    refused = {school for school in named
               if (canonical := _canonical_uuid(school)) and not may_act_for_school(canonical)}
    return [index for index, school in enumerate(school_ids) if school in refused] if refused else []


def _canonical_uuid(value: str) -> str | None:
    # Tokens list schools in canonical form; a row may write the same id in capitals or without dashes.
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


class ResultBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Rows are checked by the service (every invalid row listed at once, `partial` keeps the others), not by the
    # request parser, which would stop the whole request at the first bad row in its own format.
    rows: Annotated[list[SkipValidation[ResultRow]], Field(min_length=1, description=f"1 to {MAX_ROWS:,} rows.")]


class EnrollmentBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: Annotated[list[SkipValidation[EnrollmentRow]], Field(min_length=1, description=f"1 to {MAX_ROWS:,} rows.")]


class RowErrorOut(BaseModel):
    row: int | None = Field(description="JSON: the row's index in `rows` (from 0). CSV: the line of the file the row "
                                        "starts on (the header is line 1). Null: the batch as a whole.")
    field: str | None
    reason: str


BatchStatus = Literal["receiving", "processing", "completed", "failed"]


class BatchSummary(BaseModel):
    batch_id: uuid.UUID
    zone_id: str
    source: str
    status: BatchStatus
    rows_received: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    errors: list[RowErrorOut] = Field(description="Every rejected row's reasons (a CSV upload lists its first 1,000).")
    changed: bool = Field(description="Whether the batch inserted or corrected anything.")
    message: str
    created_at: datetime
    completed_at: datetime | None
