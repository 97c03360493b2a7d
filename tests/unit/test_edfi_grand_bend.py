"""The Grand Bend sample files as Ed-Fi API JSON (tests/edfi_grand_bend.py, what the lightbeam acceptance test
sends), without a database: every record converted, by Data Standard 5.2's JSON names, nothing unknown passed over,
and the enrollments that place each student."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date

import pytest
from ezone_results.edfi.openapi_schemas import DESCRIPTORS_JSON, RESOURCE_COMPONENTS, schema_name, validation_schema
from jsonschema import Draft4Validator

from tests.edfi_grand_bend import (
    NS,
    UnknownElement,
    convert,
    convert_element,
    descriptors_used,
    student_school_associations,
    write_jsonl,
    _STUDENT_ASSESSMENT,
)

METHOD = "uri://ed-fi.org/AssessmentReportingMethodDescriptor#"
NAMESPACE = "uri://ed-fi.org/Assessment/Assessment.xml"


@pytest.fixture(scope="module")
def sample():
    return convert()


def test_every_record_of_the_sample_files_is_converted(sample):
    assert {resource: dict(files) for resource, files in sample.sources.items()} == {
        "assessments": {"AssessmentMetadata-ACT.xml": 5, "AssessmentMetadata-Benchmarks-3rdGradeMath.xml": 2,
                        "AssessmentMetadata-StateAssessment.xml": 4},
        "objectiveAssessments": {"AssessmentMetadata-StateAssessment.xml": 20},
        "assessmentItems": {"AssessmentMetadata-Benchmarks-3rdGradeMath.xml": 46},
        "studentAssessments": {"StudentAssessment-ACT.xml": 335, "StudentAssessment-Benchmarks-3rdGradeMath.xml": 160,
                               "StudentAssessment-StateAssessment.xml": 34, "StudentAssessmentSample.xml": 2},
    }
    assert {resource: len(documents) for resource, documents in sample.documents.items()} == {
        "assessments": 11, "objectiveAssessments": 20, "assessmentItems": 46, "studentAssessments": 531}


def test_each_record_has_an_identity_of_its_own(sample):
    identities = {
        "assessments": lambda d: (d["assessmentIdentifier"], d["namespace"]),
        "objectiveAssessments": lambda d: (d["identificationCode"], *d["assessmentReference"].values()),
        "assessmentItems": lambda d: (d["identificationCode"], *d["assessmentReference"].values()),
        # Two studentAssessmentIdentifiers are each used for two students: the identity includes the student.
        "studentAssessments": lambda d: (d["studentAssessmentIdentifier"], d["studentReference"]["studentUniqueId"],
                                         d["assessmentReference"]["assessmentIdentifier"], d["assessmentReference"]["namespace"]),
    }
    for resource, identity in identities.items():
        documents = sample.documents[resource]
        assert len({identity(document) for document in documents}) == len(documents), resource


def test_a_student_assessment_becomes_the_ed_fi_api_json(sample):
    # StudentAssessmentSample.xml's second record, written out by hand from the XML.
    assert sample.documents["studentAssessments"][-1] == {
        "studentAssessmentIdentifier": "/5CuICgv87a7l71buErHAU52UEvjNldXQJycrR/U",
        "administrationDate": "2021-12-01T16:00:00",
        "scoreResults": [{"result": "27", "resultDatatypeTypeDescriptor": "uri://ed-fi.org/ResultDatatypeTypeDescriptor#Integer",
                          "assessmentReportingMethodDescriptor": METHOD + "Composite Score"}],
        "whenAssessedGradeLevelDescriptor": "uri://ed-fi.org/GradeLevelDescriptor#Eleventh grade",
        "performanceLevels": [{"performanceLevelDescriptor": "uri://ed-fi.org/PerformanceLevelDescriptor#Met Standard",
                               "assessmentReportingMethodDescriptor": METHOD + "Proficiency level",
                               "performanceLevelIndicatorName": "Met Standard"}],
        "studentReference": {"studentUniqueId": "605123"},
        "assessmentReference": {"assessmentIdentifier": "ACT-ABW", "namespace": "uri://ed-fi.org/Assessment"},
        "schoolYearTypeReference": {"schoolYear": 2022},
    }


def test_items_objectives_accommodations_and_a_platform_take_their_ed_fi_names(sample):
    results = sample.documents["studentAssessments"]
    benchmark = next(d for d in results if d["studentAssessmentIdentifier"] == "/OYwqot8L1KQOuf5mVud8r7GALJNLxkZKOjsRN71")
    assert benchmark["retestIndicatorDescriptor"] == "uri://ed-fi.org/RetestIndicatorDescriptor#Primary Administration"
    assert benchmark["items"][0] == {
        "assessmentResponse": "G",
        "responseIndicatorDescriptor": "uri://ed-fi.org/ResponseIndicatorDescriptor#Nonscorable response",
        "assessmentItemResultDescriptor": "uri://ed-fi.org/AssessmentItemResultDescriptor#Correct",
        "assessmentItemReference": {"identificationCode": "9848478",
                                    "assessmentIdentifier": "ae049cb3-33d0-431f-b0f3-a751df7217ef", "namespace": NAMESPACE},
    }
    accommodated = next(d for d in results if d["studentAssessmentIdentifier"] == "+ZQtFxFX43lS6bqTFiu4tTlU+NpvEjb1ClG0gXfP")
    assert accommodated["accommodations"] == [
        {"accommodationDescriptor": "uri://ed-fi.org/AccommodationDescriptor#English language learner accommodation"}]
    assert accommodated["platformTypeDescriptor"] == "uri://ed-fi.org/PlatformTypeDescriptor#Paper-based"  # one, not a list
    objective = next(d for d in results if "studentObjectiveAssessments" in d)["studentObjectiveAssessments"][0]
    assert set(objective) == {"objectiveAssessmentReference", "scoreResults", "performanceLevels"}
    assert set(objective["objectiveAssessmentReference"]) == {"assessmentIdentifier", "identificationCode", "namespace"}
    assert Counter(key for d in results for key in d) == {
        "studentAssessmentIdentifier": 531, "administrationDate": 531, "studentReference": 531, "assessmentReference": 531,
        "schoolYearTypeReference": 531, "whenAssessedGradeLevelDescriptor": 531, "scoreResults": 529,
        "administrationLanguageDescriptor": 529, "administrationEnvironmentDescriptor": 529, "serialNumber": 369,
        "platformTypeDescriptor": 335, "retestIndicatorDescriptor": 160, "items": 160, "studentObjectiveAssessments": 32,
        "performanceLevels": 123, "accommodations": 20, "reasonNotTestedDescriptor": 2,
    }


def test_an_assessment_its_objectives_and_items_become_the_ed_fi_api_json(sample):
    act = sample.documents["assessments"][0]
    assert act == {
        "assessmentIdentifier": "ACT Composite",
        "assessmentTitle": "ACT",
        "identificationCodes": [{"identificationCode": "ACT Composite",
                                 "assessmentIdentificationSystemDescriptor": "uri://ed-fi.org/AssessmentIdentificationSystemDescriptor#Test Contractor",
                                 "assigningOrganizationIdentificationCode": "CollegeBoard"}],
        "assessmentCategoryDescriptor": "uri://ed-fi.org/AssessmentCategoryDescriptor#College entrance exam",
        "academicSubjects": [{"academicSubjectDescriptor": "uri://ed-fi.org/AcademicSubjectDescriptor#Composite"}],
        "assessedGradeLevels": [{"gradeLevelDescriptor": "uri://ed-fi.org/GradeLevelDescriptor#Twelfth grade"}],
        "scores": [{"assessmentReportingMethodDescriptor": METHOD + "Composite Score", "minimumScore": "1", "maximumScore": "36",
                    "resultDatatypeTypeDescriptor": "uri://ed-fi.org/ResultDatatypeTypeDescriptor#Integer"}],
        "performanceLevels": [{"performanceLevelDescriptor": "uri://ed-fi.org/PerformanceLevelDescriptor#Met Standard",
                               "assessmentReportingMethodDescriptor": METHOD + "Composite Score", "minimumScore": "24",
                               "maximumScore": "36", "resultDatatypeTypeDescriptor": "uri://ed-fi.org/ResultDatatypeTypeDescriptor#Integer"}],
        "contentStandard": {"title": "ACT"},
        "assessmentVersion": 2016,
        "revisionDate": "2016-03-12",
        "maxRawScore": 36.0,
        "namespace": NAMESPACE,
        "platformTypes": [{"platformTypeDescriptor": "uri://ed-fi.org/PlatformTypeDescriptor#Paper-based"},
                          {"platformTypeDescriptor": "uri://ed-fi.org/PlatformTypeDescriptor#Computer-based"}],
    }
    state = next(d for d in sample.documents["assessments"] if "periods" in d)
    assert state["periods"] == [{"assessmentPeriodDescriptor": "uri://ed-fi.org/AssessmentPeriodDescriptor#End of Year",
                                 "beginDate": "2022-03-29", "endDate": "2022-05-07"}]
    assert isinstance(state["contentStandard"]["publicationYear"], int)

    objective = sample.documents["objectiveAssessments"][0]
    assert objective["identificationCode"] == "State Assessment_Mathematics8-1"
    assert objective["academicSubjectDescriptor"] == "uri://ed-fi.org/AcademicSubjectDescriptor#Mathematics"  # one, not a list
    assert (objective["maxRawScore"], objective["percentOfAssessment"]) == (10.0, 0.2)
    assert objective["learningStandards"] == [{"learningStandardReference": {"learningStandardId": "111.24.NA.8.1.A"}}]
    assert objective["assessmentReference"] == {"assessmentIdentifier": "SA-2011-Mathematics-Eighth grade", "namespace": NAMESPACE}
    assert len(objective["performanceLevels"]) == 3 and len(objective["scores"]) == 1

    assert sample.documents["assessmentItems"][0] == {
        "identificationCode": "9848478",
        "assessmentItemCategoryDescriptor": "uri://ed-fi.org/AssessmentItemCategoryDescriptor#List Question",
        "maxRawScore": 1.0,
        "possibleResponses": [{"responseValue": "A", "correctResponse": True}],
        "learningStandards": [{"learningStandardReference": {"learningStandardId": "111.15.3.1.A"}}],
        "assessmentReference": {"assessmentIdentifier": "ae049cb3-33d0-431f-b0f3-a751df7217ef", "namespace": NAMESPACE},
    }


@pytest.mark.parametrize("xml, where", [
    ("<SerialNumber>1</SerialNumber><EventDescription>late bus</EventDescription>", "/EventDescription: no rule"),
    ("<SerialNumber>1</SerialNumber><SerialNumber>2</SerialNumber>", "/SerialNumber: repeated"),
    ("<SchoolYear>2021-2023</SchoolYear>", "/SchoolYear: '2021-2023' is no school year"),
    ("<PlatformType>Paper-based</PlatformType>", "/PlatformType: 'Paper-based' is no descriptor value"),
    ("<StudentReference><StudentLookup><StudentUniqueId>1</StudentUniqueId></StudentLookup></StudentReference>",
     "/StudentReference: a reference by identity was expected"),
])
def test_an_element_the_conversion_has_no_rule_for_stops_it(xml, where):
    element = ET.fromstring(f'<StudentAssessment xmlns="{NS[1:-1]}">{xml}</StudentAssessment>')
    with pytest.raises(UnknownElement, match=f"^test:StudentAssessment{where}"):
        convert_element(element, _STUDENT_ASSESSMENT, "test:StudentAssessment")


def test_every_document_follows_ezones_published_schema_with_only_its_properties(sample):
    documents = {**sample.documents,
                 "studentSchoolAssociations": student_school_associations(sample.documents["studentAssessments"])}

    def unknown(node, schema, path):
        if "$ref" in schema:
            schema = RESOURCE_COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]]
        if isinstance(node, dict):
            properties = schema.get("properties", {})
            for key, value in node.items():
                yield from unknown(value, properties[key], f"{path}.{key}") if key in properties else [f"{path}.{key}"]
        elif isinstance(node, list):
            for value in node:
                yield from unknown(value, schema.get("items", {}), f"{path}[]")

    for resource, docs in documents.items():
        validator = Draft4Validator(validation_schema(schema_name(resource)))
        assert [error.message for doc in docs for error in validator.iter_errors(doc)] == [], resource
        assert {path for doc in docs for path in unknown(doc, RESOURCE_COMPONENTS[schema_name(resource)], "$")} == set(), resource


def test_the_descriptor_values_used_are_ezones_seeded_defaults(sample):
    used = sample.descriptors()
    assert used["assessmentReportingMethodDescriptors"] == {METHOD + name for name in (
        "Composite Score", "Lexile Measure", "Proficiency level", "Raw score", "Scale score", "Vertical score")}
    assert len(used) == 17
    seeded = json.loads(DESCRIPTORS_JSON.read_text())
    missing = {resource: values - {f"{d['namespace']}#{d['codeValue']}" for d in seeded.get(resource, [])}
               for resource, values in used.items()}
    assert {resource: values for resource, values in missing.items() if values} == {}


def test_each_student_is_enrolled_for_the_school_year_at_the_school_of_its_grade(sample):
    results = sample.documents["studentAssessments"]
    enrollments = student_school_associations(results)
    students = {r["studentReference"]["studentUniqueId"] for r in results}
    assert len(enrollments) == len(students) == 165  # one school year: one enrollment per student

    by_student = {e["studentReference"]["studentUniqueId"]: e for e in enrollments}
    schools = {"Third grade": 255901107, "Fifth grade": 255901107, "Eighth grade": 255901044, "Eleventh grade": 255901001}
    for result in results:
        enrollment = by_student[result["studentReference"]["studentUniqueId"]]
        grade = result["whenAssessedGradeLevelDescriptor"]
        assert enrollment["schoolReference"] == {"schoolId": schools[grade.rsplit("#", 1)[1]]}
        assert enrollment["entryGradeLevelDescriptor"] == grade
        assert enrollment["schoolYearTypeReference"] == result["schoolYearTypeReference"] == {"schoolYear": 2022}
        administered = date.fromisoformat(result["administrationDate"][:10])
        assert date.fromisoformat(enrollment["entryDate"]) <= administered <= date.fromisoformat(enrollment["exitWithdrawDate"])
    # From the start of the school year (July 1); the state assessments' students from their 2021-04-01 test day.
    assert Counter(e["entryDate"] for e in enrollments) == {"2021-07-01": 148, "2021-04-01": 17}
    assert {e["exitWithdrawDate"] for e in enrollments} == {"2022-06-30"}
    assert descriptors_used(enrollments) == {"gradeLevelDescriptors": {
        f"uri://ed-fi.org/GradeLevelDescriptor#{grade}" for grade in schools}}


def test_a_student_assessed_in_two_grades_in_one_school_year_is_refused():
    result = {"studentReference": {"studentUniqueId": "1"}, "schoolYearTypeReference": {"schoolYear": 2022},
              "administrationDate": "2021-10-01T10:00:00"}
    with pytest.raises(ValueError, match="two grades or schools"):
        student_school_associations([{**result, "whenAssessedGradeLevelDescriptor": "uri://ed-fi.org/GradeLevelDescriptor#Fifth grade"},
                                     {**result, "whenAssessedGradeLevelDescriptor": "uri://ed-fi.org/GradeLevelDescriptor#Sixth grade"}])


def test_jsonl_files_hold_one_compact_document_a_line(tmp_path, sample):
    files = write_jsonl(tmp_path, {"assessmentItems": sample.documents["assessmentItems"]})
    lines = files["assessmentItems"].read_text().splitlines()
    assert [json.loads(line) for line in lines] == sample.documents["assessmentItems"]
    assert lines[0] == json.dumps(sample.documents["assessmentItems"][0], separators=(",", ":"))
