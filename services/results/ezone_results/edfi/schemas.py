"""Request and response bodies: SIS client registration, and the Ed-Fi Data Standard 5 resources
ezone accepts (camelCase JSON as the Ed-Fi API sends it; fields ezone has no use for are ignored)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel


class OAuthClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200, description="Who this client is, e.g. `PowerSchool (Duggan)`.")]
    schools: Annotated[list[uuid.UUID], Field(min_length=1, max_length=500, description="The zone's schools it may post results for.")]


class OAuthClientOut(BaseModel):
    client_id: str
    zone_id: str
    name: str
    schools: list[uuid.UUID]
    created_at: datetime
    created: bool = Field(description="True when this request registered the client.")
    client_secret: str | None = Field(
        None, description="Only in the answer that registered the client: store it now, ezone keeps only a hash of it."
    )


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


# Ed-Fi limits: identifiers up to 60 characters, unique ids 32, descriptors (URIs) 306.
Identifier = Annotated[str, Field(min_length=1, max_length=60)]
Descriptor = Annotated[str, Field(min_length=1, max_length=306, examples=["uri://ed-fi.org/GradeLevelDescriptor#Sixth grade"])]


class EdFiModel(BaseModel):
    model_config = ConfigDict(alias_generator=AliasGenerator(validation_alias=to_camel), extra="ignore")


class AssessmentReference(EdFiModel):
    assessment_identifier: Identifier
    namespace: Annotated[str, Field(min_length=1, max_length=255)]


class StudentReference(EdFiModel):
    student_unique_id: Annotated[str, Field(min_length=1, max_length=32, description="The SIS's pseudonymous student id.")]


class SchoolReference(EdFiModel):
    school_id: Annotated[int, Field(ge=1, description="The state school code (MCAS `school_code`) of a zone school.")]


class SchoolYearTypeReference(EdFiModel):
    school_year: Annotated[int, Field(ge=1990, le=2100, description="The year the school year ends: 2025 is 2024-25.")]


class ScoreResult(EdFiModel):
    assessment_reporting_method_descriptor: Descriptor
    result_datatype_type_descriptor: Descriptor
    result: Annotated[str, Field(min_length=1, max_length=35)]


class PerformanceLevel(EdFiModel):
    assessment_reporting_method_descriptor: Descriptor
    performance_level_descriptor: Descriptor
    performance_level_met: bool | None = None


class EzoneExtension(EdFiModel):
    academic_subject_descriptor: Descriptor | None = Field(
        None, description="The assessment's subject (e.g. `uri://ed-fi.org/AcademicSubjectDescriptor#Mathematics`) "
                          "when its identifier does not name it.")


class Extensions(BaseModel):
    ezone: EzoneExtension | None = None


class StudentAssessment(EdFiModel):
    """Ed-Fi `studentAssessment`. Natural key: studentAssessmentIdentifier, assessmentReference, studentReference."""

    student_assessment_identifier: Identifier
    assessment_reference: AssessmentReference
    student_reference: StudentReference
    administration_date: datetime
    school_year_type_reference: SchoolYearTypeReference | None = None
    reported_school_reference: SchoolReference | None = Field(
        None, description="The school the result counts for; without it, the student's enrollment on the administration date.")
    when_assessed_grade_level_descriptor: Descriptor | None = None
    reason_not_tested_descriptor: Descriptor | None = None
    score_results: list[ScoreResult] = Field(default_factory=list)
    performance_levels: list[PerformanceLevel] = Field(default_factory=list)
    student_objective_assessments: list[Any] = Field(default_factory=list, description="Accepted and ignored.")
    ext: Extensions | None = Field(None, validation_alias="_ext", description="`{\"ezone\": {\"academicSubjectDescriptor\": ...}}`")


class StudentSchoolAssociation(EdFiModel):
    """Ed-Fi `studentSchoolAssociation`. Natural key: entryDate, schoolReference, studentReference."""

    student_reference: StudentReference
    school_reference: SchoolReference
    entry_date: date
    entry_grade_level_descriptor: Descriptor
    exit_withdraw_date: date | None = None
    school_year_type_reference: SchoolYearTypeReference | None = None

    @field_validator("exit_withdraw_date")
    @classmethod
    def _not_before_entry(cls, value: date | None, info: ValidationInfo) -> date | None:
        entry = info.data.get("entry_date")
        if value is not None and entry is not None and value < entry:
            raise ValueError("must not be before entryDate")
        return value
