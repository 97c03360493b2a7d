"""Operating plan use cases. Each write locks the plan, checks the transition against the rules,
and commits the change with its events and audit entries through the unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ezone_kit.auth import Principal
from ezone_kit.idempotency import request_digest
from ezone_kit.lenient_body import Received
from ezone_kit.problems import Problem, validation_problem
from ezone_kit.uow import UnitOfWork
from ezone_schemas import PlanApproved, PlanReturned, PlanSubmitted, PlanVoteCast
from ezone_schemas.plans import GoalContract, LeverComment
from ezone_schemas.vocabulary import AutonomyTier, Lever, VettingStatus
from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..board.service import seated_members
from ..models import BoardMember, PartnerRecord, Plan, PlanVersion, School, Vote, Zone
from ..policy.document import PolicyDocument
from ..policy.service import current_policy
from .rules import (
    OPEN_STATUSES,
    Action,
    FieldError,
    InvalidTransition,
    Tally,
    VersionStatus,
    budget_envelope,
    decide,
    budget_errors,
    goal_errors,
    goal_id_errors,
    next_status,
    qualifies_for_auto_approval,
    school_year_span,
    with_goal_ids,
)
from .schemas import (
    BudgetLever,
    GoalIn,
    PlanContent,
    PlanCreate,
    PlanView,
    QueueItem,
    StoredContent,
    StoredGoal,
    VersionView,
    VoteIn,
    VoteResult,
    VoteTally,
    VoteView,
)

DECIDED_STATUSES = frozenset({VersionStatus.APPROVED, VersionStatus.RETURNED, VersionStatus.SUPERSEDED})
_PAST_TENSE = {Action.EDIT: "edited", Action.SUBMIT: "submitted", Action.VOTE: "voted on", Action.APPROVE: "approved",
               Action.RETURN: "returned", Action.AMEND: "amended", Action.SUPERSEDE: "superseded"}


def _now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    return _now().date()


def etag(version: PlanVersion) -> str:
    return f'"{version.version}.{version.revision}"'


@dataclass
class PlanState:
    school: School
    plan: Plan
    versions: list[PlanVersion]  # by version number

    @property
    def open(self) -> PlanVersion | None:
        return next((v for v in self.versions if v.status in OPEN_STATUSES), None)

    @property
    def approved(self) -> PlanVersion | None:
        return next((v for v in self.versions if v.status == VersionStatus.APPROVED), None)

    @property
    def current(self) -> PlanVersion:
        """The version requests act on and the ETag describes: the open one, else the approved one."""
        version = self.open or self.approved
        assert version is not None, "a plan always has an open or an approved version"
        return version


# --- loading ---------------------------------------------------------------------------------


async def _school(session: AsyncSession, zone_id: str, school_id: uuid.UUID) -> School:
    school = await session.get(School, school_id)
    if school is None or school.zone_id != zone_id:
        raise Problem(404, f"School {school_id} was not found in zone {zone_id!r}.")
    return school


async def _load(session: AsyncSession, zone_id: str, school_id: uuid.UUID, school_year: str, *, lock: bool = False) -> PlanState:
    school = await _school(session, zone_id, school_id)
    plan_query = select(Plan).where(Plan.school_id == school.id, Plan.school_year == school_year)
    # The plan row is the plan's mutex: every transition and vote takes it first, so they run one at a
    # time, and the versions read after it is granted include any a previous holder added.
    plan = (await session.execute(plan_query.with_for_update() if lock else plan_query)).scalar_one_or_none()
    if plan is None:
        raise Problem(404, f"School {school.code} has no plan for {school_year}; create it with POST "
                           f"/zones/{zone_id}/schools/{school_id}/plans.")
    version_query = select(PlanVersion).where(PlanVersion.plan_id == plan.id).order_by(PlanVersion.version)
    versions = (await session.execute(version_query.with_for_update() if lock else version_query)).scalars()
    return PlanState(school, plan, list(versions))


# --- checks ----------------------------------------------------------------------------------


def _advance(version: PlanVersion, action: Action) -> VersionStatus:
    try:
        return next_status(version.status, action)
    except InvalidTransition as exc:
        raise Problem(409, f"Version {version.version} of this plan is {version.status}; only a "
                           f"{' or '.join(exc.allowed_from)} version can be {_PAST_TENSE[action]}.",
                      plan_status=version.status) from None


def _check_if_match(if_match: str, state: PlanState) -> None:
    current = etag(state.current)
    offered = {tag.strip() for tag in if_match.split(",")}
    if "*" not in offered and current not in offered:
        raise Problem(412, f"The plan has changed since you read it (its ETag is now {current}); read it again, "
                           "reapply your change and send it with the new ETag in If-Match.", etag=current)


async def _goal_errors(session: AsyncSession, zone_id: str, school_year: str | None, goals: Sequence[GoalIn | None],
                       policy: PolicyDocument) -> list[FieldError]:
    zone = await session.get(Zone, zone_id)
    span = school_year_span(school_year, zone.school_year_start_month) if school_year is not None else None
    return goal_errors(goals, span, policy.subjects, policy.subgroups)


async def _content_errors(session: AsyncSession, zone_id: str, school_year: str | None, body: Received[PlanContent],
                          policy: PolicyDocument, earlier_goals: Sequence[StoredGoal]) -> list[dict[str, Any]]:
    """The zone's rules on the body, as far as it can be read: on the whole content when its shape is valid, else on
    each goal and on the budget that are valid on their own, so that one answer lists the shape's errors and these."""
    if body.value is not None:
        goals: Sequence[GoalIn | None] = body.value.goals
        budget: BudgetLever | None = body.value.levers.budget
    else:
        goals, budget = body.items(GoalIn, "goals"), body.part(BudgetLever, "levers", "budget")
    errors = (await _goal_errors(session, zone_id, school_year, goals, policy)
              + (budget_errors(budget) if budget is not None else []) + goal_id_errors(goals, earlier_goals))
    return [error.as_pydantic() for error in errors]


async def _partner_errors(session: AsyncSession, school: School, budget: BudgetLever, policy: PolicyDocument) -> list[FieldError]:
    """A school in intensive support must buy from at least one partner the zone has vetted (when the policy says so)."""
    if school.tier != AutonomyTier.INTENSIVE_SUPPORT or not policy.tiers.intensive_requires_vetted_partner:
        return []
    partner_ids = {item.partner_id for item in budget.line_items if item.provider == "partner"}
    if partner_ids:
        vetted = (await session.execute(
            select(func.count()).select_from(PartnerRecord).where(
                PartnerRecord.id.in_(partner_ids), PartnerRecord.zone_id == school.zone_id,
                PartnerRecord.status == VettingStatus.VETTED,
                or_(PartnerRecord.expires_on.is_(None), PartnerRecord.expires_on >= _today()),
            )
        )).scalar_one()
        if vetted:
            return []
    return [FieldError(("levers", "budget", "line_items"),
                       "a school in intensive support must buy from a vetted partner: add a line item with provider "
                       "`partner` and the partner_id of a partner this zone has vetted (and whose vetting has not expired)",
                       "vetted_partner_required")]


def _raise_if_invalid(errors: list[FieldError], root: str = "body") -> None:
    if errors:
        raise validation_problem([error.as_pydantic(root) for error in errors])


# --- writes ----------------------------------------------------------------------------------


def _stored_content(content: PlanContent, earlier_goals: Iterable[StoredGoal]) -> dict[str, Any]:
    return StoredContent(levers=content.levers, goals=with_goal_ids(content.goals, earlier_goals)).model_dump(mode="json")


def _goals(version: PlanVersion | None) -> list[StoredGoal]:
    return StoredContent.model_validate(version.content).goals if version is not None else []


def _snapshot(version: PlanVersion, *, content: bool = False) -> dict[str, Any]:
    snapshot: dict[str, Any] = {"version": version.version, "status": version.status, "revision": version.revision}
    if content:
        snapshot["content"] = version.content
    return snapshot


async def _audit(uow: UnitOfWork, actor: Principal, state: PlanState, action: str,
                 before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    await uow.audit(actor=actor, action=action, entity="plan", entity_id=str(state.plan.id), zone_id=state.plan.zone_id,
                    school_id=str(state.plan.school_id), before=before, after=after)


async def create_plan(uow: UnitOfWork, actor: Principal, zone_id: str, school_id: uuid.UUID,
                      received: Received[PlanCreate], idempotency_key: str | None) -> tuple[PlanView, bool]:
    """Version 1 as a draft. The same body re-sent with the same Idempotency-Key answers with the plan it created (False)."""
    session = uow.session
    school = await _school(session, zone_id, school_id)
    if received.value is None:
        _, policy = await current_policy(session, zone_id)
        received.refuse(await _content_errors(session, zone_id, received.field("school_year"), received, policy, ()))
    body = received.value
    assert body is not None, "a body that is not valid is refused above"
    scope = f"plan.create/{zone_id}/{school.id}/{actor.subject}"
    if idempotency_key is not None:
        replay = await uow.idempotency.claim(session, scope, idempotency_key, request_digest(body.model_dump(mode="json")))
        if replay is not None:
            return await plan_view(session, actor, await _load(session, zone_id, school.id, body.school_year)), False
    policy_version, policy = await current_policy(session, zone_id)
    received.refuse(await _content_errors(session, zone_id, body.school_year, received, policy, ()))
    # ON CONFLICT DO NOTHING: of simultaneous creates one inserts, the others wait for it and find its row.
    plan = (await session.execute(
        pg_insert(Plan).values(id=uuid.uuid4(), zone_id=zone_id, school_id=school.id, school_year=body.school_year)
        .on_conflict_do_nothing(index_elements=[Plan.school_id, Plan.school_year]).returning(Plan)
    )).scalar_one_or_none()
    if plan is None:
        existing = await _load(session, zone_id, school.id, body.school_year)
        raise Problem(409, f"School {school.code} already has a plan for {body.school_year} (plan {existing.plan.id}); "
                           f"change it with PUT /zones/{zone_id}/schools/{school.id}/plans/{body.school_year}.",
                      plan_id=str(existing.plan.id))
    now = _now()
    version = PlanVersion(id=uuid.uuid4(), plan_id=plan.id, version=1, status=VersionStatus.DRAFT, revision=1,
                          content=_stored_content(body, earlier_goals=()), amendment=False, automatic=False,
                          policy_version=policy_version, created_by=actor.subject, created_at=now, updated_at=now)
    session.add(version)
    await session.flush()
    state = PlanState(school, plan, [version])
    await _audit(uow, actor, state, "plan.created", after=_snapshot(version, content=True))
    if idempotency_key is not None:
        await uow.idempotency.record(session, scope, idempotency_key, str(plan.id))
    await uow.commit()
    return await plan_view(session, actor, state), True


async def edit_plan(uow: UnitOfWork, actor: Principal, zone_id: str, school_id: uuid.UUID, school_year: str,
                    received: Received[PlanContent], if_match: str) -> PlanView:
    """Replaces the open version's content while it is a draft or returned; bumps its revision."""
    session = uow.session
    state = await _load(session, zone_id, school_id, school_year, lock=True)
    _check_if_match(if_match, state)
    version = state.current
    _advance(version, Action.EDIT)
    policy_version, policy = await current_policy(session, zone_id)
    earlier_goals = [*_goals(version), *_goals(state.approved)]
    received.refuse(await _content_errors(session, zone_id, school_year, received, policy, earlier_goals))
    body = received.value
    assert body is not None, "a body that is not valid is refused above"
    before = _snapshot(version, content=True)
    version.content = _stored_content(body, earlier_goals)
    version.revision += 1
    version.policy_version = policy_version
    version.updated_at = _now()
    await _audit(uow, actor, state, "plan.edited", before=before, after=_snapshot(version, content=True))
    await uow.commit()
    return await plan_view(session, actor, state)


async def submit_plan(uow: UnitOfWork, actor: Principal, zone_id: str, school_id: uuid.UUID, school_year: str,
                      if_match: str) -> PlanView:
    """Puts the open version before the board; a small amendment of a `full`-tier school is approved at once."""
    session = uow.session
    state = await _load(session, zone_id, school_id, school_year, lock=True)
    _check_if_match(if_match, state)
    version = state.current
    submitted = _advance(version, Action.SUBMIT)
    policy_version, policy = await current_policy(session, zone_id)
    content = StoredContent.model_validate(version.content)
    # The zone's policy may have changed since the content was written: check it again, against the stored plan.
    _raise_if_invalid(await _goal_errors(session, zone_id, school_year, content.goals, policy)
                      + await _partner_errors(session, state.school, content.levers.budget, policy), root="plan")
    # A returned version that comes back starts a new round: the last round's votes stay in the audit log
    # and in its plan.returned event.
    await session.execute(delete(Vote).where(Vote.plan_version_id == version.id))
    before = _snapshot(version)
    now = _now()
    version.status = submitted
    version.submitted_by = actor.subject
    version.submitted_at = now
    version.decided_at = None
    version.policy_version = policy_version
    version.updated_at = now
    uow.emit(PlanSubmitted(zone_id=zone_id, school_id=state.school.id, plan_id=state.plan.id, school_year=school_year,
                           version=version.version, amendment=version.amendment, submitted_by=actor.subject, submitted_at=now))
    await _audit(uow, actor, state, "plan.submitted", before=before, after=_snapshot(version))
    approved = state.approved
    if approved is not None and qualifies_for_auto_approval(
        state.school.tier, version.amendment, StoredContent.model_validate(approved.content).levers.budget.total,
        content.levers.budget.total, policy.tiers.auto_approve_amendment_below,
    ):
        await _approve(uow, actor, state, version, Tally(), automatic=True)
    await uow.commit()
    return await plan_view(session, actor, state)


async def amend_plan(uow: UnitOfWork, actor: Principal, zone_id: str, school_id: uuid.UUID, school_year: str) -> PlanView:
    """A new draft version copied from the approved one; the approved version holds until the amendment is approved."""
    session = uow.session
    state = await _load(session, zone_id, school_id, school_year, lock=True)
    approved = state.approved
    if approved is None:
        raise Problem(409, f"No version of the {school_year} plan has been approved yet, so there is nothing to amend; "
                           "edit and submit the open version instead.")
    if (open_version := state.open) is not None:
        raise Problem(409, f"Version {open_version.version} of this plan is still {open_version.status}; "
                           "it must be decided before another amendment starts.", plan_status=open_version.status)
    _advance(approved, Action.AMEND)
    now = _now()
    amendment = PlanVersion(id=uuid.uuid4(), plan_id=state.plan.id, version=state.versions[-1].version + 1,
                            status=VersionStatus.DRAFT, revision=1, content=approved.content, amendment=True,
                            automatic=False, policy_version=approved.policy_version, created_by=actor.subject,
                            created_at=now, updated_at=now)
    session.add(amendment)
    await session.flush()
    state.versions.append(amendment)
    await _audit(uow, actor, state, "plan.amended", before=_snapshot(approved),
                 after=_snapshot(amendment, content=True))
    await uow.commit()
    return await plan_view(session, actor, state)


async def _approve(uow: UnitOfWork, actor: Principal, state: PlanState, version: PlanVersion, tally: Tally,
                   *, automatic: bool) -> None:
    previous = state.approved  # read before this version becomes the approved one
    before = _snapshot(version)
    now = _now()
    version.status = _advance(version, Action.APPROVE)
    version.automatic = automatic
    version.decided_at = now
    version.updated_at = now
    if previous is not None:
        previous.status = _advance(previous, Action.SUPERSEDE)
        previous.updated_at = now
    content = StoredContent.model_validate(version.content)
    uow.emit(PlanApproved(
        zone_id=state.plan.zone_id, school_id=state.school.id, plan_id=state.plan.id, school_year=state.plan.school_year,
        version=version.version, goals=[GoalContract.model_validate(goal.model_dump()) for goal in content.goals],
        budget=budget_envelope(content.levers.budget), approvals=tally.approvals, returns=tally.returns,
        automatic=automatic, approved_at=now,
    ))
    await _audit(uow, actor, state, "plan.approved", before=before, after={
        **_snapshot(version), "automatic": automatic, "approvals": tally.approvals, "returns": tally.returns,
        "superseded_version": previous.version if previous is not None else None,
    })


async def _return(uow: UnitOfWork, actor: Principal, state: PlanState, version: PlanVersion, tally: Tally,
                  ballots: Sequence[tuple[Vote, BoardMember]]) -> None:
    before = _snapshot(version)
    now = _now()
    version.status = _advance(version, Action.RETURN)
    version.decided_at = now
    version.updated_at = now
    comments = [
        LeverComment(member_id=member.id, member_name=member.name, lever=lever, comment=vote.comments[lever])
        for vote, member in ballots for lever in Lever if lever in vote.comments
    ]
    uow.emit(PlanReturned(
        zone_id=state.plan.zone_id, school_id=state.school.id, plan_id=state.plan.id, school_year=state.plan.school_year,
        version=version.version, comments=comments, approvals=tally.approvals, returns=tally.returns, returned_at=now,
    ))
    await _audit(uow, actor, state, "plan.returned", before=before,
                 after={**_snapshot(version), "approvals": tally.approvals, "returns": tally.returns})


# --- votes -----------------------------------------------------------------------------------


def _tally_view(tally: Tally) -> VoteTally:
    return VoteTally(approvals=tally.approvals, returns=tally.returns)


def _vote_snapshot(vote: Vote) -> dict[str, Any]:
    return {"member_id": str(vote.member_id), "decision": vote.decision, "comments": vote.comments}


def _vote_view(vote: Vote, member: BoardMember, version: PlanVersion) -> VoteView:
    return VoteView(member_id=member.id, member_name=member.name, seat=member.seat, version=version.version,
                    decision=vote.decision, comments=vote.comments, cast_at=vote.cast_at, changed_at=vote.changed_at)


async def _ballots(session: AsyncSession, version: PlanVersion, members: Sequence[BoardMember] | None = None
                   ) -> list[tuple[Vote, BoardMember]]:
    """The votes on `version` with their members, by seat; only `members`' votes when given."""
    query = (select(Vote, BoardMember).join(BoardMember, Vote.member_id == BoardMember.id)
             .where(Vote.plan_version_id == version.id).order_by(BoardMember.seat))
    if members is not None:
        query = query.where(Vote.member_id.in_([m.id for m in members]))
    return [(vote, member) for vote, member in await session.execute(query)]


async def cast_vote(uow: UnitOfWork, actor: Principal, zone_id: str, school_id: uuid.UUID, school_year: str,
                    body: VoteIn) -> tuple[VoteResult, bool]:
    """Records (or changes) a seated member's vote and applies the zone's voting rule. True when it is a first vote."""
    session = uow.session
    seated = await seated_members(session, zone_id, _today())
    member = next((m for m in seated if m.subject == actor.subject), None)
    if member is None:
        raise Problem(403, f"{actor.subject} is not a seated board member of zone {zone_id!r}; only seated members vote.")
    state = await _load(session, zone_id, school_id, school_year, lock=True)
    version = state.current
    _advance(version, Action.VOTE)
    now = _now()
    comments = {lever.value: text for lever, text in body.comments.items()}
    vote = await session.get(Vote, (version.id, member.id))
    first_vote = vote is None
    if vote is None:
        vote = Vote(plan_version_id=version.id, member_id=member.id, decision=body.decision, comments=comments, cast_at=now)
        session.add(vote)
        before = None
    else:
        before = _vote_snapshot(vote)
        vote.decision, vote.comments, vote.changed_at = body.decision, comments, now
    await session.flush()
    # Before the decision it may bring, so consumers see the vote and then the plan decided.
    uow.emit(PlanVoteCast(zone_id=zone_id, school_id=state.school.id, plan_id=state.plan.id, version=version.version,
                          member_id=member.id, subject=member.subject, decision=body.decision, cast_at=now))
    await _audit(uow, actor, state, "vote.cast" if first_vote else "vote.changed", before=before,
                 after={**_vote_snapshot(vote), "version": version.version})
    # Only the votes of members seated today count: a member whose term ended since voting no longer decides.
    ballots = await _ballots(session, version, seated)
    tally = Tally.of(ballot.decision for ballot, _ in ballots)
    _, policy = await current_policy(session, zone_id)
    outcome = decide(tally, len(seated), policy.voting)
    if outcome == VersionStatus.APPROVED:
        await _approve(uow, actor, state, version, tally, automatic=False)
    elif outcome == VersionStatus.RETURNED:
        await _return(uow, actor, state, version, tally, ballots)
    await uow.commit()
    result = VoteResult(vote=_vote_view(vote, member, version), status=version.status,
                        votes=_tally_view(tally))
    return result, first_vote


async def list_votes(session: AsyncSession, viewer: Principal, zone_id: str, school_id: uuid.UUID, school_year: str,
                     version_number: int | None) -> list[VoteView]:
    """The votes on one version: by default the latest that went to the board. The school sees them once decided."""
    state = await _load(session, zone_id, school_id, school_year)
    if version_number is None:
        put_to_board = [v for v in state.versions if v.submitted_at is not None]
        if not put_to_board:
            return []
        version = put_to_board[-1]
    else:
        version = next((v for v in state.versions if v.version == version_number), None)
        if version is None:
            raise Problem(404, f"The {school_year} plan has no version {version_number}.")
    if viewer.role == "school" and version.status not in DECIDED_STATUSES:
        raise Problem(403, f"Version {version.version} is {version.status}; the school sees the board's votes once it has decided.")
    return [_vote_view(vote, member, version) for vote, member in await _ballots(session, version)]


# --- views -----------------------------------------------------------------------------------


async def _tallies(session: AsyncSession, version_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Tally]:
    decisions: dict[uuid.UUID, list[str]] = {}
    rows = await session.execute(select(Vote.plan_version_id, Vote.decision).where(Vote.plan_version_id.in_(version_ids)))
    for version_id, decision in rows:
        decisions.setdefault(version_id, []).append(decision)
    return {version_id: Tally.of(values) for version_id, values in decisions.items()}


def _version_view(version: PlanVersion, tally: Tally, viewer: Principal) -> VersionView:
    # The school does not watch the board's vote as it happens; it sees the count once decided.
    shown = viewer.role != "school" or version.status in DECIDED_STATUSES
    return VersionView(
        version=version.version, status=version.status, revision=version.revision, etag=etag(version),
        amendment=version.amendment, automatic=version.automatic, policy_version=version.policy_version,
        content=StoredContent.model_validate(version.content), created_by=version.created_by,
        created_at=version.created_at, updated_at=version.updated_at, submitted_by=version.submitted_by,
        submitted_at=version.submitted_at, decided_at=version.decided_at,
        votes=_tally_view(tally) if shown else None,
    )


def _plan_view(state: PlanState, tallies: dict[uuid.UUID, Tally], viewer: Principal) -> PlanView:
    open_version, approved = state.open, state.approved

    def view(version: PlanVersion | None) -> VersionView | None:
        return _version_view(version, tallies.get(version.id, Tally()), viewer) if version is not None else None

    return PlanView(
        id=state.plan.id, zone_id=state.plan.zone_id, school_id=state.plan.school_id, school_year=state.plan.school_year,
        status=open_version.status if open_version is not None else VersionStatus.APPROVED,
        open_version=view(open_version), approved_version=view(approved), created_at=state.plan.created_at,
    )


async def plan_view(session: AsyncSession, viewer: Principal, state: PlanState) -> PlanView:
    return _plan_view(state, await _tallies(session, [v.id for v in state.versions]), viewer)


async def get_plan(session: AsyncSession, viewer: Principal, zone_id: str, school_id: uuid.UUID, school_year: str) -> PlanView:
    return await plan_view(session, viewer, await _load(session, zone_id, school_id, school_year))


async def list_plans(session: AsyncSession, viewer: Principal, zone_id: str, school_id: uuid.UUID) -> list[PlanView]:
    school = await _school(session, zone_id, school_id)
    plans = list((await session.execute(
        select(Plan).where(Plan.school_id == school.id).order_by(Plan.school_year.desc())
    )).scalars())
    versions = (await session.execute(
        select(PlanVersion).where(PlanVersion.plan_id.in_([p.id for p in plans])).order_by(PlanVersion.version)
    )).scalars().all()
    tallies = await _tallies(session, [v.id for v in versions])
    return [_plan_view(PlanState(school, plan, [v for v in versions if v.plan_id == plan.id]), tallies, viewer)
            for plan in plans]


async def board_queue(session: AsyncSession, viewer: Principal, zone_id: str, status: str) -> list[QueueItem]:
    """The zone's plan versions in `status` (the board's queue: `submitted`), oldest submission first."""
    rows = (await session.execute(
        select(PlanVersion, Plan, School).join(Plan, PlanVersion.plan_id == Plan.id).join(School, Plan.school_id == School.id)
        .where(Plan.zone_id == zone_id, PlanVersion.status == status)
        .order_by(PlanVersion.submitted_at.asc().nulls_last(), School.name)
    )).all()
    version_ids = [version.id for version, _, _ in rows]
    tallies = await _tallies(session, version_ids)
    my_votes: dict[uuid.UUID, VoteView] = {}
    member = (await session.execute(
        select(BoardMember).where(BoardMember.zone_id == zone_id, BoardMember.subject == viewer.subject)
    )).scalar_one_or_none() if viewer.role == "board" else None
    if member is not None:
        versions = {version.id: version for version, _, _ in rows}
        votes = await session.execute(select(Vote).where(Vote.member_id == member.id, Vote.plan_version_id.in_(version_ids)))
        my_votes = {vote.plan_version_id: _vote_view(vote, member, versions[vote.plan_version_id]) for vote in votes.scalars()}
    return [
        QueueItem(
            plan_id=plan.id, school_id=school.id, school_name=school.name, school_year=plan.school_year,
            version=version.version, status=version.status, amendment=version.amendment,
            submitted_by=version.submitted_by, submitted_at=version.submitted_at,
            votes=_tally_view(tallies.get(version.id, Tally())), my_vote=my_votes.get(version.id),
        )
        for version, plan, school in rows
    ]
