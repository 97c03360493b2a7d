"""The Ed-Fi OpenAPI component schemas and default descriptors, without a database: every `$ref` resolves, every
schema compiles for jsonschema (Draft 4, as lightbeam validates) and fastjsonschema (as ezone validates), lightbeam's
walks over them (required, identity, uniqueness of array items) work, the descriptor seeds fit their schemas, and the
Grand Bend sample interchange files turn into JSON bodies that the schemas accept, with seeded descriptor values."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from ezone_results.edfi.openapi_schemas import (
    DESCRIPTOR_COMPONENTS,
    DESCRIPTOR_RESOURCES,
    DESCRIPTORS_JSON,
    FASTJSONSCHEMA_FORMATS,
    RESOURCE_COMPONENTS,
    RESOURCES,
    schema_name,
    validation_schema,
)
from jsonschema import Draft4Validator

from ezone.demo import default_data_dir

EDFI_DIR = default_data_dir() / "edfi"
REF_PREFIX = "#/components/schemas/"
ALL_COMPONENTS = {**RESOURCE_COMPONENTS, **DESCRIPTOR_COMPONENTS}
TYPES = {"string", "integer", "number", "boolean", "object", "array"}
SERVER_SET = {"id", "_etag", "_lastModifiedDate", "link", "rel", "href"}


def sample_files() -> list[Path]:
    files = sorted(EDFI_DIR.glob("*.xml"))
    if not files:
        pytest.skip(f"no Ed-Fi sample files in {EDFI_DIR}")
    return files


@cache
def seeds() -> dict[str, list[dict]]:
    return json.loads(DESCRIPTORS_JSON.read_text(encoding="utf-8"))


def components_of(name: str) -> dict[str, dict]:
    return DESCRIPTOR_COMPONENTS if name in DESCRIPTOR_COMPONENTS else RESOURCE_COMPONENTS


def resolve(schema: dict, components: dict[str, dict] = RESOURCE_COMPONENTS) -> dict:
    return components[schema["$ref"].removeprefix(REF_PREFIX)] if "$ref" in schema else schema


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


def properties_of(schema: dict, path: str) -> Iterator[tuple[str, str, dict]]:
    """(path, name, property) for each property of an object schema, inline objects included."""
    for name, prop in schema.get("properties", {}).items():
        yield f"{path}.{name}", name, prop
        if "properties" in prop:
            yield from properties_of(prop, f"{path}.{name}")


@cache
def jsonschema_validator(name: str) -> Draft4Validator:
    return Draft4Validator(validation_schema(name))


@cache
def fast_validator(name: str):  # noqa: ANN201 - a compiled validation function
    return fastjsonschema.compile(validation_schema(name), formats=FASTJSONSCHEMA_FORMATS)


# --- the shape of the component sets -------------------------------------------------------------------------------


def test_every_resource_and_descriptor_resource_has_its_schema_under_the_name_lightbeam_looks_up():
    assert len(set(RESOURCES)) == len(RESOURCES) == 6
    assert DESCRIPTOR_RESOURCES == sorted(set(DESCRIPTOR_RESOURCES))
    for endpoint in RESOURCES:
        assert schema_name(endpoint) in RESOURCE_COMPONENTS, endpoint
    assert {schema_name(endpoint) for endpoint in DESCRIPTOR_RESOURCES} == set(DESCRIPTOR_COMPONENTS)
    assert not set(RESOURCE_COMPONENTS) & set(DESCRIPTOR_COMPONENTS)
    assert all(name.startswith("edFi_") for name in ALL_COMPONENTS)
    assert schema_name("studentAssessments") == "edFi_studentAssessment"
    assert schema_name("academicSubjectDescriptors") == "edFi_academicSubjectDescriptor"


def test_every_descriptor_a_resource_uses_is_a_descriptor_resource_and_no_other():
    used = set()
    for schema in RESOURCE_COMPONENTS.values():
        for _, name, prop in properties_of(schema, ""):
            if name.endswith("Descriptor"):
                assert prop == {"type": "string", "maxLength": 306} or prop == {
                    "type": "string", "maxLength": 306, "x-Ed-Fi-isIdentity": True}, name
                used.add(name)
    # Role-named uses of a descriptor: administrationLanguage is a language, whenAssessedGradeLevel a grade level, ...
    roles = {"administrationLanguage": "language", "whenAssessedGradeLevel": "gradeLevel", "entryGradeLevel": "gradeLevel",
             "nextYearGradeLevel": "gradeLevel"}
    referenced = {roles.get(name[: -len("Descriptor")], name[: -len("Descriptor")]) + "Descriptors" for name in used}
    assert referenced == set(DESCRIPTOR_RESOURCES)


def test_every_ref_resolves_within_its_component_set():
    for components in (RESOURCE_COMPONENTS, DESCRIPTOR_COMPONENTS):
        for name, schema in components.items():
            for path, node in walk(schema, name):
                if isinstance(node, dict) and "$ref" in node:
                    ref = node["$ref"]
                    assert ref.startswith(REF_PREFIX), f"{path}: {ref}"
                    assert ref.removeprefix(REF_PREFIX) in components, f"{path}: {ref} does not resolve"
                    assert set(node) == {"$ref"}, f"{path}: a $ref has siblings"


def test_every_property_has_a_type_and_strings_their_lengths():
    for name, schema in ALL_COMPONENTS.items():
        assert schema["type"] == "object" and schema["properties"], name
        for path, prop_name, prop in properties_of(schema, name):
            if "$ref" in prop:
                continue
            assert prop.get("type") in TYPES, f"{path} has no type"
            if prop["type"] == "string" and prop_name not in SERVER_SET:
                assert "format" in prop or isinstance(prop.get("maxLength"), int), f"{path} has no maxLength"
            if prop.get("format"):
                assert prop["format"] in {"date", "date-time"}, path
            if prop["type"] == "array":
                # lightbeam follows `items.$ref` for every array a payload carries
                assert set(prop["items"]) == {"$ref"}, f"{path}: items must be a $ref"
        for path, node in walk(schema, name):
            if isinstance(node, dict):
                assert not {"anyOf", "oneOf", "allOf", "nullable"} & set(node), path
                assert node.get("additionalProperties") is not False, path
        assert set(schema.get("required", [])) <= set(schema["properties"]), name


def test_server_set_fields_are_on_resources_and_links_on_references_and_never_required():
    for name, schema in ALL_COMPONENTS.items():
        props, required = schema["properties"], set(schema.get("required", []))
        is_resource = name in {schema_name(endpoint) for endpoint in RESOURCES} or name in DESCRIPTOR_COMPONENTS
        if is_resource:
            assert props["id"]["type"] == props["_etag"]["type"] == "string", name
            assert props["_lastModifiedDate"] == {**props["_lastModifiedDate"], "type": "string", "format": "date-time"}
        else:
            assert not {"id", "_etag", "_lastModifiedDate"} & set(props), name
        if name.endswith("Reference"):
            assert props["link"]["type"] == "object", name
            assert {key: value["type"] for key, value in props["link"]["properties"].items()} == {"rel": "string", "href": "string"}
            assert required == set(props) - {"link"}, name
            assert all(props[key].get("x-Ed-Fi-isIdentity") is True for key in required), name
        assert not SERVER_SET & required, name


# --- Draft 4 and fastjsonschema -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALL_COMPONENTS))
def test_schema_compiles_with_jsonschema_draft4_and_fastjsonschema(name: str):
    document = validation_schema(name)
    Draft4Validator.check_schema(document)
    Draft4Validator.check_schema(ALL_COMPONENTS[name])
    fastjsonschema.compile(document)
    fastjsonschema.compile(document, formats=FASTJSONSCHEMA_FORMATS)


def test_lightbeam_style_validation_resolves_refs_against_the_whole_document():
    """lightbeam: Draft4Validator(schema, resolver=RefResolver("test", swagger, swagger)); this is its equivalent."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    swagger = {"openapi": "3.0.1", "components": {"schemas": RESOURCE_COMPONENTS}}
    registry = Registry().with_resource("test", Resource.from_contents(swagger, default_specification=DRAFT4))
    schema = {"$ref": "test#/components/schemas/edFi_studentAssessment"}
    validator = Draft4Validator(schema, registry=registry)
    good = {"studentAssessmentIdentifier": "x", "assessmentReference": {"assessmentIdentifier": "a", "namespace": "uri://n"},
            "studentReference": {"studentUniqueId": "1"},
            "scoreResults": [{"assessmentReportingMethodDescriptor": "uri://ed-fi.org/AssessmentReportingMethodDescriptor#Scale score",
                              "resultDatatypeTypeDescriptor": "uri://ed-fi.org/ResultDatatypeTypeDescriptor#Integer",
                              "result": "497"}]}
    assert not list(validator.iter_errors(good))
    bad = json.loads(json.dumps(good))
    del bad["scoreResults"][0]["result"]
    bad["studentReference"]["studentUniqueId"] = "9" * 33
    messages = sorted(error.message for error in validator.iter_errors(bad))
    assert messages == ["'999999999999999999999999999999999' is too long", "'result' is a required property"]


def test_fastjsonschema_takes_ed_fi_date_times_with_or_without_a_zone():
    check = fast_validator("edFi_studentAssessment")
    body = {"studentAssessmentIdentifier": "x", "assessmentReference": {"assessmentIdentifier": "a", "namespace": "uri://n"},
            "studentReference": {"studentUniqueId": "1"}}
    for when in ("2021-12-01T16:00:00", "2021-12-01T16:00:00Z", "2021-12-01T16:00:00.123-05:00"):
        check({**body, "administrationDate": when})
    for when in ("2021-12-01", "yesterday", "2021-13-01T16:00:00"):
        with pytest.raises(fastjsonschema.JsonSchemaValueException):
            check({**body, "administrationDate": when})
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        fast_validator("edFi_studentSchoolAssociation")({"entryDate": "08/23/2021"})


# --- Data Standard 5.2 requirements and identities, as lightbeam reads them -----------------------------------------


def required_params(name: str, prefix: str = "") -> dict[str, str]:
    """lightbeam's get_required_params_from_swagger."""
    schema, params = RESOURCE_COMPONENTS[name], {}
    for prop in schema["required"]:
        definition = schema["properties"][prop]
        if "$ref" in definition:
            params |= required_params(definition["$ref"].removeprefix(REF_PREFIX), prop + ".")
        elif definition["type"] != "array":
            params[prop] = prefix + prop
    return params


def identity_params(name: str, prefix: str = "") -> dict[str, str]:
    """lightbeam's get_identity_params_from_swagger."""
    schema, params = RESOURCE_COMPONENTS[name], {}
    for prop, definition in schema["properties"].items():
        if prop.endswith("Reference") and prop in schema.get("required", []) and "$ref" in definition:
            params |= identity_params(definition["$ref"].removeprefix(REF_PREFIX), prop + ".")
        elif "type" in definition and definition["type"] != "array" and "x-Ed-Fi-isIdentity" in definition:
            params[prop] = prefix + prop
    return params


def test_required_members_follow_data_standard_5_2():
    required = {name: set(RESOURCE_COMPONENTS[schema_name(name)]["required"]) for name in RESOURCES}
    assert required == {
        "schools": {"schoolId", "nameOfInstitution", "educationOrganizationCategories", "gradeLevels"},
        "assessments": {"assessmentIdentifier", "namespace", "assessmentTitle", "academicSubjects"},
        "assessmentItems": {"identificationCode", "assessmentReference"},
        "objectiveAssessments": {"identificationCode", "assessmentReference"},
        "studentSchoolAssociations": {"entryDate", "entryGradeLevelDescriptor", "schoolReference", "studentReference"},
        # administrationDate is optional since Data Standard 5.0 (a student who was not tested has none)
        "studentAssessments": {"studentAssessmentIdentifier", "assessmentReference", "studentReference"},
    }
    minimum_one = {(name, prop) for name, schema in RESOURCE_COMPONENTS.items()
                   for prop, definition in schema["properties"].items() if definition.get("minItems")}
    assert minimum_one == {("edFi_assessment", "academicSubjects"), ("edFi_school", "educationOrganizationCategories"),
                           ("edFi_school", "gradeLevels")}
    for name, prop in minimum_one:
        assert prop in RESOURCE_COMPONENTS[name]["required"] and RESOURCE_COMPONENTS[name]["properties"][prop]["minItems"] == 1
    assert required_params("edFi_studentAssessment") == {
        "studentAssessmentIdentifier": "studentAssessmentIdentifier", "assessmentIdentifier": "assessmentReference.assessmentIdentifier",
        "namespace": "assessmentReference.namespace", "studentUniqueId": "studentReference.studentUniqueId"}
    assert required_params("edFi_assessmentItem") == {
        "identificationCode": "identificationCode", "assessmentIdentifier": "assessmentReference.assessmentIdentifier",
        "namespace": "assessmentReference.namespace"}


def test_identities_are_the_data_standard_natural_keys():
    identities = {name: identity_params(schema_name(name)) for name in RESOURCES}
    assert identities == {
        "schools": {"schoolId": "schoolId"},
        "assessments": {"assessmentIdentifier": "assessmentIdentifier", "namespace": "namespace"},
        "assessmentItems": {"identificationCode": "identificationCode", "assessmentIdentifier": "assessmentReference.assessmentIdentifier",
                            "namespace": "assessmentReference.namespace"},
        "objectiveAssessments": {"identificationCode": "identificationCode",
                                 "assessmentIdentifier": "assessmentReference.assessmentIdentifier",
                                 "namespace": "assessmentReference.namespace"},
        "studentSchoolAssociations": {"entryDate": "entryDate", "schoolId": "schoolReference.schoolId",
                                      "studentUniqueId": "studentReference.studentUniqueId"},
        "studentAssessments": {"studentAssessmentIdentifier": "studentAssessmentIdentifier",
                               "assessmentIdentifier": "assessmentReference.assessmentIdentifier",
                               "namespace": "assessmentReference.namespace", "studentUniqueId": "studentReference.studentUniqueId"},
    }
    for name, schema in DESCRIPTOR_COMPONENTS.items():
        assert {key for key, prop in schema["properties"].items() if prop.get("x-Ed-Fi-isIdentity")} == {"namespace", "codeValue"}
        assert schema["required"] == ["namespace", "codeValue", "shortDescription"]
        stem = name.removeprefix("edFi_")
        assert schema["properties"][stem + "Id"] == {"type": "integer"}
        assert {key: schema["properties"][key].get("maxLength") for key in ("namespace", "codeValue", "shortDescription", "description")} == {
            "namespace": 255, "codeValue": 50, "shortDescription": 75, "description": 1024}


def test_every_collection_item_has_a_required_identity_so_lightbeam_can_tell_items_apart():
    """lightbeam hashes each array item's identity to find duplicates: an item schema without one would make any two
    items duplicates, and an identity member that is not required would fail on items without it."""
    for name, schema in RESOURCE_COMPONENTS.items():
        for prop, definition in schema["properties"].items():
            if definition.get("type") != "array":
                continue
            item_name = definition["items"]["$ref"].removeprefix(REF_PREFIX)
            identity = identity_params(item_name)
            assert identity, f"{name}.{prop}: its items have no identity"
            item = RESOURCE_COMPONENTS[item_name]
            for path in identity.values():
                head = path.split(".")[0]
                assert head in item["required"], f"{item_name}.{path} is identity but not required"


# --- descriptor seeds -----------------------------------------------------------------------------------------------


def test_descriptor_seeds_cover_exactly_the_descriptor_resources_sorted_and_unique():
    data = seeds()
    assert list(data) == sorted(data) and set(data) == set(DESCRIPTOR_RESOURCES)
    text = DESCRIPTORS_JSON.read_text(encoding="utf-8")
    assert len(text.splitlines()) > sum(len(values) for values in data.values()), "one descriptor a line"
    for resource, values in data.items():
        namespace = "uri://ed-fi.org/" + resource[0].upper() + resource[1:-1]
        keys = [(value["namespace"], value["codeValue"]) for value in values]
        assert keys == sorted(set(keys)), resource
        assert all(value["namespace"] == namespace for value in values), resource
    # Ed-Fi publishes no default values for the indicator descriptors; every other one has some
    assert {resource for resource, values in data.items() if not values} == {
        "indicatorDescriptors", "indicatorGroupDescriptors", "indicatorLevelDescriptors"}


@pytest.mark.parametrize("resource", DESCRIPTOR_RESOURCES)
def test_each_descriptor_seed_validates_against_its_schema(resource: str):
    name = schema_name(resource)
    for value in seeds()[resource]:
        assert set(value) == {"namespace", "codeValue", "shortDescription", "description"}
        jsonschema_validator(name).validate(value)
        fast_validator(name)(value)
        assert len(f"{value['namespace']}#{value['codeValue']}") <= 306


def descriptor_values_in(files: list[Path]) -> set[str]:
    values = set()
    for path in files:
        for element in ET.parse(path).getroot().iter():
            text = (element.text or "").strip()
            if text.startswith("uri://") and "#" in text:
                values.add(text)
    return values


def seeded(value: str) -> bool:
    namespace, code_value = value.split("#", 1)
    resource = namespace.rsplit("/", 1)[-1]
    resource = resource[0].lower() + resource[1:] + "s"
    return any(seed["codeValue"] == code_value and seed["namespace"] == namespace for seed in seeds().get(resource, []))


def test_every_descriptor_value_in_the_sample_files_is_seeded():
    used = descriptor_values_in(sample_files())
    assert len(used) > 30
    assert sorted(value for value in used if not seeded(value)) == []


# --- the Grand Bend interchange files as the JSON the API takes -----------------------------------------------------

XML_NS = "{http://ed-fi.org/5.2.0}"
# Interchange elements whose JSON name is not the element's own (camelCased, `Descriptor` added to a descriptor).
COLLECTIONS = {
    ("edFi_assessment", "AssessmentIdentificationCode"): "identificationCodes",
    ("edFi_assessment", "AcademicSubject"): "academicSubjects",
    ("edFi_assessment", "AssessedGradeLevel"): "assessedGradeLevels",
    ("edFi_assessment", "AssessmentScore"): "scores",
    ("edFi_assessment", "AssessmentPerformanceLevel"): "performanceLevels",
    ("edFi_assessment", "AssessmentPeriod"): "periods",
    ("edFi_assessment", "Language"): "languages",
    ("edFi_assessment", "PlatformType"): "platformTypes",
    ("edFi_assessment", "SectionReference"): "sections",
    ("edFi_assessment", "ProgramReference"): "programs",
    ("edFi_assessmentContentStandard", "Author"): "authors",
    ("edFi_assessmentItem", "LearningStandardReference"): "learningStandards",
    ("edFi_assessmentItem", "PossibleResponse"): "possibleResponses",
    ("edFi_objectiveAssessment", "AssessmentPerformanceLevel"): "performanceLevels",
    ("edFi_objectiveAssessment", "AssessmentScore"): "scores",
    ("edFi_objectiveAssessment", "LearningStandardReference"): "learningStandards",
    ("edFi_objectiveAssessment", "AssessmentItemReference"): "assessmentItems",
    ("edFi_studentAssessment", "Accommodation"): "accommodations",
    ("edFi_studentAssessment", "PerformanceLevel"): "performanceLevels",
    ("edFi_studentAssessment", "ScoreResult"): "scoreResults",
    ("edFi_studentAssessment", "StudentAssessmentItem"): "items",
    ("edFi_studentAssessment", "StudentObjectiveAssessment"): "studentObjectiveAssessments",
    ("edFi_studentAssessment", "AssessmentPeriod"): "period",
    ("edFi_studentAssessmentStudentObjectiveAssessment", "PerformanceLevel"): "performanceLevels",
    ("edFi_studentAssessmentStudentObjectiveAssessment", "ScoreResult"): "scoreResults",
}


def local(tag: str) -> str:
    return tag.removeprefix(XML_NS)


def camel(name: str) -> str:
    return name[0].lower() + name[1:]


def scalar(text: str, prop: dict) -> Any:
    text = text.strip()
    match prop["type"]:
        case "integer":
            return int(text)
        case "number":
            return float(text)
        case "boolean":
            return text in ("true", "1")
        case _:
            return text


def reference_json(element: ET.Element, schema: dict) -> dict:
    """<XReference><XIdentity>...</XIdentity></XReference>: the identity's members, nested references flattened."""
    (identity,) = list(element)
    body: dict = {}
    for child in identity:
        if local(child.tag).endswith("Reference"):
            body |= reference_json(child, schema)
            continue
        name = camel(local(child.tag))
        name = name if name in schema["properties"] else name + "Descriptor"
        assert name in schema["properties"], f"{local(element.tag)}/{local(child.tag)}"
        body[name] = scalar(child.text or "", schema["properties"][name])
    return body


def to_json(element: ET.Element, schema_name_: str) -> dict:
    """An interchange element as the Ed-Fi API's JSON, following the schema; fails on an element it has no property for."""
    schema = RESOURCE_COMPONENTS[schema_name_]
    props = schema["properties"]
    body: dict = {}
    for child in element:
        tag = local(child.tag)
        if tag == "SchoolYear":  # the interchange's `2021-2022`: the API names a school year by the year it ends
            body["schoolYearTypeReference"] = {"schoolYear": int(child.text.split("-")[-1])}
            continue
        name = COLLECTIONS.get((schema_name_, tag), camel(tag))
        if name not in props:
            name += "Descriptor"
        assert name in props, f"{schema_name_}: no property for <{tag}>"
        prop = props[name]
        if prop.get("type") == "array":
            item_name = prop["items"]["$ref"].removeprefix(REF_PREFIX)
            item = RESOURCE_COMPONENTS[item_name]
            if tag.endswith("Reference"):  # a collection of references: {"xReference": {...}}
                (ref_prop,) = item["required"]
                value = {ref_prop: reference_json(child, resolve(item["properties"][ref_prop]))}
            elif len(child) == 0:  # a collection of descriptors: {"xDescriptor": "uri://..."}
                (descriptor,) = item["required"]
                value = {descriptor: child.text.strip()}
            else:
                value = to_json(child, item_name)
            body.setdefault(name, []).append(value)
        elif "$ref" in prop:
            target = prop["$ref"].removeprefix(REF_PREFIX)
            body[name] = reference_json(child, RESOURCE_COMPONENTS[target]) if name.endswith("Reference") else to_json(child, target)
        else:
            assert len(child) == 0, f"{schema_name_}: <{tag}> has children but {name} is a {prop['type']}"
            body[name] = scalar(child.text or "", prop)
    return body


def item_duplicates(body: dict, name: str) -> list[str]:
    """lightbeam's uniqueness check of a payload's arrays: two items of one array with the same identity."""
    problems = []
    for key, value in body.items():
        if isinstance(value, list):
            item_name = RESOURCE_COMPONENTS[name]["properties"][key]["items"]["$ref"].removeprefix(REF_PREFIX)
            identity = identity_params(item_name)
            seen = set()
            for item in value:
                hashed = []
                for path in identity.values():
                    current = item
                    for part in path.split("."):
                        current = current[part]
                    hashed.append(current)
                if json.dumps(hashed) in seen:
                    problems.append(f"{key}: {hashed}")
                seen.add(json.dumps(hashed))
    return problems


def descriptor_values(body: Any) -> Iterator[str]:
    for _, node in walk(body):
        if isinstance(node, dict):
            yield from (value for key, value in node.items() if key.endswith("Descriptor") and isinstance(value, str))


def test_the_sample_interchange_files_become_bodies_the_schemas_accept():
    counts: dict[str, int] = {}
    for path in sample_files():
        for element in ET.parse(path).getroot():
            tag = local(element.tag)
            name = "edFi_" + camel(tag)
            assert name in RESOURCE_COMPONENTS, f"{path.name}: <{tag}>"
            body = to_json(element, name)
            errors = sorted(error.message for error in jsonschema_validator(name).iter_errors(body))
            assert not errors, f"{path.name} <{tag}>: {errors}"
            fast_validator(name)(body)
            assert not item_duplicates(body, name), f"{path.name} <{tag}>"
            unseeded = sorted(value for value in descriptor_values(body) if not seeded(value))
            assert not unseeded, f"{path.name} <{tag}>: {unseeded}"
            counts[name] = counts.get(name, 0) + 1
    assert set(counts) == {"edFi_assessment", "edFi_objectiveAssessment", "edFi_assessmentItem", "edFi_studentAssessment"}
    assert counts["edFi_studentAssessment"] > 500


def test_a_sample_student_assessment_becomes_the_ed_fi_api_json():
    path = next((p for p in sample_files() if p.name == "StudentAssessment-StateAssessment.xml"), None)
    if path is None:
        pytest.skip("StudentAssessment-StateAssessment.xml is not available")
    element = next(e for e in ET.parse(path).getroot() if e.find(f"{XML_NS}StudentObjectiveAssessment") is not None)
    body = to_json(element, "edFi_studentAssessment")
    assert set(body) >= {"studentAssessmentIdentifier", "assessmentReference", "studentReference", "administrationDate",
                         "schoolYearTypeReference", "scoreResults", "studentObjectiveAssessments"}
    objective = body["studentObjectiveAssessments"][0]
    assert set(objective["objectiveAssessmentReference"]) == {"assessmentIdentifier", "identificationCode", "namespace"}
    assert re.fullmatch(r"20\d\d", str(body["schoolYearTypeReference"]["schoolYear"]))
    assert all(set(score) == {"assessmentReportingMethodDescriptor", "resultDatatypeTypeDescriptor", "result"}
               for score in body["scoreResults"])
