"""`POST /state-aggregates/mcas`: a statewide MCAS school-level file, streamed as text/csv."""

from __future__ import annotations

from typing import Annotated

from ezone_kit.auth import Principal, require_roles
from ezone_kit.openapi import problem_responses
from ezone_kit.problems import TYPE_BASE, Problem
from ezone_kit.service import UnitOfWorkDep
from ezone_schemas.vocabulary import GROUP_CODE_PATTERN
from fastapi import APIRouter, Depends, Query, Request

from ..groups import vocabulary
from . import service
from .mcas import MAX_ROWS, McasReader
from .schemas import ImportOut

router = APIRouter(prefix="/state-aggregates", tags=["state aggregates"])

# The state's figures are every zone's comparison group: the deployment loads them, not a zone's staff.
StateLoader = Annotated[Principal, Depends(require_roles("state"))]


@router.post("/mcas", response_model=ImportOut, summary="Load a statewide MCAS school-level file",
             responses=problem_responses((413, f"More than {MAX_ROWS:,} rows; nothing was stored."),
                                         (415, "A body that is not sent as `text/csv`.")),
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def import_mcas(
    request: Request,
    principal: StateLoader,
    uow: UnitOfWorkDep,
    subgroup: Annotated[str | None, Query(pattern=GROUP_CODE_PATTERN, description=(
        "The file's student group (a code of `GET /student-groups`). A file with a `student_group` column must agree; "
        "one without is this group, or all_students."))] = None,
    school_year: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="Checked against the `year` column "
                                                                                   "(MCAS 2022 is 2021-22).")] = None,
) -> ImportOut:
    """Every school in the state, one student group (the file's `student_group` label, as the deployment's student
    groups name it: any group of them, see `GET /student-groups`): stored all or nothing (an invalid row refuses the
    file, with every problem listed by line). Zone schools whose figures changed get results.posted, so their reviews
    run; sending the same file again changes nothing."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "text/csv":
        raise Problem(415, "Send the file as text/csv.")
    groups = await vocabulary.load(uow.session)
    await uow.session.rollback()  # no connection is held while the file streams in
    if subgroup is not None and subgroup not in groups.codes:
        raise Problem(422, f"{subgroup!r} is not a student group of this deployment (GET /student-groups lists them); "
                           f"{vocabulary.how_to_add(subgroup)}.",
                      type=f"{TYPE_BASE}validation", title="Invalid request")
    reader = McasReader(subgroup=subgroup, school_year=school_year, labels=groups.labels)
    async for chunk in request.stream():
        reader.feed(chunk)
        if reader.too_long:
            raise Problem(413, f"A state file has at most {MAX_ROWS:,} rows.")
    reader.close()
    if reader.errors:
        # Listed as the CSV results upload lists them: `row` is the file's line (the header is line 1).
        raise Problem(422, f"The file has {reader.error_count} problem(s) ({len(reader.errors)} listed); nothing was stored. "
                           "Fix them and send it again.",
                      type=f"{TYPE_BASE}validation", title="Invalid file", errors=reader.errors)
    if not reader.rows:
        raise Problem(422, "The file has a header but no rows.")
    return await service.import_aggregates(uow, principal, reader.rows, str(subgroup or reader.rows[0].subgroup))
