"""Evidence of impact and recommendations, without a database.

Evidence: a school *engaged* a provider in school year Y when it had a confirmed or fulfilled order of one of
its services for Y. An outcome of an engagement, per subject and measure (what the service's category is judged
on), is the change of the school's all-students figure from Y-1 to Y minus the mean change, over the same years
and subject, of comparable schools: the zone's schools that did not engage the provider in Y and whose Y-1 figure
was within the policy's points of the school's. When the zone has fewer comparable schools than the policy asks
for, the state's change over the same years and subject (its all-students figures) is the comparison, and the
outcome says so. A provider's verdict per subject and measure follows the zone
policy: too few schools to tell, better than, no different from, or worse than comparable schools.

Recommendations: a review's findings name the school's needs (the tables below, kept as data so the zone
can read and change them); services that address a need are ranked by their verdict (RANK_GROUPS), then by
the needs they meet.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from statistics import fmean, stdev

from ezone_schemas.catalog import Need, OutcomeMeasure
from ezone_schemas.results import GoalFinding, IntegrityFlag
from ezone_schemas.vocabulary import Metric, ReviewStatus, Subgroup, Subject

from ..school_years import previous_school_year
from .policy import EvidencePolicy

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


class Verdict(StrEnum):
    BETTER = "better_than_comparison"
    NO_DIFFERENT = "no_different"
    WORSE = "worse_than_comparison"
    TOO_FEW = "too_few_to_tell"
    NO_EVIDENCE = "no_evidence_yet"
    NOT_MEASURED = "not_measured"


VERDICT_WORDS = {
    Verdict.BETTER: "better than comparable schools",
    Verdict.NO_DIFFERENT: "no different from comparable schools",
    Verdict.WORSE: "worse than comparable schools",
    Verdict.TOO_FEW: "too few schools to tell",
    Verdict.NO_EVIDENCE: "no evidence yet",
    Verdict.NOT_MEASURED: "not measured",
}

# The measures reviews carry (all students), and the words for them; the others have no source in the zone yet.
REVIEW_MEASURES = (OutcomeMeasure.PROFICIENCY_RATE, OutcomeMeasure.MEDIAN_GROWTH_PERCENTILE,
                   OutcomeMeasure.PARTICIPATION_RATE)
MEASURE_WORDS = {
    OutcomeMeasure.PROFICIENCY_RATE: "proficiency rate",
    OutcomeMeasure.MEDIAN_GROWTH_PERCENTILE: "median growth percentile",
    OutcomeMeasure.PARTICIPATION_RATE: "participation rate",
    OutcomeMeasure.CHRONIC_ABSENCE_RATE: "chronic absence rate",
    OutcomeMeasure.DISCIPLINE_RATE: "discipline rate",
}

# Two-sided 95% critical values of Student's t by degrees of freedom; between rows the smaller df's (wider) value.
_T_95 = ((1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (5, 2.571), (6, 2.447), (7, 2.365), (8, 2.306), (9, 2.262),
         (10, 2.228), (12, 2.179), (15, 2.131), (20, 2.086), (30, 2.042), (60, 2.000), (120, 1.980))


def t_95(degrees_of_freedom: int) -> float:
    return next((t for df, t in reversed(_T_95) if df <= degrees_of_freedom), _T_95[0][1])


@dataclass(frozen=True)
class ReviewRef:
    review_id: uuid.UUID
    version: int
    school_year: str


@dataclass(frozen=True)
class Figures:
    """A school's all-students figures in its newest review of a year and subject."""

    proficiency_rate: float | None
    median_growth_percentile: float | None
    participation_rate: float | None = None
    review: ReviewRef | None = None

    def of(self, measure: OutcomeMeasure) -> float | None:
        return getattr(self, measure.value) if measure in REVIEW_MEASURES else None


Facts = Mapping[tuple[uuid.UUID, str, str], Figures]  # (school, school year, subject) → figures
StateFacts = Mapping[tuple[str, str], Figures]  # (school year, subject) → the state's all-students figures
Engagement = tuple[uuid.UUID, str]  # (school, school year)


@dataclass(frozen=True)
class Change:
    """One school's figure for a measure in a school year and the year before."""

    school_id: uuid.UUID
    before: float
    after: float
    reviews: tuple[ReviewRef, ...]

    @property
    def change(self) -> float:
        return self.after - self.before


def change_of(facts: Facts, school_id: uuid.UUID, school_year: str, subject: Subject, measure: OutcomeMeasure
              ) -> Change | None:
    """None when either year lacks the figure (no review, or suppressed for small n)."""
    before = facts.get((school_id, previous_school_year(school_year), subject.value))
    after = facts.get((school_id, school_year, subject.value))
    if before is None or after is None or before.of(measure) is None or after.of(measure) is None:
        return None
    return Change(school_id, before.of(measure), after.of(measure),
                  tuple(f.review for f in (before, after) if f.review is not None))


@dataclass(frozen=True)
class StateChange:
    """The state's all-students figure for a measure in a school year and the year before."""

    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


def state_change_of(state: StateFacts, school_year: str, subject: Subject, measure: OutcomeMeasure
                    ) -> StateChange | None:
    before = state.get((previous_school_year(school_year), subject.value))
    after = state.get((school_year, subject.value))
    if before is None or after is None or before.of(measure) is None or after.of(measure) is None:
        return None
    return StateChange(before.of(measure), after.of(measure))


@dataclass(frozen=True)
class Outcome:
    school_year: str  # the engagement's year
    subject: Subject
    measure: OutcomeMeasure
    own: Change
    comparison: tuple[Change, ...]  # the comparable schools of the zone, however few
    compared: bool  # enough comparable schools for the policy, or the state's figures instead
    stale: bool  # older than the policy's window: shown, not counted
    state: StateChange | None = None  # the comparison when the zone had too few comparable schools

    @property
    def school_id(self) -> uuid.UUID:
        return self.own.school_id

    @property
    def basis(self) -> str:
        """What the school is compared with: `zone` (its comparable schools) or `state` (the state's figures)."""
        return "state" if self.state is not None else "zone"

    @property
    def comparison_change(self) -> float | None:
        if self.state is not None:
            return self.state.change
        return fmean(c.change for c in self.comparison) if self.comparison else None

    @property
    def difference(self) -> float | None:
        return self.own.change - self.comparison_change if self.compared else None

    @property
    def counted(self) -> bool:
        return self.compared and not self.stale


def outcomes(engaged: set[Engagement], zone_schools: Iterable[uuid.UUID], facts: Facts, subject: Subject,
             measure: OutcomeMeasure, policy: EvidencePolicy, oldest_counted_year: str,
             state: StateFacts | None = None) -> list[Outcome]:
    """One outcome per engagement with the figure in both years, each against its comparable schools: the zone's
    schools that did not engage the provider that year, whose figure the year before was within the policy's points;
    with fewer of them than the policy asks for, against the state's change when `state` has both years."""
    schools = list(zone_schools)
    found = []
    for school_id, school_year in sorted(engaged, key=lambda e: (e[1], str(e[0]))):
        own = change_of(facts, school_id, school_year, subject, measure)
        if own is None:
            continue
        comparison = tuple(
            c for other in schools if (other, school_year) not in engaged
            and (c := change_of(facts, other, school_year, subject, measure)) is not None
            and abs(c.before - own.before) <= policy.comparable_within_points)
        enough = len(comparison) >= policy.minimum_comparison_schools
        statewide = None if enough else state_change_of(state or {}, school_year, subject, measure)
        found.append(Outcome(school_year, subject, measure, own, () if statewide else comparison,
                             compared=enough or statewide is not None, stale=school_year < oldest_counted_year,
                             state=statewide))
    return found


def _points(value: float) -> str:
    return f"{value:+.1f}"


def _moved(change: float, unit: str) -> str:
    if round(change, 1) == 0:
        return "did not change"
    return f"{'rose' if change > 0 else 'fell'} {abs(change):.1f} {unit}"


def _schools(n: int) -> str:
    return f"{n} school{'s' if n != 1 else ''}"


def _outcomes(n: int) -> str:
    return f"{n} outcome{'s' if n != 1 else ''}"


def _is(n: int) -> str:
    return "is" if n == 1 else "are"


@dataclass(frozen=True)
class Judgement:
    """A provider's verdict in one subject and measure, and the numbers behind it."""

    subject: Subject
    measure: OutcomeMeasure
    verdict: Verdict
    schools: int  # schools with a counted outcome (compared, not stale)
    change: float | None  # mean over counted outcomes
    comparison_change: float | None
    difference: float | None
    spread: float | None  # standard deviation of the differences
    interval: tuple[float, float] | None  # 95% interval of the mean difference
    comparison_schools: int
    stale_outcomes: int
    uncompared_outcomes: int
    sentence: str
    state_outcomes: int = 0  # counted outcomes compared with the state's figures

    @property
    def behind(self) -> bool:
        """The schools that used it did worse than their comparison (or, with none, declined)."""
        if self.difference is not None:
            return self.difference < 0
        return self.change is not None and self.change < 0


def judge(subject: Subject, measure: OutcomeMeasure, found: Sequence[Outcome], policy: EvidencePolicy) -> Judgement:
    counted = [o for o in found if o.counted]
    current = [o for o in found if not o.stale]
    differences = [o.difference for o in counted]
    schools = len({o.school_id for o in counted})
    change = fmean(o.own.change for o in (counted or current)) if (counted or current) else None
    comparison = fmean(o.comparison_change for o in counted) if counted else None
    difference = fmean(differences) if differences else None
    spread = stdev(differences) if len(differences) >= 2 else None
    interval = None
    if spread is not None and difference is not None:
        half = t_95(len(differences) - 1) * spread / math.sqrt(len(differences))
        interval = (difference - half, difference + half)
    if not found:
        verdict = Verdict.NO_EVIDENCE
    elif schools < policy.minimum_schools or interval is None:
        verdict = Verdict.TOO_FEW
    elif interval[0] > 0 and difference >= policy.meaningful_difference:
        verdict = Verdict.BETTER
    elif interval[1] < 0 and difference <= -policy.meaningful_difference:
        verdict = Verdict.WORSE
    else:
        verdict = Verdict.NO_DIFFERENT
    unit = "percentile points" if measure == OutcomeMeasure.MEDIAN_GROWTH_PERCENTILE else "points"
    judgement = Judgement(
        subject=subject, measure=measure, verdict=verdict, schools=schools,
        change=_round(change), comparison_change=_round(comparison), difference=_round(difference),
        spread=_round(spread), interval=(round(interval[0], 1), round(interval[1], 1)) if interval else None,
        comparison_schools=len({c.school_id for o in counted for c in o.comparison}),
        state_outcomes=sum(o.basis == "state" for o in counted),
        stale_outcomes=sum(o.stale for o in found),
        uncompared_outcomes=sum(not o.compared and not o.stale for o in found),
        sentence="")
    return replace(judgement, sentence=_sentence(judgement, policy, unit))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _sentence(j: Judgement, policy: EvidencePolicy, unit: str) -> str:
    what = f"{j.subject} {MEASURE_WORDS[j.measure]}: {VERDICT_WORDS[j.verdict]}"
    notes = []
    if j.stale_outcomes:
        notes.append(f"{_outcomes(j.stale_outcomes)} older than the zone's {policy.window_school_years}-year evidence "
                     f"window {_is(j.stale_outcomes)} marked stale and not counted")
    if j.uncompared_outcomes:
        notes.append(f"{_outcomes(j.uncompared_outcomes)} had fewer than {policy.minimum_comparison_schools} "
                     f"comparable schools in the zone and no state figures to fall back on, and "
                     f"{_is(j.uncompared_outcomes)} not counted")
    tail = "".join(f"; {note}" for note in notes) + "."
    if j.verdict == Verdict.NO_EVIDENCE:
        return f"{what} — no school that used it has this figure for the year it used it and the year before."
    if j.schools == 0:
        moved = f" (its schools' figure {_moved(j.change, unit)} on average)" if j.change is not None else ""
        return f"{what} — no outcome can be counted{moved}{tail}"
    numbers = (f"at {_schools(j.schools)} that used it the figure {_moved(j.change, unit)} on average, "
               f"{_compared_with(j, policy)} it {_moved(j.comparison_change, unit)}: "
               f"a difference of {_points(j.difference)} {unit}")
    if j.interval is not None:
        numbers += f" (95% interval {_points(j.interval[0])} to {_points(j.interval[1])}, spread {j.spread:.1f})"
    if j.verdict == Verdict.TOO_FEW:
        rule = f"the zone's policy needs at least {_schools(policy.minimum_schools)} for a verdict"
    else:
        rule = (f"the zone's policy calls a difference better or worse when its 95% interval excludes 0 and it is at "
                f"least {policy.meaningful_difference:.1f} {unit}")
    return f"{what} — {numbers}; {rule}{tail}"


def _compared_with(j: Judgement, policy: EvidencePolicy) -> str:
    """Which comparison the counted outcomes used: the zone's comparable schools, the state's figures, or both."""
    fewer = f"fewer than {policy.minimum_comparison_schools} comparable schools in the zone"
    if j.state_outcomes == 0:
        return f"at {_schools(j.comparison_schools)} comparable to them"
    if j.comparison_schools == 0:
        return f"statewide (the state's figures, as there were {fewer})"
    return (f"in their comparison ({_schools(j.comparison_schools)} comparable to them in the zone, and the state's "
            f"figures for {_outcomes(j.state_outcomes)} with {fewer})")


# Which verdict speaks for a provider across several subjects and measures: a harm anywhere first.
_DOMINANCE = (Verdict.WORSE, Verdict.BETTER, Verdict.NO_DIFFERENT, Verdict.TOO_FEW, Verdict.NO_EVIDENCE)


def deciding(judgements: Sequence[Judgement]) -> Judgement | None:
    """The judgement that gives the provider its verdict: the most severe by _DOMINANCE, then the most schools
    (a decline among too few schools before a gain, so the ranking cannot favour it)."""
    if not judgements:
        return None
    return min(judgements, key=lambda j: (_DOMINANCE.index(j.verdict), not j.behind, -j.schools, j.subject, j.measure))


# The ranking rule: groups of evidence, best first. "Worse" can never rank above "no evidence yet".
RANK_GROUPS = (
    "better than comparable schools",
    "no different from comparable schools",
    "no evidence yet, not measured, or too few schools to tell with no decline against comparable schools",
    "too few schools to tell, with the schools that used it behind comparable schools",
    "worse than comparable schools",
)
RANKING_RULE = (
    "Services are ranked by their evidence in the subjects the school needs help in: "
    + "; then ".join(RANK_GROUPS) + ". Within a group, the service meeting more of the school's needs comes first, "
    "then the one with more schools behind its evidence, then by name.")


def rank_group(verdict: Verdict, behind: bool) -> int:
    """0 for the best group of RANK_GROUPS."""
    if verdict == Verdict.BETTER:
        return 0
    if verdict == Verdict.NO_DIFFERENT:
        return 1
    if verdict == Verdict.WORSE:
        return 4
    return 3 if verdict == Verdict.TOO_FEW and behind else 2


def ranking(group: int, matched_needs: int, schools: int, name: str) -> tuple:
    return (group, -matched_needs, -schools, name)


def caveat(engaged: int, with_outcomes: int, policy: EvidencePolicy, whose: str = "the partner's") -> str | None:
    if engaged == 0:
        return "No school has had a confirmed or fulfilled order of it yet: there is no evidence either way."
    if with_outcomes == 0:
        return (f"{_schools(engaged)} used it, but none has reviews for the year it used it and the year before: "
                "no outcomes yet.")
    if with_outcomes < policy.minimum_schools:
        return (f"Based on {_schools(with_outcomes)} — too few to distinguish {whose} effect from chance "
                f"(the zone's policy needs at least {policy.minimum_schools}).")
    return None


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
