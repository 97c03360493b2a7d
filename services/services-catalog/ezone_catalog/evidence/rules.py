"""Evidence of impact and recommendations, without a database.

Evidence: a school *engaged* a provider in school year Y when it had a confirmed or fulfilled order of one of
its services for Y. The outcome of an engagement, per subject, is the change of the school's all-students
proficiency rate and median growth percentile from Y-1 to Y, from the newest accountability reviews of both
years. A provider's evidence is the mean change over its engagements, the number of schools behind it, and,
for comparison, the mean change of the zone's other schools over the same years.

Recommendations: a review's findings name the school's needs (the tables below, kept as data so the zone
can read and change them); services that address a need are ranked by their evidence in the subjects that
need help.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean

from ezone_schemas.catalog import Need
from ezone_schemas.results import GoalFinding, IntegrityFlag
from ezone_schemas.vocabulary import Metric, ReviewStatus, Subgroup, Subject

from ..school_years import previous_school_year

# Below this many schools a mean change says little: one school's good year looks like a partner's effect.
# Five is the smallest group state turnaround offices commonly accept for a school-level comparison.
MIN_SCHOOLS_FOR_EVIDENCE = 5

NEEDS_HELP = frozenset({ReviewStatus.OFF_TRACK, ReviewStatus.APPROACHING})

# A subject whose review or goal is off track or approaching needs help in that subject ...
SUBJECT_NEEDS: dict[Subject, tuple[Need, ...]] = {
    Subject.MATH: (Need.MATH,),
    Subject.ELA: (Need.ELA,),
    Subject.SCIENCE: (Need.SCIENCE,),
}
# ... and, by what a goal measures that falls short: achievement calls for curriculum; growth for more or
# better teaching time (staffing, time); participation for getting students to school and to the test.
METRIC_NEEDS: dict[Metric, tuple[Need, ...]] = {
    Metric.PROFICIENCY_RATE: (Need.CURRICULUM,),
    Metric.AVERAGE_SCALED_SCORE: (Need.CURRICULUM,),
    Metric.ACHIEVEMENT_PERCENTILE: (Need.CURRICULUM,),
    Metric.MEDIAN_GROWTH_PERCENTILE: (Need.STAFFING, Need.TIME),
    Metric.PARTICIPATION_RATE: (Need.ATTENDANCE, Need.CLIMATE),
}
# ... and, when the goal is about a subgroup that has its own specialists.
SUBGROUP_NEEDS: dict[Subgroup, tuple[Need, ...]] = {
    Subgroup.ENGLISH_LEARNERS: (Need.ENGLISH_LEARNERS,),
    Subgroup.STUDENTS_WITH_DISABILITIES: (Need.STUDENTS_WITH_DISABILITIES,),
}
# Integrity flags: low or selective participation is a climate and attendance problem; improbable gains and
# exemption spikes call for assessment practice (administration, accommodations, data checks).
FLAG_NEEDS: dict[str, tuple[Need, ...]] = {
    "low_participation": (Need.CLIMATE, Need.ATTENDANCE),
    "low_scorer_drop": (Need.CLIMATE, Need.ATTENDANCE),
    "improbable_gain": (Need.ASSESSMENT,),
    "exemption_spike": (Need.ASSESSMENT,),
}

_SEVERITY = [ReviewStatus.OFF_TRACK, ReviewStatus.APPROACHING, ReviewStatus.MEETING, ReviewStatus.INSUFFICIENT_DATA]


@dataclass(frozen=True)
class Figures:
    """A school's all-students figures in one review."""

    proficiency_rate: float | None
    median_growth_percentile: float | None


Facts = Mapping[tuple[uuid.UUID, str, str], Figures]  # (school, school year, subject) → figures


@dataclass(frozen=True)
class Outcome:
    school_id: uuid.UUID
    school_year: str  # the engagement's year; `before` is the year before
    subject: Subject
    before: Figures
    after: Figures

    @property
    def proficiency_change(self) -> float:
        assert self.before.proficiency_rate is not None and self.after.proficiency_rate is not None
        return self.after.proficiency_rate - self.before.proficiency_rate

    @property
    def growth_change(self) -> float | None:
        if self.before.median_growth_percentile is None or self.after.median_growth_percentile is None:
            return None
        return self.after.median_growth_percentile - self.before.median_growth_percentile


def outcomes(engagements: Iterable[tuple[uuid.UUID, str]], facts: Facts) -> list[Outcome]:
    """One outcome per engagement and subject with a proficiency rate in both years (suppressed figures are absent)."""
    found = []
    for school_id, school_year in sorted(set(engagements), key=lambda e: (str(e[0]), e[1])):
        for subject in Subject:
            before = facts.get((school_id, previous_school_year(school_year), subject.value))
            after = facts.get((school_id, school_year, subject.value))
            if before and after and before.proficiency_rate is not None and after.proficiency_rate is not None:
                found.append(Outcome(school_id, school_year, subject, before, after))
    return found


def caveat(schools: int, whose: str = "the partner's") -> str | None:
    if schools == 0:
        return ("No outcomes yet: no school that engaged it has reviews for the year of the engagement and the year before.")
    if schools < MIN_SCHOOLS_FOR_EVIDENCE:
        return (f"Based on {schools} school{'s' if schools != 1 else ''} — too few to distinguish {whose} effect from chance "
                f"(at least {MIN_SCHOOLS_FOR_EVIDENCE} are needed).")
    return None


@dataclass(frozen=True)
class Summary:
    subject: Subject
    schools: int
    proficiency_change: float | None  # mean, percentage points
    growth_change: float | None  # mean, growth-percentile points

    @classmethod
    def of(cls, subject: Subject, found: Sequence[Outcome]) -> Summary:
        mine = [o for o in found if o.subject == subject]
        growth = [change for o in mine if (change := o.growth_change) is not None]
        return cls(subject=subject, schools=len({o.school_id for o in mine}),
                   proficiency_change=round(fmean(o.proficiency_change for o in mine), 1) if mine else None,
                   growth_change=round(fmean(growth), 1) if growth else None)


def comparison_engagements(engaged: set[tuple[uuid.UUID, str]], zone_schools: Iterable[uuid.UUID]) -> set[tuple[uuid.UUID, str]]:
    """The zone's other schools over the same years: what the provider's schools are measured against."""
    years = {year for _, year in engaged}
    return {(school, year) for school in zone_schools for year in years if (school, year) not in engaged}


def evidence_score(summaries: Sequence[Summary], subjects: Iterable[Subject]) -> float | None:
    """The mean proficiency change in the subjects that need help: what recommendations rank by."""
    wanted = set(subjects)
    changes = [s.proficiency_change for s in summaries if s.subject in wanted and s.proficiency_change is not None]
    return round(fmean(changes), 1) if changes else None


def ranking(score: float | None, schools: int, matched_needs: int, name: str) -> tuple:
    """Best first: evidence of a larger gain, then more schools behind it, then more needs met; no evidence last."""
    return (score is None, -(score or 0.0), -schools, -matched_needs, name)


@dataclass(frozen=True)
class SubjectReview:
    """The newest review of one subject in the school's latest reviewed year."""

    subject: Subject
    status: ReviewStatus
    goals: Sequence[GoalFinding] = ()
    flags: Sequence[IntegrityFlag] = ()


def overall_status(reviews: Iterable[SubjectReview]) -> ReviewStatus | None:
    statuses = {review.status for review in reviews}
    return next((status for status in _SEVERITY if status in statuses), None)


def needs_for(reviews: Sequence[SubjectReview]) -> dict[Need, list[str]]:
    """Each need the reviews' findings show, with the findings that show it."""
    found: dict[Need, list[str]] = defaultdict(list)

    def add(needs: Iterable[Need], because: str) -> None:
        for need in needs:
            if because not in found[need]:
                found[need].append(because)

    for review in reviews:
        if review.status in NEEDS_HELP:
            add(SUBJECT_NEEDS[review.subject], f"the {review.subject} review is {review.status}")
        for goal in review.goals:
            if goal.status in NEEDS_HELP:
                actual = "no figure" if goal.actual is None else f"{goal.actual:g}"
                add((*SUBJECT_NEEDS[goal.subject], *METRIC_NEEDS[goal.metric], *SUBGROUP_NEEDS.get(goal.subgroup, ())),
                    f"{goal.subject} {goal.metric} for {goal.subgroup} is {goal.status} ({actual} against a target of {goal.target:g})")
        for flag in review.flags:
            add(FLAG_NEEDS.get(flag.kind, ()), f"{review.subject} integrity flag {flag.kind}: {flag.summary}")
    return {need: found[need] for need in Need if need in found}
