"""The Ed-Fi-compatible API: an SIS that speaks Ed-Fi (Data Standard 5) posts here without new code."""

from __future__ import annotations

from typing import Annotated

from ezone_kit.auth import Principal, require_roles
from fastapi import APIRouter, Depends, Request, Response, status

from . import service
from .problems import EdFiRoute
from .schemas import StudentAssessment, StudentSchoolAssociation
from .service import EdFi

PREFIX = "/ed-fi/v3/ed-fi"
router = APIRouter(prefix=PREFIX, tags=["ed-fi"], route_class=EdFiRoute)

Writer = Annotated[Principal, Depends(require_roles("sis", "admin", "district"))]


async def edfi(request: Request) -> EdFi:
    """One per running app (its school code cache). Async: FastAPI runs a plain function in a worker thread."""
    state = request.app.state
    if getattr(state, "edfi", None) is None or state.edfi.kit is not state.kit:
        state.edfi = EdFi(state.kit)
    return state.edfi


EdFiDep = Annotated[EdFi, Depends(edfi)]

_ANSWERS = {
    status.HTTP_200_OK: {"description": "Updated, or already as sent (no change)."},
    status.HTTP_400_BAD_REQUEST: {"description": "Data validation failed: `validationErrors` by JSON path. Nothing stored."},
    status.HTTP_403_FORBIDDEN: {"description": "The token does not act for the school. Nothing stored."},
    status.HTTP_409_CONFLICT: {"description": "Unknown school, or the result is held by another studentAssessmentIdentifier."},
}


def _upserted(resource: str, upserted: service.Upserted) -> Response:
    if upserted.created:
        return Response(status_code=status.HTTP_201_CREATED, headers={"Location": f"{PREFIX}/{resource}/{upserted.id}"})
    return Response(status_code=status.HTTP_200_OK)


@router.post("/studentAssessments", status_code=status.HTTP_201_CREATED, responses=_ANSWERS, response_class=Response,
             summary="Create or update a student's assessment result")
async def post_student_assessment(body: StudentAssessment, principal: Writer, context: EdFiDep) -> Response:
    """Upsert on the Ed-Fi natural key: 201 with `Location` when new, 200 when updated or unchanged.
    The school is `reportedSchoolReference.schoolId` (a zone school's state code), else the student's
    enrollment on the administration date; the subject is `_ext.ezone.academicSubjectDescriptor`, else
    read from the assessment identifier."""
    return _upserted("studentAssessments", await service.post_student_assessment(context, principal, body))


@router.post("/studentSchoolAssociations", status_code=status.HTTP_201_CREATED, responses=_ANSWERS,
             response_class=Response, summary="Create or update a student's enrollment at a school")
async def post_student_school_association(body: StudentSchoolAssociation, principal: Writer, context: EdFiDep) -> Response:
    """Upsert on the Ed-Fi natural key (entryDate, school, student): 201 when new, 200 when updated or unchanged."""
    return _upserted("studentSchoolAssociations", await service.post_student_school_association(context, principal, body))
