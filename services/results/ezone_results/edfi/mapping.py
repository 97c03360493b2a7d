"""From Ed-Fi documents to ezone's rows: grades, school years, subjects and scores.

A studentAssessment takes its subject from its assessment (`academicSubjects`), never from words in an
identifier: English language arts, Mathematics and Science are the subjects ezone reviews (ELA, MATH, SCI);
any other (an ACT Composite) is kept under its own code value. Which results count for accountability is the
zone's policy, not this mapping's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
import re
from typing import TYPE_CHECKING, Any

from ezone_schemas.vocabulary import Subject

if TYPE_CHECKING:
    from .assessments import Assessment


def code_value(descriptor: str) -> str:
    """`uri://ed-fi.org/GradeLevelDescriptor#Sixth grade` → `Sixth grade`."""
    return descriptor.rsplit("#", 1)[-1].strip()


_GRADES = {
    "preschool/prekindergarten": "PK", "kindergarten": "K", "first grade": "1", "second grade": "2", "third grade": "3",
    "fourth grade": "4", "fifth grade": "5", "sixth grade": "6", "seventh grade": "7", "eighth grade": "8",
    "ninth grade": "9", "tenth grade": "10", "eleventh grade": "11", "twelfth grade": "12",
}
GRADE_ORDER = ("PK", "K", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12")

_SUBJECT_DESCRIPTORS = {
    "english language arts": Subject.ELA, "english": Subject.ELA, "reading": Subject.ELA, "writing": Subject.ELA,
    "critical reading": Subject.ELA, "language arts": Subject.ELA, "literacy": Subject.ELA,
    "mathematics": Subject.MATH, "math": Subject.MATH,
    "science": Subject.SCIENCE, "life and physical sciences": Subject.SCIENCE, "biology": Subject.SCIENCE,
    "chemistry": Subject.SCIENCE, "physics": Subject.SCIENCE,
}

# Reporting methods ezone keeps in its own columns.
_SCALE_SCORE = {"scale score", "scaled score"}
_GROWTH = {"student growth percentile", "growth percentile"}
# Negative words first: "Did Not Meet Standard" and "Partially Meeting" contain positive ones.
_NOT_PROFICIENT = re.compile(r"\b(not|partially|below|approaching|fail|failed|unsatisfactory|basic|minimal|warning)\b", re.I)
_PROFICIENT = re.compile(r"\b(met|meets|meeting|exceeds|exceeding|exceeded|proficient|advanced|pass|passed|mastery|"
                         r"distinguished|satisfactory|above)\b", re.I)


def grade_of(descriptor: str) -> str | None:
    return _GRADES.get(code_value(descriptor).lower())


def subject_of_descriptor(descriptor: str) -> Subject | None:
    return _SUBJECT_DESCRIPTORS.get(code_value(descriptor).lower())


def school_year_of(end_year: int) -> str:
    """Ed-Fi names a school year by the year it ends: 2025 → `2024-25`."""
    return f"{end_year - 1}-{end_year % 100:02d}"


def school_year_around(day: date) -> str:
    """Without a schoolYearTypeReference: school years run July to June."""
    return school_year_of(day.year + 1 if day.month >= 7 else day.year)


def grades_in_span(span: str) -> frozenset[str]:
    """`6-8` → {6, 7, 8}; `K-5`, `PK-12`, `9`; an unreadable span allows every grade."""
    low, _, high = span.upper().replace("–", "-").partition("-")
    low, high = low.strip(), (high or low).strip()
    if low not in GRADE_ORDER or high not in GRADE_ORDER:
        return frozenset(GRADE_ORDER)
    return frozenset(GRADE_ORDER[GRADE_ORDER.index(low):GRADE_ORDER.index(high) + 1])


def proficiency_of(level: dict[str, Any]) -> bool | None:
    if isinstance(met := level.get("performanceLevelMet"), bool):
        return met
    name = code_value(level.get("performanceLevelDescriptor", ""))
    if _NOT_PROFICIENT.search(name):
        return False
    return True if _PROFICIENT.search(name) else None


def _number(value: str) -> Decimal | None:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _day(value: str) -> date:
    return datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value)


@dataclass(frozen=True)
class ResultValues:
    """What ezone keeps of one studentAssessment in student_results (the school is resolved separately)."""

    student_id: str
    assessment_namespace: str
    assessment_identifier: str
    edfi_identifier: str
    subject: str
    assessment_category: str | None
    grade: str | None
    school_year: str
    administration_date: date
    scale_score: Decimal | None
    performance_level: str | None
    proficient: bool | None
    growth_percentile: Decimal | None
    not_tested_reason: str | None

    @property
    def result_key(self) -> str:
        """The result these values are one record of: the same student, assessment, school year and day."""
        return "|".join((self.student_id, self.assessment_namespace, self.assessment_identifier, self.school_year,
                         self.administration_date.isoformat()))


def result_values(document: dict[str, Any], assessment: Assessment) -> tuple[ResultValues | None, dict[str, list[str]]]:
    """The values to store, or every reason they cannot be, by JSON path: scores outside the assessment's declared
    range, a performance level it does not declare, a result and a reason it was not taken at once. (None, no
    errors): a record without an administrationDate."""
    errors: dict[str, list[str]] = {}
    name = f"{assessment.identifier!r} ({assessment.namespace})"
    scores: dict[str, Decimal] = {}
    for i, score in enumerate(document.get("scoreResults") or []):
        method = code_value(score["assessmentReportingMethodDescriptor"])
        value = _number(score["result"])
        declared = assessment.score_ranges.get(method.lower())
        if declared is not None:
            low, high = declared
            if value is None or not low <= value <= high:
                errors[f"$.scoreResults[{i}].result"] = [
                    f"{score['result']!r} is outside assessment {name}'s {method} range, {low} to {high}."]
                continue
        if value is None:
            continue  # a score the assessment declares no numbers for, and ezone stores in no column
        if method.lower() in _SCALE_SCORE:
            scores["scale_score"] = value
        elif method.lower() in _GROWTH:
            if not 0 <= value <= 100:
                errors[f"$.scoreResults[{i}].result"] = [f"A growth percentile is 0 to 100; got {score['result']!r}."]
            scores["growth_percentile"] = value
    levels = document.get("performanceLevels") or []
    for i, level in enumerate(levels):
        method = code_value(level["assessmentReportingMethodDescriptor"])
        declared_levels = assessment.levels.get(method.lower())
        if declared_levels and level["performanceLevelDescriptor"] not in declared_levels:
            errors[f"$.performanceLevels[{i}].performanceLevelDescriptor"] = [
                f"Assessment {name} reports {method} as one of {', '.join(sorted(map(code_value, declared_levels)))}; "
                f"got {code_value(level['performanceLevelDescriptor'])!r}."]
    # The proficiency level when one is reported as such, else the first level given.
    ranked = sorted(levels, key=lambda level: "proficiency" not in level["assessmentReportingMethodDescriptor"].lower())
    level = ranked[0] if ranked else None
    not_tested = document.get("reasonNotTestedDescriptor")
    if not_tested and ("scale_score" in scores or level):
        errors["$.reasonNotTestedDescriptor"] = ["A student who was not tested has no scale score or performance level."]
    if "administrationDate" not in document:
        # Optional in Ed-Fi: such a record is kept, but without its day it makes no result of ezone's.
        return None, errors
    administered = _day(document["administrationDate"])
    # A result counts in the school year it was taken in. An SIS may file last spring's state test under the
    # year it loaded it in (schoolYearTypeReference); the record is kept as sent, the result goes by its date.
    school_year = school_year_around(administered)
    grade = None
    if descriptor := document.get("whenAssessedGradeLevelDescriptor"):
        if (grade := grade_of(descriptor)) is None:
            errors["$.whenAssessedGradeLevelDescriptor"] = ["Must be a grade from Preschool/Prekindergarten to Twelfth grade."]
    elif len(assessment.grades) == 1:
        [grade] = assessment.grades
    if errors:
        return None, errors
    return ResultValues(
        student_id=document["studentReference"]["studentUniqueId"],
        assessment_namespace=assessment.namespace,
        assessment_identifier=assessment.identifier,
        edfi_identifier=document["studentAssessmentIdentifier"],
        subject=assessment.subject,
        assessment_category=assessment.category,
        grade=grade,
        school_year=school_year,
        administration_date=administered,
        scale_score=scores.get("scale_score"),
        performance_level=code_value(level["performanceLevelDescriptor"]) if level else None,
        proficient=proficiency_of(level) if level else None,
        growth_percentile=scores.get("growth_percentile"),
        not_tested_reason=code_value(not_tested).lower() if not_tested else None,
    ), {}


@dataclass(frozen=True)
class EnrollmentValues:
    student_id: str
    grade: str
    school_year: str
    entry_date: date
    exit_date: date | None


def enrollment_values(document: dict[str, Any]) -> tuple[EnrollmentValues | None, dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    grade = grade_of(document["entryGradeLevelDescriptor"])
    if grade is None:
        errors["$.entryGradeLevelDescriptor"] = ["Must be a grade from Preschool/Prekindergarten to Twelfth grade."]
    entry = date.fromisoformat(document["entryDate"])
    exit_date = date.fromisoformat(document["exitWithdrawDate"]) if document.get("exitWithdrawDate") else None
    if exit_date is not None and exit_date < entry:
        errors["$.exitWithdrawDate"] = ["must not be before entryDate"]
    if errors or grade is None:
        return None, errors
    year = document.get("schoolYearTypeReference")
    return EnrollmentValues(
        student_id=document["studentReference"]["studentUniqueId"],
        grade=grade,
        school_year=school_year_of(int(year["schoolYear"])) if year else school_year_around(entry),
        entry_date=entry,
        exit_date=exit_date,
    ), {}
