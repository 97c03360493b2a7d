"""The zone's assessments, as their Ed-Fi `assessments` documents describe them: subject, category, grades, the
range of each score and the performance levels each reporting method may take. A student's result is checked
against its own assessment (never against guesses from its identifier), and takes its subject from it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import text

from .reads import Reader
from .referential import referential_id
from .mapping import code_value, grade_of, subject_of_descriptor


def _number(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


@dataclass(frozen=True)
class Assessment:
    namespace: str
    identifier: str
    title: str
    subject: str  # ELA / MATH / SCI when ezone reviews the subject, else the descriptor's code value
    category: str | None
    grades: frozenset[str]
    # Reporting method (code value, lower case) → (minimum, maximum) when the assessment declares numbers.
    score_ranges: dict[str, tuple[Decimal, Decimal]]
    # Reporting method (lower case) → the performance level descriptors it may report.
    levels: dict[str, frozenset[str]]

    @classmethod
    def of(cls, document: dict[str, Any]) -> Assessment:
        subjects = [item.get("academicSubjectDescriptor", "") for item in document.get("academicSubjects") or []]
        reviewed = [subject for descriptor in subjects if (subject := subject_of_descriptor(descriptor))]
        ranges = {}
        for score in document.get("scores") or []:
            low, high = _number(score.get("minimumScore")), _number(score.get("maximumScore"))
            if low is not None and high is not None:
                ranges[code_value(score.get("assessmentReportingMethodDescriptor", "")).lower()] = (low, high)
        levels: dict[str, set[str]] = {}
        for level in document.get("performanceLevels") or []:
            method = code_value(level.get("assessmentReportingMethodDescriptor", "")).lower()
            levels.setdefault(method, set()).add(level.get("performanceLevelDescriptor", ""))
        grades = {grade for item in document.get("assessedGradeLevels") or []
                  if (grade := grade_of(item.get("gradeLevelDescriptor", "")))}
        category = document.get("assessmentCategoryDescriptor")
        return cls(
            namespace=document["namespace"], identifier=document["assessmentIdentifier"],
            title=document.get("assessmentTitle", ""),
            subject=str(reviewed[0]) if reviewed else code_value(subjects[0]) if subjects else "",
            category=code_value(category) if category else None, grades=frozenset(grades), score_ranges=ranges,
            levels={method: frozenset(values) for method, values in levels.items()})


class Assessments:
    """The zone's assessments by (namespace, identifier), cached in the process: reloaded when this process
    changes one, and otherwise at most a minute old (a change made through another process)."""

    MAX_AGE_S = 60.0

    def __init__(self) -> None:
        self._cached: dict[tuple[str, str, str], tuple[float, Assessment | None]] = {}

    def forget(self, zone_id: str, namespace: str, identifier: str) -> None:
        self._cached.pop((zone_id, namespace, identifier), None)

    async def get(self, conn: Reader, zone_id: str, namespace: str, identifier: str) -> Assessment | None:
        key = (zone_id, namespace, identifier)
        cached = self._cached.get(key)
        if cached is not None and cached[1] is not None and time.monotonic() - cached[0] < self.MAX_AGE_S:
            return cached[1]
        document = (await conn.execute(text("SELECT document FROM results.edfi_documents WHERE referential_id = :ref"), {
            "ref": referential_id(zone_id, "assessments", {"assessmentIdentifier": identifier, "namespace": namespace})
        })).scalar()
        assessment = Assessment.of(document) if document is not None else None
        self._cached[key] = (time.monotonic(), assessment)
        return assessment

