"""Board members and school leadership teams: who sits on the board, who leads each school."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from ezone_kit.as_read import check_as_read
from ezone_kit.auth import Principal
from ezone_kit.problems import TYPE_BASE, Problem
from ezone_kit.uow import UnitOfWork
from ezone_schemas import BoardMemberChanged, SchoolTeamChanged
from ezone_schemas.plans import TeamMember
from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import BoardMember, LeadershipMember, School, Zone
from ..policy.service import current_policy
from ..registry.locks import lock_zone
from .schemas import BoardMemberIn, BoardMemberOut, BoardMemberUpdate, LeaderIn, LeaderOut, LeaderUpdate

_MEMBER_FIELDS = ("name", "seat", "appointed_by", "active_from", "active_to")
_LEADER_FIELDS = ("name", "role", "elected_on", "term_ends")


async def seated_members(session: AsyncSession, zone_id: str, on: date) -> list[BoardMember]:
    """The members seated on `on` (active_from <= on <= active_to, an open term counting as seated), by seat."""
    rows = await session.execute(
        select(BoardMember)
        .where(BoardMember.zone_id == zone_id, BoardMember.active_from <= on,
               or_(BoardMember.active_to.is_(None), BoardMember.active_to >= on))
        .order_by(BoardMember.seat)
    )
    return list(rows.scalars())


def _invalid(**reasons: str) -> Problem:
    """422 for what only the stored state shows is wrong, listed like the request validation's errors."""
    errors = [{"pointer": f"/body/{field}", "field": field, "reason": reason, "code": "value_error"}
              for field, reason in reasons.items()]
    return Problem(422, "The request has invalid field(s): " + ", ".join(reasons) + ". Fix them and send it again.",
                   type=f"{TYPE_BASE}validation", title="Invalid request", errors=errors)


def _member_changed(member: BoardMember) -> BoardMemberChanged:
    return BoardMemberChanged(
        zone_id=member.zone_id, member_id=member.id, subject=member.subject, name=member.name, seat=member.seat,
        appointed_by=member.appointed_by, active_from=member.active_from, active_to=member.active_to,
        changed_at=datetime.now(UTC),
    )


def _snapshot(model: type[BoardMemberOut | LeaderOut], row: BoardMember | LeadershipMember) -> dict[str, Any]:
    return model.model_validate(row).model_dump(mode="json")


async def _check_seat(session: AsyncSession, zone_id: str, facts: dict[str, Any], member_id: uuid.UUID | None) -> None:
    _, policy = await current_policy(session, zone_id)
    if facts["seat"] > policy.voting.board_size:
        raise _invalid(seat=f"the board of {zone_id} has {policy.voting.board_size} seats (policy voting.board_size)")
    overlapping = [
        BoardMember.zone_id == zone_id,
        BoardMember.seat == facts["seat"],
        or_(BoardMember.active_to.is_(None), BoardMember.active_to >= facts["active_from"]),
    ]
    if facts["active_to"] is not None:
        overlapping.append(BoardMember.active_from <= facts["active_to"])
    if member_id is not None:
        overlapping.append(BoardMember.id != member_id)
    holder = (await session.execute(select(BoardMember).where(*overlapping).limit(1))).scalar_one_or_none()
    if holder is not None:
        raise Problem(409, f"Seat {facts['seat']} is held by {holder.name} from {holder.active_from} to "
                           f"{holder.active_to or 'an open end'}, which overlaps the dates asked for; end that term first.",
                      member_id=str(holder.id))


async def add_board_member(uow: UnitOfWork, actor: Principal, zone_id: str, data: BoardMemberIn) -> tuple[BoardMember, bool]:
    """Idempotent on (zone, subject): the same member again changes nothing; other details are a 409."""
    await lock_zone(uow.session, zone_id)  # the seat check reads, then writes
    existing = (
        await uow.session.execute(select(BoardMember).where(BoardMember.zone_id == zone_id, BoardMember.subject == data.subject))
    ).scalar_one_or_none()
    facts = data.model_dump(include=set(_MEMBER_FIELDS))
    if existing is not None:
        if {field: getattr(existing, field) for field in _MEMBER_FIELDS} != facts:
            raise Problem(409, f"{data.subject} is already a member of the {zone_id} board with other details; change them with a PATCH.",
                          member_id=str(existing.id))
        return existing, False
    await _check_seat(uow.session, zone_id, facts, member_id=None)
    member = BoardMember(id=uuid.uuid4(), zone_id=zone_id, **data.model_dump())
    uow.session.add(member)
    await uow.session.flush()
    uow.emit(_member_changed(member))
    await uow.audit(actor=actor, action="board_member.added", entity="board_member", entity_id=str(member.id),
                    zone_id=zone_id, after=_snapshot(BoardMemberOut, member))
    await uow.commit()
    return member, True


async def update_board_member(uow: UnitOfWork, actor: Principal, zone_id: str, member_id: uuid.UUID,
                              data: BoardMemberUpdate) -> BoardMember:
    await lock_zone(uow.session, zone_id)  # the seat check reads, then writes
    member = await uow.session.get(BoardMember, member_id)
    if member is None or member.zone_id != zone_id:
        raise Problem(404, f"Board member {member_id} was not found in zone {zone_id!r}.")
    check_as_read(data, id=member.id, zone_id=member.zone_id, subject=member.subject)
    current = {field: getattr(member, field) for field in _MEMBER_FIELDS}
    changed = {field: value for field, value in data.changes().items() if current[field] != value}
    if not changed:
        return member
    facts = current | changed
    if facts["active_to"] is not None and facts["active_to"] < facts["active_from"]:
        raise _invalid(active_to=f"must be on or after active_from ({facts['active_from']})")
    if changed.keys() & {"seat", "active_from", "active_to"}:
        await _check_seat(uow.session, zone_id, facts, member_id=member.id)
    before = _snapshot(BoardMemberOut, member)
    for field, value in changed.items():
        setattr(member, field, value)
    uow.emit(_member_changed(member))
    await uow.audit(actor=actor, action="board_member.updated", entity="board_member", entity_id=str(member.id),
                    zone_id=zone_id, before=before, after=_snapshot(BoardMemberOut, member))
    await uow.commit()
    return member


async def board_on(session: AsyncSession, zone_id: str, on: date) -> list[BoardMember]:
    if await session.get(Zone, zone_id) is None:
        raise Problem(404, f"Zone {zone_id!r} was not found.")
    return await seated_members(session, zone_id, on)


async def _school(session: AsyncSession, zone_id: str, school_id: uuid.UUID, *, lock: bool = False) -> School:
    query = select(School).where(School.id == school_id, School.zone_id == zone_id)
    # Locked for writes: serialises the school's team changes, which check for a principal and then write.
    school = (await session.execute(query.with_for_update(key_share=True) if lock else query)).scalar_one_or_none()
    if school is None:
        raise Problem(404, f"School {school_id} was not found in zone {zone_id!r}.")
    return school


def _team_query(school_id: uuid.UUID, include_inactive: bool) -> Select[tuple[LeadershipMember]]:
    query = select(LeadershipMember).where(LeadershipMember.school_id == school_id)
    if not include_inactive:
        query = query.where(LeadershipMember.active)
    # The principal first, then the teacher leaders by name.
    return query.order_by(LeadershipMember.role, LeadershipMember.name)


async def _team_changed(session: AsyncSession, zone_id: str, school_id: uuid.UUID) -> SchoolTeamChanged:
    """The whole team after a change. Read under the school's lock, so successive events follow the changes' order."""
    team = (await session.execute(_team_query(school_id, include_inactive=True))).scalars()
    return SchoolTeamChanged(
        zone_id=zone_id, school_id=school_id, changed_at=datetime.now(UTC),
        members=[TeamMember(member_id=m.id, subject=m.subject, name=m.name, role=m.role, active=m.active) for m in team],
    )


async def _check_one_principal(session: AsyncSession, school_id: uuid.UUID, member_id: uuid.UUID | None) -> None:
    active_principal = [LeadershipMember.school_id == school_id, LeadershipMember.role == "principal", LeadershipMember.active]
    if member_id is not None:
        active_principal.append(LeadershipMember.id != member_id)
    principal = (await session.execute(select(LeadershipMember).where(*active_principal))).scalar_one_or_none()
    if principal is not None:
        raise Problem(409, f"The school already has an active principal, {principal.name}; take them off the team first.",
                      member_id=str(principal.id))


async def add_leader(uow: UnitOfWork, actor: Principal, zone_id: str, school_id: uuid.UUID, data: LeaderIn) -> tuple[LeadershipMember, bool]:
    """Idempotent on (school, subject): the same member again changes nothing; other details are a 409."""
    await _school(uow.session, zone_id, school_id, lock=True)
    existing = (
        await uow.session.execute(
            select(LeadershipMember).where(LeadershipMember.school_id == school_id, LeadershipMember.subject == data.subject)
        )
    ).scalar_one_or_none()
    if existing is not None:
        if {field: getattr(existing, field) for field in _LEADER_FIELDS} != data.model_dump(include=set(_LEADER_FIELDS)):
            raise Problem(409, f"{data.subject} is already on this school's leadership team with other details; change them with a PATCH.",
                          member_id=str(existing.id))
        return existing, False
    if data.role == "principal":
        await _check_one_principal(uow.session, school_id, member_id=None)
    leader = LeadershipMember(id=uuid.uuid4(), zone_id=zone_id, school_id=school_id, active=True, **data.model_dump())
    uow.session.add(leader)
    await uow.session.flush()
    uow.emit(await _team_changed(uow.session, zone_id, school_id))
    await uow.audit(actor=actor, action="leadership_member.added", entity="leadership_member", entity_id=str(leader.id),
                    zone_id=zone_id, school_id=str(school_id), after=_snapshot(LeaderOut, leader))
    await uow.commit()
    return leader, True


async def update_leader(uow: UnitOfWork, actor: Principal, zone_id: str, school_id: uuid.UUID, member_id: uuid.UUID,
                        data: LeaderUpdate) -> LeadershipMember:
    await _school(uow.session, zone_id, school_id, lock=True)
    leader = await uow.session.get(LeadershipMember, member_id)
    if leader is None or leader.school_id != school_id:
        raise Problem(404, f"Leadership team member {member_id} was not found at school {school_id}.")
    check_as_read(data, id=leader.id, school_id=leader.school_id, subject=leader.subject)
    current = {field: getattr(leader, field) for field in (*_LEADER_FIELDS, "active")}
    changed = {field: value for field, value in data.changes().items() if current[field] != value}
    if not changed:
        return leader
    facts = current | changed
    if facts["elected_on"] and facts["term_ends"] and facts["term_ends"] < facts["elected_on"]:
        raise _invalid(term_ends=f"must be on or after elected_on ({facts['elected_on']})")
    if facts["role"] == "principal" and facts["active"] and changed.keys() & {"role", "active"}:
        await _check_one_principal(uow.session, school_id, member_id=leader.id)
    before = _snapshot(LeaderOut, leader)
    for field, value in changed.items():
        setattr(leader, field, value)
    uow.emit(await _team_changed(uow.session, zone_id, school_id))  # the query flushes the change first
    await uow.audit(actor=actor, action="leadership_member.updated", entity="leadership_member", entity_id=str(leader.id),
                    zone_id=zone_id, school_id=str(school_id), before=before, after=_snapshot(LeaderOut, leader))
    await uow.commit()
    return leader


async def leadership_team(session: AsyncSession, zone_id: str, school_id: uuid.UUID, include_inactive: bool) -> list[LeadershipMember]:
    await _school(session, zone_id, school_id)
    return list((await session.execute(_team_query(school_id, include_inactive))).scalars())
