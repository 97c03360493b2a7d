"""The Ed-Fi sample district's assessment data (Grand Bend ISD, Data Standard 5.2 interchange XML in
`shared/data/edfi/`) as the Ed-Fi API's JSON: one document per record, one JSON Lines file per resource, as an
Ed-Fi loader (lightbeam) sends them.

The conversion is written out element by element (`_ASSESSMENT`, `_STUDENT_ASSESSMENT`, ...), with the JSON names
of Data Standard 5.2 as the Ed-Fi ODS/API and Data Management Service publish them: camelCase; a descriptor takes
the `Descriptor` suffix; a repeated element becomes the collection Ed-Fi names (`<AssessmentScore>` → `scores[]`,
`<AcademicSubject>` → `academicSubjects[].academicSubjectDescriptor`, `<StudentAssessmentItem>` → `items[]`);
`<XReference><XIdentity>…` becomes `xReference: {…}` with the identity's fields (those of a nested reference
included); `<SchoolYear>2021-2022</SchoolYear>` becomes `schoolYearTypeReference: {"schoolYear": 2022}`; integers
and decimals Ed-Fi types as such are JSON numbers, `MinimumScore`/`MaximumScore`/`Result` stay strings. An element
the tables do not name stops the conversion (`UnknownElement`): nothing is left out without saying so.

The files name no school: `student_school_associations` makes the enrollments that place each student.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ezone.demo import default_data_dir

EDFI_DIR = default_data_dir() / "edfi"
NS = "{http://ed-fi.org/5.2.0}"

# The four resources the sample files hold, in the order a loader sends them (each refers only to earlier ones).
RESOURCES = ("assessments", "objectiveAssessments", "assessmentItems", "studentAssessments")


class UnknownElement(ValueError):
    """An element of the sample files the conversion has no rule for."""


# --- the rules ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Value:
    """A simple element → `name`: a string, or typed: `descriptor` (`uri://…#Code`), `integer`, `number`, `boolean`."""

    name: str
    kind: str = "string"


@dataclass(frozen=True)
class Collection:
    """A repeated element → the array `name`; each item is an object by `item`, or a one-descriptor object."""

    name: str
    item: Mapping[str, Any] | Value


@dataclass(frozen=True)
class Group:
    """A complex element (not repeated) → the object `name`."""

    name: str
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class Reference:
    """`<XReference><XIdentity>…</XIdentity></XReference>` → `name: {identity fields}`."""

    name: str


@dataclass(frozen=True)
class ReferenceItem:
    """A repeated reference → the array `name` of `{reference: {identity fields}}`."""

    name: str
    reference: str


@dataclass(frozen=True)
class SchoolYear:
    """`2021-2022` → `name: {"schoolYear": 2022}` (the API names a school year by the calendar year it ends in)."""

    name: str


def _d(name: str) -> Value:
    return Value(name, "descriptor")


_SCORE = {  # AssessmentScore (of an assessment or objective assessment)
    "AssessmentReportingMethod": _d("assessmentReportingMethodDescriptor"),
    "MinimumScore": Value("minimumScore"),
    "MaximumScore": Value("maximumScore"),
    "ResultDatatypeType": _d("resultDatatypeTypeDescriptor"),
}
_PERFORMANCE_LEVEL = {  # AssessmentPerformanceLevel
    "PerformanceLevel": _d("performanceLevelDescriptor"),
    "AssessmentReportingMethod": _d("assessmentReportingMethodDescriptor"),
    "MinimumScore": Value("minimumScore"),
    "MaximumScore": Value("maximumScore"),
    "ResultDatatypeType": _d("resultDatatypeTypeDescriptor"),
    "PerformanceLevelIndicatorName": Value("performanceLevelIndicatorName"),
}
_SCORE_RESULT = {  # ScoreResult (of a student's assessment or objective assessment)
    "AssessmentReportingMethod": _d("assessmentReportingMethodDescriptor"),
    "Result": Value("result"),
    "ResultDatatypeType": _d("resultDatatypeTypeDescriptor"),
}
_STUDENT_PERFORMANCE_LEVEL = {  # PerformanceLevel (a student's)
    "PerformanceLevel": _d("performanceLevelDescriptor"),
    "AssessmentReportingMethod": _d("assessmentReportingMethodDescriptor"),
    "PerformanceLevelIndicatorName": Value("performanceLevelIndicatorName"),
}

_ASSESSMENT = {
    "AssessmentIdentifier": Value("assessmentIdentifier"),
    "Namespace": Value("namespace"),
    "AssessmentTitle": Value("assessmentTitle"),
    "AssessmentIdentificationCode": Collection("identificationCodes", {
        "IdentificationCode": Value("identificationCode"),
        "AssessmentIdentificationSystem": _d("assessmentIdentificationSystemDescriptor"),
        "AssigningOrganizationIdentificationCode": Value("assigningOrganizationIdentificationCode"),
    }),
    "AssessmentCategory": _d("assessmentCategoryDescriptor"),
    "AcademicSubject": Collection("academicSubjects", _d("academicSubjectDescriptor")),
    "AssessedGradeLevel": Collection("assessedGradeLevels", _d("gradeLevelDescriptor")),
    "AssessmentScore": Collection("scores", _SCORE),
    "AssessmentPerformanceLevel": Collection("performanceLevels", _PERFORMANCE_LEVEL),
    "AssessmentPeriod": Collection("periods", {
        "AssessmentPeriod": _d("assessmentPeriodDescriptor"),
        "BeginDate": Value("beginDate"),
        "EndDate": Value("endDate"),
    }),
    "ContentStandard": Group("contentStandard", {
        "Title": Value("title"),
        "PublicationYear": Value("publicationYear", "integer"),
    }),
    "AssessmentVersion": Value("assessmentVersion", "integer"),
    "RevisionDate": Value("revisionDate"),
    "MaxRawScore": Value("maxRawScore", "number"),
    "PlatformType": Collection("platformTypes", _d("platformTypeDescriptor")),
    "Language": Collection("languages", _d("languageDescriptor")),
}

_OBJECTIVE_ASSESSMENT = {
    "IdentificationCode": Value("identificationCode"),
    "AssessmentReference": Reference("assessmentReference"),
    "AcademicSubject": _d("academicSubjectDescriptor"),  # one subject here, not a collection
    "AssessmentScore": Collection("scores", _SCORE),
    "AssessmentPerformanceLevel": Collection("performanceLevels", _PERFORMANCE_LEVEL),
    "LearningStandardReference": ReferenceItem("learningStandards", "learningStandardReference"),
    "MaxRawScore": Value("maxRawScore", "number"),
    "PercentOfAssessment": Value("percentOfAssessment", "number"),
}

_ASSESSMENT_ITEM = {
    "IdentificationCode": Value("identificationCode"),
    "AssessmentReference": Reference("assessmentReference"),
    "AssessmentItemCategory": _d("assessmentItemCategoryDescriptor"),
    "LearningStandardReference": ReferenceItem("learningStandards", "learningStandardReference"),
    "MaxRawScore": Value("maxRawScore", "number"),
    "PossibleResponse": Collection("possibleResponses", {
        "ResponseValue": Value("responseValue"),
        "CorrectResponse": Value("correctResponse", "boolean"),
    }),
}

_STUDENT_ASSESSMENT = {
    "StudentAssessmentIdentifier": Value("studentAssessmentIdentifier"),
    "AssessmentReference": Reference("assessmentReference"),
    "StudentReference": Reference("studentReference"),
    "SchoolYear": SchoolYear("schoolYearTypeReference"),
    "AdministrationDate": Value("administrationDate"),
    "AdministrationEnvironment": _d("administrationEnvironmentDescriptor"),
    "AdministrationLanguage": _d("administrationLanguageDescriptor"),
    "Accommodation": Collection("accommodations", _d("accommodationDescriptor")),
    "PlatformType": _d("platformTypeDescriptor"),  # one platform here; an assessment lists its platformTypes[]
    "ReasonNotTested": _d("reasonNotTestedDescriptor"),
    "RetestIndicator": _d("retestIndicatorDescriptor"),
    "SerialNumber": Value("serialNumber"),
    "WhenAssessedGradeLevel": _d("whenAssessedGradeLevelDescriptor"),
    "ScoreResult": Collection("scoreResults", _SCORE_RESULT),
    "PerformanceLevel": Collection("performanceLevels", _STUDENT_PERFORMANCE_LEVEL),
    "StudentAssessmentItem": Collection("items", {
        "AssessmentItemReference": Reference("assessmentItemReference"),
        "AssessmentItemResult": _d("assessmentItemResultDescriptor"),
        "AssessmentResponse": Value("assessmentResponse"),
        "ResponseIndicator": _d("responseIndicatorDescriptor"),
    }),
    "StudentObjectiveAssessment": Collection("studentObjectiveAssessments", {
        "ObjectiveAssessmentReference": Reference("objectiveAssessmentReference"),
        "ScoreResult": Collection("scoreResults", _SCORE_RESULT),
        "PerformanceLevel": Collection("performanceLevels", _STUDENT_PERFORMANCE_LEVEL),
    }),
}

# The interchange element each resource's records are, and the files that hold them.
_RECORDS = {
    "assessments": ("Assessment", _ASSESSMENT, "AssessmentMetadata-*.xml"),
    "objectiveAssessments": ("ObjectiveAssessment", _OBJECTIVE_ASSESSMENT, "AssessmentMetadata-*.xml"),
    "assessmentItems": ("AssessmentItem", _ASSESSMENT_ITEM, "AssessmentMetadata-*.xml"),
    "studentAssessments": ("StudentAssessment", _STUDENT_ASSESSMENT, "StudentAssessment*.xml"),
}


# --- the conversion ----------------------------------------------------------------------------------------------

def _tag(element: ET.Element) -> str:
    return element.tag.removeprefix(NS)


def _camel(tag: str) -> str:
    return tag[0].lower() + tag[1:]


def _value(element: ET.Element, rule: Value, path: str) -> Any:
    text = (element.text or "").strip()
    if len(element) or not text:
        raise UnknownElement(f"{path}: expected a simple value")
    if rule.kind == "descriptor":
        if not text.startswith("uri://") or "#" not in text:
            raise UnknownElement(f"{path}: {text!r} is no descriptor value")
        return text
    if rule.kind == "integer":
        return int(text)
    if rule.kind == "number":
        number = float(text)
        return int(number) if number.is_integer() and "." not in text else number
    if rule.kind == "boolean":
        if text not in ("true", "false"):
            raise UnknownElement(f"{path}: {text!r} is no boolean")
        return text == "true"
    return text


def _identity(reference: ET.Element, path: str) -> dict[str, Any]:
    """`<XReference><XIdentity>` → its fields, a nested reference's fields merged in (an objective assessment's
    identity holds its assessment's reference: `{assessmentIdentifier, namespace, identificationCode}`)."""
    children = list(reference)
    if len(children) != 1 or not _tag(children[0]).endswith("Identity"):
        raise UnknownElement(f"{path}: a reference by identity was expected")
    identity = children[0]
    fields: dict[str, Any] = {}
    for child in identity:
        tag = _tag(child)
        if tag.endswith("Reference"):
            fields |= _identity(child, f"{path}/{tag}")
        elif len(child) == 0:
            fields[_camel(tag)] = (child.text or "").strip()
        else:
            raise UnknownElement(f"{path}/{tag}")
    return fields


def convert_element(element: ET.Element, spec: Mapping[str, Any], path: str) -> dict[str, Any]:
    """One interchange element as its Ed-Fi API JSON object, by `spec` (child tag → rule)."""
    body: dict[str, Any] = {}
    for child in element:
        tag = _tag(child)
        where = f"{path}/{tag}"
        rule = spec.get(tag)
        if rule is None:
            raise UnknownElement(f"{where}: no rule converts it")
        if isinstance(rule, Value):
            if rule.name in body:
                raise UnknownElement(f"{where}: repeated, but converted as one value")
            body[rule.name] = _value(child, rule, where)
        elif isinstance(rule, Collection):
            item = ({rule.item.name: _value(child, rule.item, where)} if isinstance(rule.item, Value)
                    else convert_element(child, rule.item, where))
            body.setdefault(rule.name, []).append(item)
        elif isinstance(rule, Group):
            body[rule.name] = convert_element(child, rule.spec, where)
        elif isinstance(rule, Reference):
            body[rule.name] = _identity(child, where)
        elif isinstance(rule, ReferenceItem):
            body.setdefault(rule.name, []).append({rule.reference: _identity(child, where)})
        elif isinstance(rule, SchoolYear):
            text = (child.text or "").strip()
            start, _, end = text.partition("-")
            if not (start.isdigit() and end.isdigit() and int(end) == int(start) + 1):
                raise UnknownElement(f"{where}: {text!r} is no school year")
            body[rule.name] = {"schoolYear": int(end)}
        else:  # pragma: no cover - a rule type without a branch
            raise TypeError(rule)
    return body


@dataclass
class Conversion:
    """The sample's documents by resource (as read, file by file), and where each came from."""

    documents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sources: dict[str, Counter[str]] = field(default_factory=dict)  # resource → {file name: records}

    def descriptors(self) -> dict[str, set[str]]:
        return descriptors_used(doc for docs in self.documents.values() for doc in docs)


def convert(directory: Path = EDFI_DIR) -> Conversion:
    """Every Assessment, ObjectiveAssessment, AssessmentItem and StudentAssessment of the sample files."""
    conversion = Conversion()
    for resource, (element_name, spec, pattern) in _RECORDS.items():
        documents = conversion.documents.setdefault(resource, [])
        sources = conversion.sources.setdefault(resource, Counter())
        for path in sorted(directory.glob(pattern)):
            for element in ET.parse(path).getroot():
                if _tag(element) == element_name:
                    documents.append(convert_element(element, spec, f"{path.name}:{element_name}"))
                    sources[path.name] += 1
    return conversion


def descriptors_used(documents: Iterable[Any]) -> dict[str, set[str]]:
    """Every descriptor value the documents use, by descriptor resource (`gradeLevelDescriptors`: {…}), read from
    each value's namespace (`uri://ed-fi.org/GradeLevelDescriptor#Third grade`)."""
    found: dict[str, set[str]] = defaultdict(set)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("Descriptor") and isinstance(value, str):
                    kind = value.split("#", 1)[0].rsplit("/", 1)[-1]
                    found[_camel(kind) + "s"].add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for document in documents:
        walk(document)
    return dict(found)


# --- enrollments: the files name no school -------------------------------------------------------------------------

# Grand Bend's schools (their Ed-Fi schoolIds) by the grades they serve.
GRAND_BEND_SCHOOLS = {
    255901107: ("Kindergarten", "First grade", "Second grade", "Third grade", "Fourth grade", "Fifth grade"),
    255901044: ("Sixth grade", "Seventh grade", "Eighth grade"),
    255901001: ("Ninth grade", "Tenth grade", "Eleventh grade", "Twelfth grade"),
}
GRADE_LEVEL = "uri://ed-fi.org/GradeLevelDescriptor#"


def school_for_grade(grade_descriptor: str, schools: Mapping[int, Iterable[str]] = GRAND_BEND_SCHOOLS) -> int:
    grade = grade_descriptor.removeprefix(GRADE_LEVEL)
    matches = [school for school, grades in schools.items() if grade in grades]
    if len(matches) != 1:
        raise ValueError(f"no one school serves {grade_descriptor!r}")
    return matches[0]


def student_school_associations(student_assessments: Iterable[Mapping[str, Any]],
                                schools: Mapping[int, Iterable[str]] = GRAND_BEND_SCHOOLS) -> list[dict[str, Any]]:
    """One enrollment per student and school year of its results, at the school of the grade it was assessed in,
    for the school year (July 1 - June 30, as ezone counts it). A student's results dated before that school year
    starts (the sample's state assessments: 2021-04-01, in school year 2021-2022) move the entry date back to
    them, so every result falls inside an enrollment."""
    enrollments: dict[tuple[str, int], dict[str, Any]] = {}
    for result in student_assessments:
        student = result["studentReference"]["studentUniqueId"]
        school_year = result["schoolYearTypeReference"]["schoolYear"]
        grade = result["whenAssessedGradeLevelDescriptor"]
        school = school_for_grade(grade, schools)
        administered = date.fromisoformat(result["administrationDate"][:10])
        entry = min(date(school_year - 1, 7, 1), administered)
        known = enrollments.get((student, school_year))
        if known is not None:
            if (known["schoolReference"]["schoolId"], known["entryGradeLevelDescriptor"]) != (school, grade):
                raise ValueError(f"student {student} has results in two grades or schools in {school_year}")
            known["entryDate"] = min(known["entryDate"], entry.isoformat())
            continue
        enrollments[(student, school_year)] = {
            "studentReference": {"studentUniqueId": student},
            "schoolReference": {"schoolId": school},
            "entryDate": entry.isoformat(),
            "entryGradeLevelDescriptor": grade,
            "exitWithdrawDate": date(school_year, 6, 30).isoformat(),
            "schoolYearTypeReference": {"schoolYear": school_year},
        }
    return sorted(enrollments.values(), key=lambda e: (e["studentReference"]["studentUniqueId"], e["entryDate"]))


def write_jsonl(directory: Path, documents: Mapping[str, list[dict[str, Any]]]) -> dict[str, Path]:
    """`<resource>.jsonl` per resource, one compact document a line (what lightbeam reads)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for resource, docs in documents.items():
        files[resource] = directory / f"{resource}.jsonl"
        files[resource].write_text("".join(json.dumps(doc, separators=(",", ":")) + "\n" for doc in docs))
    return files
