"""Reading a DESE MCAS school-level file (`grades_3-8_<subgroup>_<year>.csv`) as it streams in.

One row per school and subject, of one student group: the file's `student_group` label names it, as the deployment's
group vocabulary says (`ezone_results.groups`); a file without the column is of all students. ezone reads the columns
it stores and nothing else: `ach_pctl` (the state's achievement percentile) is never read, because ezone ranks
schools itself.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from ezone_schemas.vocabulary import METRIC_RANGES, Metric, Subgroup, Subject

from ..groups.vocabulary import how_to_add, label_key

# The `student_group` labels of the groups every vocabulary has (the v1 events' groups): what a reader given no
# vocabulary knows. A service reader is given the deployment's labels.
STUDENT_GROUPS = {
    "el": Subgroup.ENGLISH_LEARNERS, "high needs": Subgroup.HIGH_NEEDS, "students with disabilities": Subgroup.STUDENTS_WITH_DISABILITIES,
    "low-income": Subgroup.LOW_INCOME, "afr.american/black": Subgroup.AFRICAN_AMERICAN_BLACK,
    "hispanic/latino": Subgroup.HISPANIC_LATINO, "white": Subgroup.WHITE, "asian": Subgroup.ASIAN,
    "multi-race, non-hispanic/latino": Subgroup.MULTI_RACE, "all students": Subgroup.ALL_STUDENTS,
}
REQUIRED = ("school_name", "school_code", "subject", "me_percent", "num_of_students_included", "avg_scaled_score", "sgp", "year")
OPTIONAL = ("part_rate_percent", "student_group")  # older files have no participation rate
MAX_ROWS = 50_000
MAX_ERRORS = 100


def school_year_of(mcas_year: int) -> str:
    """MCAS is given in the spring: the 2022 tests belong to school year 2021-22."""
    return f"{mcas_year - 1}-{mcas_year % 100:02d}"


@dataclass(frozen=True)
class AggregateRow:
    school_code: str  # zero-padded to DESE's eight digits; the state total is 00000000
    school_name: str
    school_year: str
    subject: Subject
    subgroup: str  # a code of the group vocabulary
    n_tested: int | None
    proficiency_rate: Decimal | None
    average_scaled_score: Decimal | None
    median_growth_percentile: Decimal | None
    participation_rate: Decimal | None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.school_code, self.school_year, self.subject, self.subgroup

    def column(self, name: str) -> object:
        value = getattr(self, name)
        return value.value if isinstance(value, Enum) else value


class _Invalid(ValueError):
    pass


class _Repeated(_Invalid):
    """A row refused for a reason already listed at an earlier line."""


def _number(text: str) -> Decimal | None:
    # DESE pads numbers with spaces and writes thousands with commas: "       1,315".
    cleaned = text.strip().replace(",", "")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise _Invalid(f"{text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise _Invalid(f"{text.strip()!r} is not a number")
    return value


def _count(text: str) -> int | None:
    value = _number(text)
    if value is not None and (value < 0 or value != value.to_integral_value()):
        raise _Invalid(f"{value} is not a count")
    return None if value is None else int(value)


def _metric(metric: Metric) -> Callable[[str], Decimal | None]:
    low, high = METRIC_RANGES[metric]

    def parse(text: str) -> Decimal | None:
        value = _number(text)
        if value is not None and not low <= value <= high:
            raise _Invalid(f"{value} is outside {low:g}–{high:g}")
        return value

    return parse


@dataclass
class McasReader:
    """Feed it the file chunk by chunk; it keeps the parsed rows and every error (by line, from 1 = header)."""

    subgroup: str | None = None
    school_year: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: dict(STUDENT_GROUPS))  # label (lower case) -> code
    rows: list[AggregateRow] = field(default_factory=list)
    errors: list[dict[str, object]] = field(default_factory=list)
    lines: int = 0
    _columns: dict[str, int] | None = None
    _pending: str = ""
    _seen: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    _width: int = 0
    error_count: int = 0
    _unreadable: bool = False
    _unknown_labels: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._parsers: dict[str, Callable[[str], Any]] = {
            "school_code": self._code, "subject": self._subject, "year": self._year, "student_group": self._subgroup,
            "num_of_students_included": _count, "me_percent": _metric(Metric.PROFICIENCY_RATE),
            "avg_scaled_score": _metric(Metric.AVERAGE_SCALED_SCORE), "sgp": _metric(Metric.MEDIAN_GROWTH_PERCENTILE),
            "part_rate_percent": _metric(Metric.PARTICIPATION_RATE),
        }

    def feed(self, chunk: bytes) -> None:
        if self._unreadable:
            return
        try:
            text = self._pending + self._decoder.decode(chunk)
        except UnicodeDecodeError:
            self._error(None, None, "the file is not UTF-8 text")
            self._unreadable = True
            return
        *complete, self._pending = text.split("\n")
        for line in complete:
            self._line(line)

    def close(self) -> None:
        if self._pending.strip() and not self._unreadable:
            self._line(self._pending)
        if self._columns is None:
            self._error(None, None, "the file is empty")

    @property
    def too_long(self) -> bool:
        return len(self.rows) > MAX_ROWS

    def _error(self, line: int | None, column: str | None, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"row": line, "field": column, "reason": reason})

    def _line(self, line: str) -> None:
        self.lines += 1
        line = line.rstrip("\r")
        if not line.strip():
            return
        cells = next(csv.reader([line]))
        if self._columns is None:
            self._header(cells)
        elif self._columns:
            self._row(cells)

    def _header(self, cells: list[str]) -> None:
        positions = {name.strip(): i for i, name in enumerate(cells)}
        missing = [name for name in REQUIRED if name not in positions]
        if missing:
            self._error(1, None, f"not an MCAS school file: no column(s) {', '.join(missing)}")
            self._columns = {}
            return
        self._columns = {name: positions[name] for name in (*REQUIRED, *OPTIONAL) if name in positions}
        self._width = len(cells)

    def _row(self, cells: list[str]) -> None:
        line, columns = self.lines, self._columns or {}

        def cell(name: str) -> str:
            return cells[columns[name]] if name in columns else ""

        if len(cells) < self._width:
            self._error(line, None, f"{len(cells)} cells; the header has {self._width}")
            return
        parsed: dict[str, Any] = {}
        for name, parse in self._parsers.items():
            try:
                parsed[name] = parse(cell(name))
            except _Repeated:
                pass
            except _Invalid as exc:
                self._error(line, name, str(exc))
        if len(parsed) < len(self._parsers):
            return
        row = AggregateRow(
            school_code=parsed["school_code"], school_name=cell("school_name").split(" - ", 1)[-1].strip(),
            school_year=parsed["year"], subject=parsed["subject"], subgroup=parsed["student_group"],
            n_tested=parsed["num_of_students_included"], proficiency_rate=parsed["me_percent"],
            average_scaled_score=parsed["avg_scaled_score"], median_growth_percentile=parsed["sgp"],
            participation_rate=parsed["part_rate_percent"],
        )
        if (first := self._seen.setdefault(row.key, line)) != line:
            self._error(line, None, f"the same school, subject and subgroup as line {first}")
            return
        self.rows.append(row)

    @staticmethod
    def _code(text: str) -> str:
        code = text.strip()
        if not code.isdigit() or len(code) > 8:
            raise _Invalid(f"{code!r} is not a DESE school code (up to 8 digits)")
        return code.zfill(8)

    @staticmethod
    def _subject(text: str) -> Subject:
        try:
            return Subject(text.strip().upper())
        except ValueError:
            raise _Invalid(f"{text.strip()!r} is not ELA, MATH or SCI") from None

    def _year(self, text: str) -> str:
        year = text.strip()
        if not (year.isdigit() and len(year) == 4):
            raise _Invalid(f"{year!r} is not a year")
        school_year = school_year_of(int(year))
        if self.school_year is not None and school_year != self.school_year:
            raise _Invalid(f"MCAS {year} is school year {school_year}, not {self.school_year} as the request says")
        return school_year

    def _subgroup(self, text: str) -> str:
        named = label_key(text)
        if not named:  # all-students files have no student_group column
            return self.subgroup or Subgroup.ALL_STUDENTS
        code = self.labels.get(named)
        if code is None:
            if named in self._unknown_labels:  # said once, at its first row: the row is refused all the same
                raise _Repeated
            self._unknown_labels.add(named)
            raise _Invalid(f"{text.strip()!r} names no student group of this deployment (here and at every later line "
                           f"that names it): {how_to_add(text)}; then send the file again")
        if self.subgroup is not None and code != self.subgroup:
            raise _Invalid(f"the file is for {code}, not {self.subgroup} as the request says")
        return code
