"""The Ed-Fi resources ezone serves, as data: each one's natural key, the references it must resolve, the order a
client loads them in, and who may write it. Routes, storage, metadata and dependencies all read this one table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .openapi_schemas import DESCRIPTOR_RESOURCES

NAMESPACE = "ed-fi"


@dataclass(frozen=True)
class Key:
    """One field of a natural key: its name as a GET list filter, and where it is in the document."""

    name: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class Reference:
    """A reference the document makes (at `path`, in each item of `collection` when given) to another resource,
    whose natural key fields it names (`fields`: the reference's field → the target's key name)."""

    path: str
    resource: str
    fields: tuple[tuple[str, str], ...]
    collection: str | None = None


@dataclass(frozen=True)
class Resource:
    name: str  # plural, as in the URL: studentAssessments
    keys: tuple[Key, ...]
    order: int  # dependency order: a resource's references point at lower orders
    references: tuple[Reference, ...] = ()
    descriptor: bool = False
    read_only: bool = False  # the zone's schools come from the plans service, not from Ed-Fi clients
    school_bound: bool = False  # student data: a school-bound client sees and changes only its schools'

    @property
    def component(self) -> str:
        """Its OpenAPI component schema: `edFi_studentAssessment`, `edFi_academicSubjectDescriptor`."""
        singular = self.name[:-3] + "y" if self.name.endswith("ies") else self.name[:-1]
        return f"edFi_{singular}"

    def identity_of(self, document: dict[str, Any]) -> dict[str, Any] | None:
        """The natural key's values by name, or None when one is missing (the schema check says which)."""
        identity = {}
        for key in self.keys:
            value: Any = document
            for part in key.path:
                if not isinstance(value, dict) or part not in value:
                    return None
                value = value[part]
            identity[key.name] = value
        return identity


def _key(name: str, *path: str) -> Key:
    return Key(name, path or (name,))


_ASSESSMENT_KEY = (_key("assessmentIdentifier", "assessmentReference", "assessmentIdentifier"),
                   _key("namespace", "assessmentReference", "namespace"))
_ASSESSMENT_REFERENCE = Reference("assessmentReference", "assessments",
                                  (("assessmentIdentifier", "assessmentIdentifier"), ("namespace", "namespace")))
_ITEM_FIELDS = (("assessmentIdentifier", "assessmentIdentifier"), ("identificationCode", "identificationCode"),
                ("namespace", "namespace"))

RESOURCES: dict[str, Resource] = {
    **{name: Resource(name, (_key("namespace"), _key("codeValue")), order=1, descriptor=True)
       for name in DESCRIPTOR_RESOURCES},
    "schools": Resource("schools", (_key("schoolId"),), order=2, read_only=True),
    "assessments": Resource("assessments", (_key("assessmentIdentifier"), _key("namespace")), order=3),
    "assessmentItems": Resource("assessmentItems", (_key("identificationCode"), *_ASSESSMENT_KEY), order=4,
                                references=(_ASSESSMENT_REFERENCE,)),
    "objectiveAssessments": Resource(
        "objectiveAssessments", (_key("identificationCode"), *_ASSESSMENT_KEY), order=5,
        references=(_ASSESSMENT_REFERENCE,
                    Reference("parentObjectiveAssessmentReference", "objectiveAssessments", _ITEM_FIELDS),
                    Reference("assessmentItemReference", "assessmentItems", _ITEM_FIELDS, collection="assessmentItems"))),
    "studentSchoolAssociations": Resource(
        "studentSchoolAssociations",
        (_key("entryDate"), _key("schoolId", "schoolReference", "schoolId"),
         _key("studentUniqueId", "studentReference", "studentUniqueId")),
        order=6, school_bound=True,
        references=(Reference("schoolReference", "schools", (("schoolId", "schoolId"),)),)),
    "studentAssessments": Resource(
        "studentAssessments",
        (_key("studentAssessmentIdentifier"), *_ASSESSMENT_KEY,
         _key("studentUniqueId", "studentReference", "studentUniqueId")),
        order=7, school_bound=True,
        references=(_ASSESSMENT_REFERENCE,
                    Reference("reportedSchoolReference", "schools", (("schoolId", "schoolId"),)),
                    Reference("objectiveAssessmentReference", "objectiveAssessments", _ITEM_FIELDS,
                              collection="studentObjectiveAssessments"),
                    Reference("assessmentItemReference", "assessmentItems", _ITEM_FIELDS, collection="items"))),
}


def resource(name: str) -> Resource | None:
    return RESOURCES.get(name)


def references_in(resource: Resource, document: dict[str, Any]) -> Iterator[tuple[str, Reference, dict[str, Any]]]:
    """Each reference the document makes: its JSON path, what it references, and the target's key values."""
    for reference in resource.references:
        if reference.collection is None:
            places = [(f"$.{reference.path}", document.get(reference.path))]
        else:
            items = document.get(reference.collection) or []
            places = [(f"$.{reference.collection}[{i}].{reference.path}", item.get(reference.path))
                      for i, item in enumerate(items) if isinstance(item, dict)]
        for path, value in places:
            if isinstance(value, dict):
                yield path, reference, {target: value.get(field) for field, target in reference.fields}
