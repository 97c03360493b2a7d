"""Reading and adding to the deployment's group vocabulary (`student_groups`, `student_group_labels`).

The table is small (a few dozen groups): each request that needs it reads it whole, so a group added through one
instance of the service is known to every other at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ezone_kit.auth import Principal
from ezone_kit.problems import Problem
from ezone_kit.uow import UnitOfWork
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import StudentGroup, StudentGroupLabel
from .schemas import StudentGroupIn, StudentGroupOut

def label_key(label: str) -> str:
    """How labels are compared: lower case, single spaces (DESE writes `High Needs`, `high needs`, `EL`)."""
    return " ".join(label.split()).lower()


def how_to_add(label: str) -> str:
    """What to do about a state file's label no group has, in words a CLI user can follow."""
    named = label_key(label)
    code = "_".join("".join(c if c.isalnum() else " " for c in named).split())[:40]
    code = code if code[:1].isalpha() else f"group_{code}"[:40]
    example = orjson.dumps({"code": code, "name": label.strip(), "labels": [named]}).decode()
    return (f"add it to the deployment's student groups with POST /student-groups (role state), e.g. {example}, or "
            f"add the label to an existing group with POST /student-groups/{{code}}/labels {{\"label\": \"{named}\"}}")


@dataclass(frozen=True)
class Vocabulary:
    names: dict[str, str]  # code -> name
    labels: dict[str, str]  # label (label_key) -> code
    accountability: tuple[str, ...]  # codes accountability uses by default, all_students first

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(self.names)


async def load(session: AsyncSession) -> Vocabulary:
    groups = (await session.execute(select(StudentGroup.code, StudentGroup.name, StudentGroup.accountability)
                                    .order_by(StudentGroup.created_at, StudentGroup.code))).all()
    labels = (await session.execute(select(StudentGroupLabel.label, StudentGroupLabel.code))).all()
    accountable = [code for code, _, used in groups if used]
    return Vocabulary(
        names={code: name for code, name, _ in groups}, labels=dict(labels),
        accountability=tuple(sorted(accountable, key=lambda code: code != "all_students")))


async def codes(session: AsyncSession) -> frozenset[str]:
    return frozenset((await session.scalars(select(StudentGroup.code))).all())


async def listed(session: AsyncSession) -> list[StudentGroupOut]:
    groups = (await session.scalars(select(StudentGroup).order_by(StudentGroup.created_at, StudentGroup.code))).all()
    labels: dict[str, list[str]] = {}
    for label, code in (await session.execute(select(StudentGroupLabel.label, StudentGroupLabel.code)
                                              .order_by(StudentGroupLabel.label))).all():
        labels.setdefault(code, []).append(label)
    return [StudentGroupOut(code=g.code, name=g.name, labels=labels.get(g.code, []), accountability=g.accountability,
                            added_by=g.added_by) for g in groups]


async def add(uow: UnitOfWork, principal: Principal, body: StudentGroupIn) -> tuple[StudentGroupOut, bool]:
    """The group, and whether this request added it. The same group sent again is answered as it is (nothing
    changes); another group under its code, or a label another group has, is a conflict."""
    session = uow.session
    labels = sorted({label_key(label) for label in body.labels})
    wanted = StudentGroupOut(code=body.code, name=body.name, labels=labels, accountability=body.accountability,
                             added_by=principal.subject)
    added = await session.scalar(insert(StudentGroup).values(
        code=body.code, name=body.name, accountability=body.accountability, added_by=principal.subject,
    ).on_conflict_do_nothing().returning(StudentGroup.code))
    if added is None:
        existing = next(group for group in await listed(session) if group.code == body.code)
        if (existing.name, existing.labels, existing.accountability) == (wanted.name, labels, wanted.accountability):
            return existing, False
        raise Problem(409, f"The student group {body.code!r} exists as {existing.name!r} with the labels "
                           f"{existing.labels} (accountability {str(existing.accountability).lower()}); choose "
                           "another code.", code=body.code)
    if labels:
        taken = (await session.execute(select(StudentGroupLabel.label, StudentGroupLabel.code)
                                       .where(StudentGroupLabel.label.in_(labels)))).all()
        if taken:
            raise _labels_taken(dict(taken))
        stored = (await session.scalars(insert(StudentGroupLabel).values([
            {"label": label, "code": body.code} for label in labels]).on_conflict_do_nothing()
            .returning(StudentGroupLabel.label))).all()
        if len(stored) < len(labels):  # another request took one between the check and the insert
            raise _labels_taken(dict((await session.execute(
                select(StudentGroupLabel.label, StudentGroupLabel.code).where(
                    StudentGroupLabel.label.in_(set(labels) - set(stored))))).all()))
    await uow.audit(actor=principal, action="student_group.added", entity="student_group", entity_id=body.code,
                    zone_id=principal.zone, after=wanted.model_dump(mode="json"))
    await uow.commit()
    return wanted, True


async def add_label(uow: UnitOfWork, principal: Principal, code: str, label: str) -> tuple[StudentGroupOut, bool]:
    """The group with the label, and whether this request added the label (a label it already has: nothing changes)."""
    session = uow.session
    named = label_key(label)
    if await session.get(StudentGroup, code) is None:
        raise Problem(404, f"There is no student group {code!r}; GET /student-groups lists them.")
    added = await session.scalar(insert(StudentGroupLabel).values(label=named, code=code).on_conflict_do_nothing()
                                 .returning(StudentGroupLabel.label))
    if added is None:
        holder = await session.scalar(select(StudentGroupLabel.code).where(StudentGroupLabel.label == named))
        if holder != code:
            raise _labels_taken({named: holder})
    else:
        await uow.audit(actor=principal, action="student_group.label_added", entity="student_group", entity_id=code,
                        zone_id=principal.zone, after={"label": named})
        await uow.commit()
    return next(group for group in await listed(session) if group.code == code), added is not None


def _labels_taken(taken: dict[str, str]) -> Problem:
    listed_ = "; ".join(f"{label!r} names {code!r}" for label, code in sorted(taken.items()))
    return Problem(409, f"A label names one group: {listed_}. Leave it out, or choose another label.",
                   labels=sorted(taken))
