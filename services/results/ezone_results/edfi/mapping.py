"""From Ed-Fi descriptors and references to ezone's vocabulary: grades, school years, subjects, scores.

Subject: Ed-Fi keeps it on the assessment, not on a student's result, so ezone takes it from the
extension `_ext.ezone.academicSubjectDescriptor` when sent, else from words in the assessment's
identifier or namespace (`SA-2011-Mathematics-Eighth grade` → MATH). Only ELA, MATH and SCI are
reviewed; a result of another subject (e.g. an ACT Composite) is refused, not stored. So is one that
gives neither a scale score, a performance level nor a reason it was not taken (e.g. raw scores only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from ezone_schemas.vocabulary import Subject

from .schemas import PerformanceLevel, StudentAssessment, StudentSchoolAssociation


def code_value(descriptor: str) -> str:
    """`uri://ed-fi.org/GradeLevelDescriptor#Sixth grade` → `Sixth grade`."""
    return descriptor.rsplit("#", 1)[-1].strip()


_GRADES = {
    "preschool/prekindergarten": "PK", "kindergarten": "K", "first grade": "1", "second grade": "2", "third grade": "3",
    "fourth grade": "4", "fifth grade": "5", "sixth grade": "6", "seventh grade": "7", "eighth grade": "8",
    "ninth grade": "9", "tenth grade": "10", "eleventh grade": "11", "twelfth grade": "12",
}

_SUBJECT_DESCRIPTORS = {
    "english language arts": Subject.ELA, "english": Subject.ELA, "reading": Subject.ELA, "writing": Subject.ELA,
    "critical reading": Subject.ELA, "language arts": Subject.ELA, "literacy": Subject.ELA,
    "mathematics": Subject.MATH, "math": Subject.MATH,
    "science": Subject.SCIENCE, "life and physical sciences": Subject.SCIENCE, "biology": Subject.SCIENCE,
    "chemistry": Subject.SCIENCE, "physics": Subject.SCIENCE,
}
_SUBJECT_WORDS = {
    Subject.ELA: re.compile(r"(?<![a-z])(ela|english|reading|writing|literacy)(?![a-z])", re.I),
    Subject.MATH: re.compile(r"(?<![a-z])(math|mathematics|algebra|geometry)(?![a-z])", re.I),
    Subject.SCIENCE: re.compile(r"(?<![a-z])(science|biology|chemistry|physics)(?![a-z])", re.I),
}

# Reporting methods ezone keeps: the field each fills and the bound its column takes.
_SCORES = {
    "scale score": ("scale_score", Decimal(100_000)), "scaled score": ("scale_score", Decimal(100_000)),
    "student growth percentile": ("growth_percentile", Decimal(100)), "growth percentile": ("growth_percentile", Decimal(100)),
}
# Negative words first: "Did Not Meet Standard" and "Partially Meeting" contain positive ones.
_NOT_PROFICIENT = re.compile(r"\b(not|partially|below|approaching|fail|failed|unsatisfactory|basic|minimal|warning)\b", re.I)
_PROFICIENT = re.compile(r"\b(met|meets|meeting|exceeds|exceeding|exceeded|proficient|advanced|pass|passed|mastery|"
                         r"distinguished|satisfactory|above)\b", re.I)


def grade_of(descriptor: str) -> str | None:
    return _GRADES.get(code_value(descriptor).lower())


def school_year_of(end_year: int) -> str:
    """Ed-Fi names a school year by the year it ends: 2025 → `2024-25`."""
    return f"{end_year - 1}-{end_year % 100:02d}"


def school_year_around(day: date) -> str:
    """Without a schoolYearTypeReference: school years run July to June."""
    return school_year_of(day.year + 1 if day.month >= 7 else day.year)


def subject_of(body: StudentAssessment) -> Subject | None:
    extension = body.ext.ezone if body.ext else None
    if extension and extension.academic_subject_descriptor:
        return _SUBJECT_DESCRIPTORS.get(code_value(extension.academic_subject_descriptor).lower())
    reference = body.assessment_reference
    return _subject_named(reference.assessment_identifier, reference.namespace)


@lru_cache(maxsize=4096)
def _subject_named(assessment_identifier: str, namespace: str) -> Subject | None:
    # Cached: an SIS sends thousands of results of the same few assessments, and the search costs more than the
    # rest of mapping a result.
    named = {s for s, words in _SUBJECT_WORDS.items() if words.search(f"{assessment_identifier} {namespace}")}
    return named.pop() if len(named) == 1 else None


def proficiency_of(level: PerformanceLevel) -> bool | None:
    if level.performance_level_met is not None:
        return level.performance_level_met
    name = code_value(level.performance_level_descriptor)
    if _NOT_PROFICIENT.search(name):
        return False
    return True if _PROFICIENT.search(name) else None


@dataclass(frozen=True)
class ResultValues:
    """What ezone keeps of one studentAssessment (the school is resolved separately)."""

    student_id: str
    assessment_namespace: str
    assessment_identifier: str
    edfi_identifier: str
    subject: Subject
    grade: str
    school_year: str
    administration_date: date
    scale_score: Decimal | None
    performance_level: str | None
    proficient: bool | None
    growth_percentile: Decimal | None
    not_tested_reason: str | None


def _number(text: str, limit: Decimal) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and abs(value) < limit else None


def result_values(body: StudentAssessment) -> tuple[ResultValues | None, dict[str, list[str]]]:
    """The values to store, or every reason they cannot be stored, keyed by JSON path."""
    errors: dict[str, list[str]] = {}
    subject = subject_of(body)
    if subject is None:
        errors["$._ext.ezone.academicSubjectDescriptor"] = [
            f"The subject of assessment {body.assessment_reference.assessment_identifier!r} is not one ezone reviews "
            "(English language arts, Mathematics, Science) or cannot be told from its identifier; send it here."
        ]
    grade = None
    if body.when_assessed_grade_level_descriptor is None:
        errors["$.whenAssessedGradeLevelDescriptor"] = ["whenAssessedGradeLevelDescriptor is required."]
    elif (grade := grade_of(body.when_assessed_grade_level_descriptor)) is None:
        errors["$.whenAssessedGradeLevelDescriptor"] = ["Must be a grade from Preschool/Prekindergarten to Twelfth grade."]
    scores: dict[str, Decimal] = {}
    for i, score in enumerate(body.score_results):
        kind = _SCORES.get(code_value(score.assessment_reporting_method_descriptor).lower())
        if kind is None:
            continue  # raw scores, Lexile measures, ...: ezone does not use them
        field, limit = kind
        if (value := _number(score.result, limit)) is None:
            errors[f"$.scoreResults[{i}].result"] = [f"Must be a number below {limit}; got {score.result!r}."]
        else:
            scores[field] = value
    # The proficiency level when one is reported as such, else the first level given.
    levels = sorted(body.performance_levels, key=lambda level: "proficiency" not in level.assessment_reporting_method_descriptor.lower())
    level = levels[0] if levels else None
    if body.reason_not_tested_descriptor and (scores.get("scale_score") is not None or level):
        errors["$.reasonNotTestedDescriptor"] = ["A student who was not tested has no scale score or performance level."]
    elif not (body.reason_not_tested_descriptor or "scale_score" in scores or level
              or any(path.startswith("$.scoreResults") for path in errors)):
        # Metrics count a row without either as a student who did not test (a false participation drop).
        errors["$.scoreResults"] = ["ezone needs a `Scale score` result, a performance level or a reasonNotTestedDescriptor; "
                                    "other scores (raw, composite, Lexile) alone are not used."]
    if errors or subject is None or grade is None:
        return None, errors
    administered = body.administration_date.date()
    year = body.school_year_type_reference
    return ResultValues(
        student_id=body.student_reference.student_unique_id,
        assessment_namespace=body.assessment_reference.namespace,
        assessment_identifier=body.assessment_reference.assessment_identifier,
        edfi_identifier=body.student_assessment_identifier,
        subject=subject,
        grade=grade,
        school_year=school_year_of(year.school_year) if year else school_year_around(administered),
        administration_date=administered,
        scale_score=scores.get("scale_score"),
        performance_level=code_value(level.performance_level_descriptor) if level else None,
        proficient=proficiency_of(level) if level else None,
        growth_percentile=scores.get("growth_percentile"),
        not_tested_reason=code_value(body.reason_not_tested_descriptor).lower() if body.reason_not_tested_descriptor else None,
    ), {}


@dataclass(frozen=True)
class EnrollmentValues:
    student_id: str
    grade: str
    school_year: str
    entry_date: date
    exit_date: date | None


def enrollment_values(body: StudentSchoolAssociation) -> tuple[EnrollmentValues | None, dict[str, list[str]]]:
    grade = grade_of(body.entry_grade_level_descriptor)
    if grade is None:
        return None, {"$.entryGradeLevelDescriptor": ["Must be a grade from Preschool/Prekindergarten to Twelfth grade."]}
    year = body.school_year_type_reference
    return EnrollmentValues(
        student_id=body.student_reference.student_unique_id,
        grade=grade,
        school_year=school_year_of(year.school_year) if year else school_year_around(body.entry_date),
        entry_date=body.entry_date,
        exit_date=body.exit_withdraw_date,
    ), {}
