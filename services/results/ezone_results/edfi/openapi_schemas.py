"""OpenAPI 3.0 component schemas for the Ed-Fi resources ezone serves (Data Standard 5.2, ODS/API 7 naming).

Two component sets, one per OpenAPI document the API publishes:

* `RESOURCE_COMPONENTS` - `edFi_<resource>` for each of `RESOURCES`, plus every collection item
  (`edFi_studentAssessmentScoreResult`, ...) and reference (`edFi_assessmentReference`, ...) they use.
* `DESCRIPTOR_COMPONENTS` - `edFi_<name>Descriptor` for each of `DESCRIPTOR_RESOURCES`, the descriptors
  some property of those resources takes. `descriptors.json` beside this module holds Ed-Fi's default
  values for them (from the Ed-Fi Data Standard v5.2.0 `Descriptors/*.xml`).

Property names, lengths, required members and identities follow Data Standard 5.2 as the Ed-Fi
ODS/API 7 and Data Management Service publish it. Clients such as lightbeam read these documents:
identity members carry `x-Ed-Fi-isIdentity`, every array's `items` is a `$ref` to a named item schema
with at least one identity member (lightbeam checks items for duplicates by it), and references that
are part of a resource's identity are required.

Ezone additions to Data Standard 5.2 (both optional): `performanceLevelMet` on a student's
performance levels (Data Standard 3 had it; some vendors still send it). Mind the Data Standard 5
shapes: a studentAssessment's `administrationDate` is optional (a student not tested has none) and
its window is one `period` object, while an assessment has a `periods` collection.

The schemas are a JSON Schema Draft 4 subset: no `anyOf`/`oneOf`/`nullable`, no
`additionalProperties: false`, `$ref`s of the form `#/components/schemas/<name>`. To validate a
body, resolve refs against a document holding the components, e.g. `validation_schema(name)`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DESCRIPTORS_JSON = Path(__file__).with_name("descriptors.json")

_REF_PREFIX = "#/components/schemas/"
DESCRIPTOR_MAX_LENGTH = 306  # a descriptor value is `<namespace>#<codeValue>`: 255 + 1 + 50

Schema = dict[str, Any]


# --- property builders --------------------------------------------------------------------------

def _identity(prop: Schema, identity: bool) -> Schema:
    if identity:
        prop["x-Ed-Fi-isIdentity"] = True
    return prop


def _string(max_length: int, *, identity: bool = False) -> Schema:
    return _identity({"type": "string", "maxLength": max_length}, identity)


def _date(*, identity: bool = False) -> Schema:
    return _identity({"type": "string", "format": "date"}, identity)


def _datetime() -> Schema:
    return {"type": "string", "format": "date-time"}


def _integer(*, identity: bool = False) -> Schema:
    return _identity({"type": "integer"}, identity)


def _number() -> Schema:
    return {"type": "number"}


def _boolean() -> Schema:
    return {"type": "boolean"}


def _descriptor(*, identity: bool = False) -> Schema:
    return _string(DESCRIPTOR_MAX_LENGTH, identity=identity)


def _ref(name: str) -> Schema:
    return {"$ref": _REF_PREFIX + name}


def _array(item_schema: str, *, min_items: int = 0) -> Schema:
    prop: Schema = {"type": "array", "items": _ref(item_schema)}
    if min_items:
        prop["minItems"] = min_items
    return prop


def _object(properties: Schema, required: list[str], description: str | None = None) -> Schema:
    missing = [name for name in required if name not in properties]
    assert not missing, f"required but not a property: {missing}"
    schema: Schema = {"type": "object"}
    if description:
        schema["description"] = description
    if required:  # Draft 4 forbids an empty `required`
        schema["required"] = list(required)
    schema["properties"] = properties
    return schema


def _resource(description: str, properties: Schema, required: list[str]) -> Schema:
    """A top-level resource: the server sets `id`, `_etag` and `_lastModifiedDate`."""
    props: Schema = {"id": {"type": "string", "description": "The resource's id, set by the server."}}
    props.update(properties)
    props["_etag"] = {"type": "string", "description": "The version of the resource, set by the server."}
    props["_lastModifiedDate"] = {"type": "string", "format": "date-time",
                                  "description": "When the resource last changed, set by the server."}
    return _object(props, required, description)


_LINK: Schema = {
    "type": "object",
    "description": "Where the referenced resource is, set by the server.",
    "properties": {"rel": {"type": "string"}, "href": {"type": "string"}},
}


def _reference(properties: Schema) -> Schema:
    """A reference: all of the referenced resource's identity, each member required."""
    props = {name: _identity(dict(prop), True) for name, prop in properties.items()}
    props["link"] = dict(_LINK, properties=dict(_LINK["properties"]))
    return _object(props, list(properties))


def _descriptor_item(property_name: str) -> Schema:
    """A collection item that is just one descriptor, e.g. `{"gradeLevelDescriptor": "uri://...#Sixth grade"}`."""
    return _object({property_name: _descriptor(identity=True)}, [property_name])


def _reference_item(property_name: str, reference_schema: str) -> Schema:
    """A collection item that is just one reference, e.g. `{"sectionReference": {...}}`."""
    return _object({property_name: _ref(reference_schema)}, [property_name])


# --- references -------------------------------------------------------------------------------

_REFERENCES: dict[str, Schema] = {
    "edFi_assessmentReference": _reference({
        "assessmentIdentifier": _string(60), "namespace": _string(255)}),
    "edFi_assessmentItemReference": _reference({
        "assessmentIdentifier": _string(60), "identificationCode": _string(60), "namespace": _string(255)}),
    "edFi_calendarReference": _reference({
        "calendarCode": _string(60), "schoolId": _integer(), "schoolYear": _integer()}),
    "edFi_educationOrganizationReference": _reference({"educationOrganizationId": _integer()}),
    "edFi_graduationPlanReference": _reference({
        "educationOrganizationId": _integer(), "graduationPlanTypeDescriptor": _descriptor(),
        "graduationSchoolYear": _integer()}),
    "edFi_learningStandardReference": _reference({"learningStandardId": _string(60)}),
    "edFi_localEducationAgencyReference": _reference({"localEducationAgencyId": _integer()}),
    "edFi_objectiveAssessmentReference": _reference({
        "assessmentIdentifier": _string(60), "identificationCode": _string(60), "namespace": _string(255)}),
    "edFi_programReference": _reference({
        "educationOrganizationId": _integer(), "programName": _string(60), "programTypeDescriptor": _descriptor()}),
    "edFi_schoolReference": _reference({"schoolId": _integer()}),
    "edFi_schoolYearTypeReference": _reference({"schoolYear": _integer()}),
    "edFi_sectionReference": _reference({
        "localCourseCode": _string(60), "schoolId": _integer(), "schoolYear": _integer(),
        "sectionIdentifier": _string(255), "sessionName": _string(60)}),
    "edFi_studentReference": _reference({"studentUniqueId": _string(32)}),
}


# --- shared shapes ------------------------------------------------------------------------------

def _score() -> Schema:
    """A score an assessment (or objective assessment) reports, with its range."""
    return _object({
        "assessmentReportingMethodDescriptor": _descriptor(identity=True),
        "maximumScore": _string(35),
        "minimumScore": _string(35),
        "resultDatatypeTypeDescriptor": _descriptor(),
    }, ["assessmentReportingMethodDescriptor"])


def _performance_level() -> Schema:
    """A performance level an assessment (or objective assessment) defines, with its score range."""
    return _object({
        "assessmentReportingMethodDescriptor": _descriptor(identity=True),
        "performanceLevelDescriptor": _descriptor(identity=True),
        "maximumScore": _string(35),
        "minimumScore": _string(35),
        "performanceLevelIndicatorName": _string(60),
        "resultDatatypeTypeDescriptor": _descriptor(),
    }, ["assessmentReportingMethodDescriptor", "performanceLevelDescriptor"])


def _score_result() -> Schema:
    """A score a student earned."""
    return _object({
        "assessmentReportingMethodDescriptor": _descriptor(identity=True),
        "result": _string(35),
        "resultDatatypeTypeDescriptor": _descriptor(),
    }, ["assessmentReportingMethodDescriptor", "result", "resultDatatypeTypeDescriptor"])


def _student_performance_level() -> Schema:
    """A performance level a student reached."""
    return _object({
        "assessmentReportingMethodDescriptor": _descriptor(identity=True),
        "performanceLevelDescriptor": _descriptor(identity=True),
        "performanceLevelIndicatorName": _string(60),
        "performanceLevelMet": _boolean(),  # Data Standard 3; kept for the vendors that still send it
    }, ["assessmentReportingMethodDescriptor", "performanceLevelDescriptor"])


def _period(*, in_collection: bool) -> Schema:
    """The window an assessment is given in."""
    return _object({
        "assessmentPeriodDescriptor": _descriptor(identity=in_collection),
        "beginDate": _date(),
        "endDate": _date(),
    }, ["assessmentPeriodDescriptor"])


def _learning_standard_item() -> Schema:
    return _reference_item("learningStandardReference", "edFi_learningStandardReference")


# --- assessments --------------------------------------------------------------------------------

_ASSESSMENT: dict[str, Schema] = {
    "edFi_assessment": _resource(
        "An instrument for measuring what students know: its identity, subjects, grades, scores and performance levels.",
        {
            "assessmentIdentifier": _string(60, identity=True),
            "namespace": _string(255, identity=True),
            "educationOrganizationReference": _ref("edFi_educationOrganizationReference"),
            "academicSubjects": _array("edFi_assessmentAcademicSubject", min_items=1),
            "adaptiveAssessment": _boolean(),
            "assessedGradeLevels": _array("edFi_assessmentAssessedGradeLevel"),
            "assessmentCategoryDescriptor": _descriptor(),
            "assessmentFamily": _string(60),
            "assessmentForm": _string(60),
            "assessmentTitle": _string(255),
            "assessmentVersion": _integer(),
            "contentStandard": _ref("edFi_assessmentContentStandard"),
            "identificationCodes": _array("edFi_assessmentIdentificationCode"),
            "languages": _array("edFi_assessmentLanguage"),
            "maxRawScore": _number(),
            "nomenclature": _string(100),
            "performanceLevels": _array("edFi_assessmentPerformanceLevel"),
            "periods": _array("edFi_assessmentPeriod"),
            "platformTypes": _array("edFi_assessmentPlatformType"),
            "programs": _array("edFi_assessmentProgram"),
            "revisionDate": _date(),
            "scores": _array("edFi_assessmentScore"),
            "sections": _array("edFi_assessmentSection"),
        },
        ["assessmentIdentifier", "namespace", "academicSubjects", "assessmentTitle"],
    ),
    "edFi_assessmentAcademicSubject": _descriptor_item("academicSubjectDescriptor"),
    "edFi_assessmentAssessedGradeLevel": _descriptor_item("gradeLevelDescriptor"),
    "edFi_assessmentContentStandard": _object({
        "title": _string(75),
        "authors": _array("edFi_assessmentContentStandardAuthor"),
        "beginDate": _date(),
        "endDate": _date(),
        "mandatingEducationOrganizationReference": _ref("edFi_educationOrganizationReference"),
        "publicationDate": _date(),
        "publicationStatusDescriptor": _descriptor(),
        "publicationYear": _integer(),
        "uri": _string(255),
        "version": _string(50),
    }, ["title"]),
    "edFi_assessmentContentStandardAuthor": _object({"author": _string(100, identity=True)}, ["author"]),
    "edFi_assessmentIdentificationCode": _object({
        "assessmentIdentificationSystemDescriptor": _descriptor(identity=True),
        "assigningOrganizationIdentificationCode": _string(60),
        "identificationCode": _string(60),
    }, ["assessmentIdentificationSystemDescriptor", "identificationCode"]),
    "edFi_assessmentLanguage": _descriptor_item("languageDescriptor"),
    "edFi_assessmentPerformanceLevel": _performance_level(),
    "edFi_assessmentPeriod": _period(in_collection=True),
    "edFi_assessmentPlatformType": _descriptor_item("platformTypeDescriptor"),
    "edFi_assessmentProgram": _reference_item("programReference", "edFi_programReference"),
    "edFi_assessmentScore": _score(),
    "edFi_assessmentSection": _reference_item("sectionReference", "edFi_sectionReference"),
}

_OBJECTIVE_ASSESSMENT: dict[str, Schema] = {
    "edFi_objectiveAssessment": _resource(
        "A part of an assessment that measures one objective or standard, e.g. a strand or a reporting category.",
        {
            "identificationCode": _string(60, identity=True),
            "assessmentReference": _ref("edFi_assessmentReference"),
            "parentObjectiveAssessmentReference": _ref("edFi_objectiveAssessmentReference"),
            "academicSubjectDescriptor": _descriptor(),
            "assessmentItems": _array("edFi_objectiveAssessmentAssessmentItem"),
            "description": _string(1024),
            "learningStandards": _array("edFi_objectiveAssessmentLearningStandard"),
            "maxRawScore": _number(),
            "nomenclature": _string(100),
            "percentOfAssessment": _number(),
            "performanceLevels": _array("edFi_objectiveAssessmentPerformanceLevel"),
            "scores": _array("edFi_objectiveAssessmentScore"),
        },
        ["identificationCode", "assessmentReference"],
    ),
    "edFi_objectiveAssessmentAssessmentItem": _reference_item("assessmentItemReference", "edFi_assessmentItemReference"),
    "edFi_objectiveAssessmentLearningStandard": _learning_standard_item(),
    "edFi_objectiveAssessmentPerformanceLevel": _performance_level(),
    "edFi_objectiveAssessmentScore": _score(),
}

_ASSESSMENT_ITEM: dict[str, Schema] = {
    "edFi_assessmentItem": _resource(
        "One question or task of an assessment, with its possible responses.",
        {
            "identificationCode": _string(60, identity=True),
            "assessmentReference": _ref("edFi_assessmentReference"),
            "assessmentItemCategoryDescriptor": _descriptor(),
            "assessmentItemURI": _string(255),
            "expectedTimeAssessed": _string(30),
            "itemText": _string(1024),
            "learningStandards": _array("edFi_assessmentItemLearningStandard"),
            "maxRawScore": _number(),
            "nomenclature": _string(100),
            "possibleResponses": _array("edFi_assessmentItemPossibleResponse"),
        },
        ["identificationCode", "assessmentReference"],
    ),
    "edFi_assessmentItemLearningStandard": _learning_standard_item(),
    "edFi_assessmentItemPossibleResponse": _object({
        "responseValue": _string(60, identity=True),
        "correctResponse": _boolean(),
        "responseDescription": _string(1024),
    }, ["responseValue"]),
}

_STUDENT_ASSESSMENT: dict[str, Schema] = {
    "edFi_studentAssessment": _resource(
        "A student's result on an assessment: scores, performance levels, and per-item and per-objective results.",
        {
            "studentAssessmentIdentifier": _string(60, identity=True),
            "assessmentReference": _ref("edFi_assessmentReference"),
            "reportedSchoolReference": _ref("edFi_schoolReference"),
            "schoolYearTypeReference": _ref("edFi_schoolYearTypeReference"),
            "studentReference": _ref("edFi_studentReference"),
            "accommodations": _array("edFi_studentAssessmentAccommodation"),
            "administrationDate": _datetime(),
            "administrationEndDate": _datetime(),
            "administrationEnvironmentDescriptor": _descriptor(),
            "administrationLanguageDescriptor": _descriptor(),
            "assessedMinutes": _integer(),
            "eventCircumstanceDescriptor": _descriptor(),
            "eventDescription": _string(1024),
            "items": _array("edFi_studentAssessmentItem"),
            "performanceLevels": _array("edFi_studentAssessmentPerformanceLevel"),
            "period": _ref("edFi_studentAssessmentPeriod"),
            "platformTypeDescriptor": _descriptor(),
            "reasonNotTestedDescriptor": _descriptor(),
            "reportedSchoolIdentifier": _string(60),
            "retestIndicatorDescriptor": _descriptor(),
            "scoreResults": _array("edFi_studentAssessmentScoreResult"),
            "serialNumber": _string(60),
            "studentObjectiveAssessments": _array("edFi_studentAssessmentStudentObjectiveAssessment"),
            "whenAssessedGradeLevelDescriptor": _descriptor(),
        },
        ["studentAssessmentIdentifier", "assessmentReference", "studentReference"],
    ),
    "edFi_studentAssessmentAccommodation": _descriptor_item("accommodationDescriptor"),
    "edFi_studentAssessmentItem": _object({
        "assessmentItemReference": _ref("edFi_assessmentItemReference"),
        "assessmentItemResultDescriptor": _descriptor(),
        "assessmentResponse": _string(255),
        "descriptiveFeedback": _string(1024),
        "itemNumber": _integer(),
        "rawScoreResult": _number(),
        "responseIndicatorDescriptor": _descriptor(),
        "timeAssessed": _string(30),
    }, ["assessmentItemReference", "assessmentItemResultDescriptor"]),
    "edFi_studentAssessmentPerformanceLevel": _student_performance_level(),
    "edFi_studentAssessmentPeriod": _period(in_collection=False),
    "edFi_studentAssessmentScoreResult": _score_result(),
    "edFi_studentAssessmentStudentObjectiveAssessment": _object({
        "objectiveAssessmentReference": _ref("edFi_objectiveAssessmentReference"),
        "administrationDate": _datetime(),
        "administrationEndDate": _datetime(),
        "assessedMinutes": _integer(),
        "performanceLevels": _array("edFi_studentAssessmentStudentObjectiveAssessmentPerformanceLevel"),
        "scoreResults": _array("edFi_studentAssessmentStudentObjectiveAssessmentScoreResult"),
    }, ["objectiveAssessmentReference"]),
    "edFi_studentAssessmentStudentObjectiveAssessmentPerformanceLevel": _student_performance_level(),
    "edFi_studentAssessmentStudentObjectiveAssessmentScoreResult": _score_result(),
}


# --- enrollment ---------------------------------------------------------------------------------

_STUDENT_SCHOOL_ASSOCIATION: dict[str, Schema] = {
    "edFi_studentSchoolAssociation": _resource(
        "A student's enrollment in a school, from its entry date.",
        {
            "entryDate": _date(identity=True),
            "calendarReference": _ref("edFi_calendarReference"),
            "classOfSchoolYearTypeReference": _ref("edFi_schoolYearTypeReference"),
            "graduationPlanReference": _ref("edFi_graduationPlanReference"),
            "nextYearSchoolReference": _ref("edFi_schoolReference"),
            "schoolReference": _ref("edFi_schoolReference"),
            "schoolYearTypeReference": _ref("edFi_schoolYearTypeReference"),
            "studentReference": _ref("edFi_studentReference"),
            "alternativeGraduationPlans": _array("edFi_studentSchoolAssociationAlternativeGraduationPlan"),
            "educationPlans": _array("edFi_studentSchoolAssociationEducationPlan"),
            "employedWhileEnrolled": _boolean(),
            "enrollmentTypeDescriptor": _descriptor(),
            "entryGradeLevelDescriptor": _descriptor(),
            "entryGradeLevelReasonDescriptor": _descriptor(),
            "entryTypeDescriptor": _descriptor(),
            "exitWithdrawDate": _date(),
            "exitWithdrawTypeDescriptor": _descriptor(),
            "fullTimeEquivalency": _number(),
            "nextYearGradeLevelDescriptor": _descriptor(),
            "primarySchool": _boolean(),
            "repeatGradeIndicator": _boolean(),
            "residencyStatusDescriptor": _descriptor(),
            "schoolChoice": _boolean(),
            "schoolChoiceBasisDescriptor": _descriptor(),
            "schoolChoiceTransfer": _boolean(),
            "termCompletionIndicator": _boolean(),
        },
        ["entryDate", "entryGradeLevelDescriptor", "schoolReference", "studentReference"],
    ),
    "edFi_studentSchoolAssociationAlternativeGraduationPlan": _reference_item(
        "alternativeGraduationPlanReference", "edFi_graduationPlanReference"),
    "edFi_studentSchoolAssociationEducationPlan": _descriptor_item("educationPlanDescriptor"),
}


# --- schools (read-only in ezone) ---------------------------------------------------------------

def _school_period() -> Schema:
    return _object({"beginDate": _date(identity=True), "endDate": _date()}, ["beginDate"])


_SCHOOL: dict[str, Schema] = {
    "edFi_school": _resource(
        "A school: ezone lists the zone's schools, identified by their state school code.",
        {
            "schoolId": _integer(identity=True),
            "charterApprovalSchoolYearTypeReference": _ref("edFi_schoolYearTypeReference"),
            "localEducationAgencyReference": _ref("edFi_localEducationAgencyReference"),
            "addresses": _array("edFi_schoolAddress"),
            "administrativeFundingControlDescriptor": _descriptor(),
            "charterApprovalAgencyTypeDescriptor": _descriptor(),
            "charterStatusDescriptor": _descriptor(),
            "educationOrganizationCategories": _array("edFi_schoolEducationOrganizationCategory", min_items=1),
            "gradeLevels": _array("edFi_schoolGradeLevel", min_items=1),
            "identificationCodes": _array("edFi_schoolIdentificationCode"),
            "indicators": _array("edFi_schoolIndicator"),
            "institutionTelephones": _array("edFi_schoolInstitutionTelephone"),
            "internationalAddresses": _array("edFi_schoolInternationalAddress"),
            "internetAccessDescriptor": _descriptor(),
            "magnetSpecialProgramEmphasisSchoolDescriptor": _descriptor(),
            "nameOfInstitution": _string(75),
            "operationalStatusDescriptor": _descriptor(),
            "schoolCategories": _array("edFi_schoolCategory"),
            "schoolTypeDescriptor": _descriptor(),
            "shortNameOfInstitution": _string(75),
            "titleIPartASchoolDesignationDescriptor": _descriptor(),
            "webSite": _string(255),
        },
        ["schoolId", "educationOrganizationCategories", "gradeLevels", "nameOfInstitution"],
    ),
    "edFi_schoolAddress": _object({
        "addressTypeDescriptor": _descriptor(identity=True),
        "city": _string(30, identity=True),
        "postalCode": _string(17, identity=True),
        "stateAbbreviationDescriptor": _descriptor(identity=True),
        "streetNumberName": _string(150, identity=True),
        "apartmentRoomSuiteNumber": _string(50),
        "buildingSiteNumber": _string(20),
        "congressionalDistrict": _string(30),
        "countyFIPSCode": _string(5),
        "doNotPublishIndicator": _boolean(),
        "latitude": _string(20),
        "localeDescriptor": _descriptor(),
        "longitude": _string(20),
        "nameOfCounty": _string(30),
        "periods": _array("edFi_schoolAddressPeriod"),
    }, ["addressTypeDescriptor", "city", "postalCode", "stateAbbreviationDescriptor", "streetNumberName"]),
    "edFi_schoolAddressPeriod": _school_period(),
    "edFi_schoolCategory": _descriptor_item("schoolCategoryDescriptor"),
    "edFi_schoolEducationOrganizationCategory": _descriptor_item("educationOrganizationCategoryDescriptor"),
    "edFi_schoolGradeLevel": _descriptor_item("gradeLevelDescriptor"),
    "edFi_schoolIdentificationCode": _object({
        "educationOrganizationIdentificationSystemDescriptor": _descriptor(identity=True),
        "identificationCode": _string(60),
    }, ["educationOrganizationIdentificationSystemDescriptor", "identificationCode"]),
    "edFi_schoolIndicator": _object({
        "indicatorDescriptor": _descriptor(identity=True),
        "designatedBy": _string(60),
        "indicatorGroupDescriptor": _descriptor(),
        "indicatorLevelDescriptor": _descriptor(),
        "indicatorValue": _string(60),
        "periods": _array("edFi_schoolIndicatorPeriod"),
    }, ["indicatorDescriptor"]),
    "edFi_schoolIndicatorPeriod": _school_period(),
    "edFi_schoolInstitutionTelephone": _object({
        "institutionTelephoneNumberTypeDescriptor": _descriptor(identity=True),
        "telephoneNumber": _string(24),
    }, ["institutionTelephoneNumberTypeDescriptor", "telephoneNumber"]),
    "edFi_schoolInternationalAddress": _object({
        "addressTypeDescriptor": _descriptor(identity=True),
        "addressLine1": _string(150),
        "addressLine2": _string(150),
        "addressLine3": _string(150),
        "addressLine4": _string(150),
        "beginDate": _date(),
        "countryDescriptor": _descriptor(),
        "endDate": _date(),
        "latitude": _string(20),
        "longitude": _string(20),
    }, ["addressTypeDescriptor", "addressLine1", "countryDescriptor"]),
}


# --- the published sets -------------------------------------------------------------------------

# In Ed-Fi dependency order: each may reference only those before it (or resources ezone does not host).
RESOURCES: list[str] = [
    "schools",
    "assessments",
    "assessmentItems",
    "objectiveAssessments",
    "studentSchoolAssociations",
    "studentAssessments",
]

RESOURCE_COMPONENTS: dict[str, Schema] = dict(sorted({
    **_REFERENCES, **_ASSESSMENT, **_OBJECTIVE_ASSESSMENT, **_ASSESSMENT_ITEM, **_STUDENT_ASSESSMENT,
    **_STUDENT_SCHOOL_ASSOCIATION, **_SCHOOL,
}.items()))

DESCRIPTOR_RESOURCES: list[str] = [
    "academicSubjectDescriptors",
    "accommodationDescriptors",
    "addressTypeDescriptors",
    "administrationEnvironmentDescriptors",
    "administrativeFundingControlDescriptors",
    "assessmentCategoryDescriptors",
    "assessmentIdentificationSystemDescriptors",
    "assessmentItemCategoryDescriptors",
    "assessmentItemResultDescriptors",
    "assessmentPeriodDescriptors",
    "assessmentReportingMethodDescriptors",
    "charterApprovalAgencyTypeDescriptors",
    "charterStatusDescriptors",
    "countryDescriptors",
    "educationOrganizationCategoryDescriptors",
    "educationOrganizationIdentificationSystemDescriptors",
    "educationPlanDescriptors",
    "enrollmentTypeDescriptors",
    "entryGradeLevelReasonDescriptors",
    "entryTypeDescriptors",
    "eventCircumstanceDescriptors",
    "exitWithdrawTypeDescriptors",
    "gradeLevelDescriptors",
    "graduationPlanTypeDescriptors",
    "indicatorDescriptors",
    "indicatorGroupDescriptors",
    "indicatorLevelDescriptors",
    "institutionTelephoneNumberTypeDescriptors",
    "internetAccessDescriptors",
    "languageDescriptors",
    "localeDescriptors",
    "magnetSpecialProgramEmphasisSchoolDescriptors",
    "operationalStatusDescriptors",
    "performanceLevelDescriptors",
    "platformTypeDescriptors",
    "programTypeDescriptors",
    "publicationStatusDescriptors",
    "reasonNotTestedDescriptors",
    "residencyStatusDescriptors",
    "responseIndicatorDescriptors",
    "resultDatatypeTypeDescriptors",
    "retestIndicatorDescriptors",
    "schoolCategoryDescriptors",
    "schoolChoiceBasisDescriptors",
    "schoolTypeDescriptors",
    "stateAbbreviationDescriptors",
    "titleIPartASchoolDesignationDescriptors",
]


def _descriptor_schema(name: str) -> Schema:
    """`name` like `academicSubject`: the schema of one `academicSubjectDescriptor`."""
    return _resource(
        f"One {name}Descriptor value; resources refer to it as `<namespace>#<codeValue>`.",
        {
            f"{name}DescriptorId": _integer(),
            "codeValue": _string(50, identity=True),
            "description": _string(1024),
            "effectiveBeginDate": _date(),
            "effectiveEndDate": _date(),
            "namespace": _string(255, identity=True),
            "priorDescriptorId": _integer(),
            "shortDescription": _string(75),
        },
        ["namespace", "codeValue", "shortDescription"],
    )


DESCRIPTOR_COMPONENTS: dict[str, Schema] = {
    f"edFi_{resource[:-1]}": _descriptor_schema(resource[: -len("Descriptors")]) for resource in DESCRIPTOR_RESOURCES
}


# --- helpers for the routes ---------------------------------------------------------------------

def schema_name(endpoint: str, namespace: str = "ed-fi") -> str:
    """The component a resource's bodies follow, found the way lightbeam finds it:
    `studentAssessments` → `edFi_studentAssessment`, `academicSubjectDescriptors` → `edFi_academicSubjectDescriptor`."""
    words = re.split(r"[-_]+", namespace)
    prefix = words[0].lower() + "".join(word.title() for word in words[1:])
    singular = endpoint[:-3] + "y" if endpoint.endswith("ies") else endpoint[:-1]
    return f"{prefix}_{singular}"


def validation_schema(name: str) -> Schema:
    """A self-contained Draft 4 schema for the component `name`: its `$ref`s resolve inside it.
    Usable with `jsonschema.Draft4Validator(...)` and `fastjsonschema.compile(..., formats=FASTJSONSCHEMA_FORMATS)`."""
    components = DESCRIPTOR_COMPONENTS if name in DESCRIPTOR_COMPONENTS else RESOURCE_COMPONENTS
    return {"$schema": "http://json-schema.org/draft-04/schema#", "components": {"schemas": components},
            **components[name]}


# Ed-Fi accepts date-times without a zone (`2021-12-01T16:00:00`, as its sample data has), which
# fastjsonschema's built-in `date-time` format refuses; pass these to `fastjsonschema.compile`.
FASTJSONSCHEMA_FORMATS: dict[str, str] = {
    "date": r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\Z",
    "date-time": r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?"
                 r"([Zz]|[+-]([01]\d|2[0-3]):?[0-5]\d)?\Z",
}
