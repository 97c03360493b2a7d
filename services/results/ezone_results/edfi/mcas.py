"""Massachusetts' state test (Next-Generation MCAS, grades 3–8) as Ed-Fi describes an assessment: what a
Massachusetts zone's assessment vendor posts before its students' results, and what `ezone up` posts for the
demo zone. The identifiers are the ones ezone's JSON and CSV rows name (`MCAS-G7-MATH`)."""

from __future__ import annotations

from typing import Any

NAMESPACE = "uri://doe.mass.edu/mcas"
LEVEL_NAMESPACE = "uri://doe.mass.edu/PerformanceLevelDescriptor"
SCALE = ("440", "560")
# The achievement levels and their scale-score ranges.
LEVELS = (("Not Meeting Expectations", "440", "469"), ("Partially Meeting Expectations", "470", "499"),
          ("Meeting Expectations", "500", "529"), ("Exceeding Expectations", "530", "560"))
PROFICIENT = ("Meeting Expectations", "Exceeding Expectations")
_SUBJECTS = {"ELA": "English Language Arts", "MATH": "Mathematics", "SCI": "Science"}
_GRADES = {"3": "Third grade", "4": "Fourth grade", "5": "Fifth grade", "6": "Sixth grade", "7": "Seventh grade",
           "8": "Eighth grade"}
_ED_FI = "uri://ed-fi.org"


def identifier(grade: str, subject: str) -> str:
    return f"MCAS-G{grade}-{subject}"


def level_descriptors() -> list[dict[str, str]]:
    """The achievement levels, as PerformanceLevelDescriptors (Ed-Fi's defaults do not have them)."""
    return [{"namespace": LEVEL_NAMESPACE, "codeValue": name, "shortDescription": name,
             "description": f"MCAS achievement level: {name} (scale score {low}–{high})"} for name, low, high in LEVELS]


def assessments() -> list[dict[str, Any]]:
    """ELA and mathematics in grades 3–8, science in grades 5 and 8."""
    tested = [(grade, subject) for grade in _GRADES for subject in ("ELA", "MATH")]
    tested += [("5", "SCI"), ("8", "SCI")]
    method = f"{_ED_FI}/AssessmentReportingMethodDescriptor#"
    integer = f"{_ED_FI}/ResultDatatypeTypeDescriptor#Integer"
    return [{
        "assessmentIdentifier": identifier(grade, subject),
        "namespace": NAMESPACE,
        "assessmentTitle": f"MCAS Grade {grade} {_SUBJECTS[subject]}",
        "assessmentCategoryDescriptor": f"{_ED_FI}/AssessmentCategoryDescriptor#State summative assessment 3-8 general",
        "academicSubjects": [{"academicSubjectDescriptor": f"{_ED_FI}/AcademicSubjectDescriptor#{_SUBJECTS[subject]}"}],
        "assessedGradeLevels": [{"gradeLevelDescriptor": f"{_ED_FI}/GradeLevelDescriptor#{_GRADES[grade]}"}],
        "scores": [{"assessmentReportingMethodDescriptor": f"{method}Scale score", "minimumScore": SCALE[0],
                    "maximumScore": SCALE[1], "resultDatatypeTypeDescriptor": integer}],
        "performanceLevels": [{"assessmentReportingMethodDescriptor": f"{method}Proficiency level",
                               "performanceLevelDescriptor": f"{LEVEL_NAMESPACE}#{name}", "minimumScore": low,
                               "maximumScore": high, "resultDatatypeTypeDescriptor": integer}
                              for name, low, high in LEVELS],
    } for grade, subject in tested]
