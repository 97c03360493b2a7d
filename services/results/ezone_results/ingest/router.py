"""Student results and enrollments in: JSON batches, a streamed CSV upload, and the batches' status."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from ezone_kit.auth import Principal, ensure_zone, require_roles
from ezone_kit.body_limit import streamed_body
from ezone_kit.openapi import problem_responses, replayed
from ezone_kit.problems import Problem
from ezone_kit.service import KitDep, SessionDep, UnitOfWorkDep
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import BaseModel

from . import service
from .schemas import BatchStatus, BatchSummary, EnrollmentBatchIn, ResultBatchIn

router = APIRouter(prefix="/zones/{zone_id}", tags=["ingest"])

Submitter = Annotated[Principal, Depends(require_roles("sis", "district", "admin"))]
IdempotencyKey = Annotated[str | None, Header(max_length=255, description="Send the same key again to get the first answer, with no second effect.")]
Partial = Annotated[bool, Query(description="Store the valid rows and list the others, instead of storing nothing when a "
                                           "row is invalid. A batch with no valid row is refused (422) either way.")]

_BATCH_ANSWERS = {
    **replayed(BatchSummary, "The batch this Idempotency-Key already stored, as it was stored."),
    **problem_responses(
        (403, "A row for a school the token does not act for; nothing was stored."),
        (413, "More than 10,000 rows, or a body over the request body limit (`EZONE_MAX_REQUEST_BODY_BYTES`, 16 MiB by "
              "default); nothing was stored."),
        (415, "A body that is not sent as JSON."),
        (422, "Invalid rows (every one listed, with `row`, `field`, `reason`); nothing was stored.")),
}


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI description of a JSON body the endpoint reads itself (`service.post_batch` parses it, so FastAPI
    does not), its schema's definitions written in place."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            return inline(definitions[node["$ref"].rsplit("/", 1)[1]]) if "$ref" in node else {k: inline(v) for k, v in node.items()}
        return [inline(item) for item in node] if isinstance(node, list) else node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}


async def _post(request: Request, uow: UnitOfWorkDep, principal: Principal, zone_id: str, kind: service.RowKind, partial: bool,
                idempotency_key: str | None, response: Response) -> BatchSummary:
    ensure_zone(principal, zone_id)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Problem(415, f"Send the rows as `Content-Type: application/json` (got {media_type or 'none'}).")
    summary, created = await service.post_batch(uow, principal, zone_id, kind, await request.body(), partial=partial,
                                                idempotency_key=idempotency_key)
    response.headers["Location"] = f"/zones/{zone_id}/batches/{summary.batch_id}"
    if not created:
        response.status_code = status.HTTP_200_OK
    return summary


@router.post("/results", response_model=BatchSummary, status_code=status.HTTP_201_CREATED, responses=_BATCH_ANSWERS,
             summary="Post a batch of student results (up to 10,000 rows)", openapi_extra=_json_body(ResultBatchIn))
async def post_results(zone_id: str, request: Request, principal: Submitter, uow: UnitOfWorkDep, response: Response,
                       partial: Partial = False, idempotency_key: IdempotencyKey = None) -> BatchSummary:
    """Upserted on the natural key (student, assessment namespace and identifier, school year, administration date):
    a row already stored as sent changes nothing, a changed one is a correction. `results.posted` announces each
    school, school year and subject whose results changed."""
    return await _post(request, uow, principal, zone_id, service.RESULT_ROWS, partial, idempotency_key, response)


@router.post("/enrollments", response_model=BatchSummary, status_code=status.HTTP_201_CREATED, responses=_BATCH_ANSWERS,
             summary="Post a batch of enrollments (up to 10,000 rows)", openapi_extra=_json_body(EnrollmentBatchIn))
async def post_enrollments(zone_id: str, request: Request, principal: Submitter, uow: UnitOfWorkDep, response: Response,
                           partial: Partial = False, idempotency_key: IdempotencyKey = None) -> BatchSummary:
    """Upserted on (student, school, entry date). A change re-reviews the subjects with results for that school and year."""
    return await _post(request, uow, principal, zone_id, service.ENROLLMENT_ROWS, partial, idempotency_key, response)


@router.post("/results/csv", response_model=BatchSummary, status_code=status.HTTP_201_CREATED,
             summary="Upload a CSV file of student results, streamed (any size)", responses=problem_responses(
                 (415, "A body that is not sent as `text/csv`."),
                 (422, "A file that cannot be read, or an invalid header line; invalid rows are listed in the batch.")),
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
@streamed_body  # read as it arrives, never held whole: no request body limit
async def upload_results_csv(zone_id: str, request: Request, principal: Submitter, kit: KitDep, response: Response) -> BatchSummary:
    """A header line names the columns (the fields of a JSON result row; `subgroups` separated by `;`), UTF-8.
    Invalid rows are listed (the first 1,000) and the valid ones stored; while it uploads,
    `GET /zones/{zone}/batches?status=receiving` shows its progress."""
    ensure_zone(principal, zone_id)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise Problem(415, f"Send the file as `Content-Type: text/csv` (got {media_type or 'none'}).")
    summary = await service.upload_results_csv(kit, principal, zone_id, request.stream())
    response.headers["Location"] = f"/zones/{zone_id}/batches/{summary.batch_id}"
    return summary


@router.get("/batches", response_model=list[BatchSummary], summary="Recent ingest batches, newest first")
async def list_batches(zone_id: str, principal: Submitter, session: SessionDep,
                       state: Annotated[BatchStatus | None, Query(alias="status", description="Only batches in this state.")] = None,
                       limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[BatchSummary]:
    """An SIS sees its own batches."""
    ensure_zone(principal, zone_id)
    return await service.list_batches(session, principal, zone_id, state, limit)


@router.get("/batches/{batch_id}", response_model=BatchSummary, summary="An ingest batch: its progress, counts and errors")
async def get_batch(zone_id: str, batch_id: uuid.UUID, principal: Submitter, session: SessionDep) -> BatchSummary:
    ensure_zone(principal, zone_id)
    return await service.get_batch(session, principal, zone_id, batch_id)
