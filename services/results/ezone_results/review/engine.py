"""The accountability review of one school, school year and subject: pure computations.

The database work is set-based (`queries.py`: one GROUP BY over every student row of a whole batch of
schools); what arrives here is already counted per school and subgroup, so everything below is
arithmetic on a few numbers per subgroup, unit-tested without a database.

Choices this module makes (see docs/reviews.md):

- Which results count is the zone's policy (`accountability_assessments`, `result_choice`), applied when the
  student rows are read (queries.load_students): what arrives here is one counted result per student.
- Tested: a student whose counted result has a scale score or a performance level. Proficiency is over the
  tested; the average scaled score over those with a score, and shown only when at least minimum n have one.
- Suppression: a subgroup with fewer than `policy.minimum_n` tested students reports no figures and its
  goals are `insufficient_data`. A state aggregate without a student count is taken as published (the
  state suppressed what it had to).
- Participation = tested ÷ the students expected to test: those enrolled in a tested grade during its
  testing window, plus anyone with a result row. With no enrollments known the denominator is the result
  rows alone (tested + not-tested codes), and the figures say so (`participation_basis`).
- Achievement percentile: DESE's `ach_pctl` — the school's group among the same group at every school the state
  ranks (state_ranking): its mean rank r of N, in one of 99 equal groups, floor(99 r / (N + 1)) + 1. A group the
  state does not rank, or that the policy suppresses, has none, and the figures say why.
- Goal target: the annual target, or during the school year the latest interim target already due.
- Overall status: the worst status among goals with data; with no such goal, all-students proficiency
  against the previous year (not lower → meeting, lower by at most the policy's band → approaching,
  else off_track; no previous year → insufficient_data).
- Every status carries its reason (reasons.py): the deciding rule, the numbers it compared and a sentence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from ezone_schemas.plans import GoalContract
from ezone_schemas.results import GroupGoalFinding, GroupIntegrityFlag, GroupStatusReason
from ezone_schemas.vocabulary import Metric, ReviewStatus, Subgroup, Subject

from . import reasons
from .policy import ReviewPolicy
from .schemas import AssessmentCounted, ParticipationBasis, SubgroupFigures

# Fewer comparable schools than this and a gain is not judged against them (an SD of 3 is no distribution).
MIN_COMPARISON_SCHOOLS = 5
EXPECTED_LOW_SCORER_SHARE = 0.25  # last year's bottom quartile: a quarter of any random drop

_SEVERITY = {ReviewStatus.MEETING: 0, ReviewStatus.APPROACHING: 1, ReviewStatus.OFF_TRACK: 2}
# Metrics a review may have no value of although the group is reported: its figures say why (`unranked_reason`).
_RANKED_METRICS = {Metric.AVERAGE_SCALED_SCORE, Metric.ACHIEVEMENT_PERCENTILE}
NO_AVERAGE = "no average scaled score"
_SCHOOL_YEAR = re.compile(r"^(\d{4})-(\d{2})$")


# --- school years --------------------------------------------------------------------------------

def _start_year(school_year: str) -> int | None:
    match = _SCHOOL_YEAR.match(school_year)
    if match is None or (int(match[1]) + 1) % 100 != int(match[2]):
        return None
    return int(match[1])


def previous_school_year(school_year: str) -> str | None:
    """"2024-25" → "2023-24"; None for a label that is not a school year."""
    start = _start_year(school_year)
    return None if start is None else f"{start - 1}-{start % 100:02d}"


def school_year_end(school_year: str) -> date | None:
    start = _start_year(school_year)
    return None if start is None else date(start + 1, 6, 30)


def state_code(code: str) -> str:
    """A school's code as the state's files give it: DESE codes are eight digits, zero-padded (a school
    registry may leave the zeros out)."""
    return code.zfill(8) if code.isdigit() and len(code) <= 8 else code


# --- measures ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StudentCounts:
    """One school, year, subject and subgroup as the metrics query counted it (one row per student)."""

    n_students: int  # the participation denominator: enrolled in a tested grade, or with a result row
    n_enrolled: int  # of them, those with a known enrollment
    n_tested: int  # with a scale score or a performance level
    n_proficient: int
    average_scaled_score: float | None
    median_growth_percentile: float | None
    n_not_tested_with_reason: int
    n_scored: int | None = None  # of the tested, those with a scale score (the average's students); None: all of them


@dataclass(frozen=True)
class AggregateFigures:
    """A school-level row as a state publishes it (SchoolAggregate)."""

    n_tested: int | None
    proficiency_rate: float | None
    average_scaled_score: float | None
    median_growth_percentile: float | None
    participation_rate: float | None


@dataclass(frozen=True)
class Measures:
    """Unsuppressed figures of one subgroup: what the engine reasons with; `report` decides what is shown."""

    subgroup: str
    source: str  # student_results | aggregate
    n_tested: int | None
    n_students: int | None
    basis: ParticipationBasis | None
    proficiency_rate: float | None
    average_scaled_score: float | None
    median_growth_percentile: float | None
    participation_rate: float | None
    n_not_tested_with_reason: int | None = None
    n_scored: int | None = None  # students behind the average scaled score; None: the tested ones

    def suppressed(self, minimum_n: int) -> bool:
        # A state aggregate without a count was published, so the state judged it large enough.
        if self.n_tested is None:
            return self.average_scaled_score is None
        return self.n_tested < minimum_n

    def average_shown(self, minimum_n: int) -> float | None:
        """The average scaled score, unless fewer than minimum n students have a score (the others: a level only)."""
        if self.n_scored is not None and self.n_scored < minimum_n:
            return None
        return self.average_scaled_score

    @property
    def exempt_share(self) -> float | None:
        if self.n_not_tested_with_reason is None or not self.n_students:
            return None
        return 100.0 * self.n_not_tested_with_reason / self.n_students


def _pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def measures_from_counts(subgroup: str, counts: StudentCounts, *, enrollments_known: bool) -> Measures:
    return Measures(
        subgroup=subgroup,
        source="student_results",
        n_tested=counts.n_tested,
        n_students=counts.n_students,
        basis="enrollments" if enrollments_known else "result_rows",
        proficiency_rate=_pct(counts.n_proficient, counts.n_tested),
        average_scaled_score=counts.average_scaled_score,
        median_growth_percentile=counts.median_growth_percentile,
        participation_rate=_pct(counts.n_tested, counts.n_students),
        n_not_tested_with_reason=counts.n_not_tested_with_reason,
        n_scored=counts.n_scored,
    )


def measures_from_aggregate(subgroup: str, row: AggregateFigures) -> Measures:
    return Measures(
        subgroup=subgroup, source="aggregate", n_tested=row.n_tested, n_students=None,
        basis="aggregate" if row.participation_rate is not None else None,
        proficiency_rate=row.proficiency_rate, average_scaled_score=row.average_scaled_score,
        median_growth_percentile=row.median_growth_percentile, participation_rate=row.participation_rate,
    )


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def report(measures: Measures | None, subgroup: str, minimum_n: int, standing: Standing | None) -> SubgroupFigures:
    """What a review shows of one subgroup: nothing but the counts below the minimum n."""
    if measures is None:
        return SubgroupFigures(subgroup=subgroup, n_tested=0, suppressed=True, source="student_results")
    n_enrolled = measures.n_students if measures.basis == "enrollments" else None
    if measures.suppressed(minimum_n):
        return SubgroupFigures(subgroup=subgroup, n_tested=measures.n_tested or 0, n_enrolled=n_enrolled, suppressed=True,
                               source=measures.source, participation_basis=measures.basis,
                               unranked_reason=f"fewer than {minimum_n} students tested: the policy's minimum n")
    average = measures.average_shown(minimum_n)
    if average is None:
        unranked = (f"fewer than {minimum_n} students with a scaled score: the policy's minimum n"
                    if measures.average_scaled_score is not None else NO_AVERAGE)
    else:
        unranked = standing.unranked_reason if standing is not None else None
    return SubgroupFigures(
        subgroup=subgroup,
        n_tested=measures.n_tested or 0,
        n_enrolled=n_enrolled,
        proficiency_rate=_round(measures.proficiency_rate),
        average_scaled_score=_round(average),
        median_growth_percentile=_round(measures.median_growth_percentile),
        participation_rate=_round(measures.participation_rate),
        achievement_percentile=standing.percentile if average is not None and standing is not None else None,
        unranked_reason=unranked,
        source=measures.source,
        participation_basis=measures.basis,
    )


# --- achievement percentile ----------------------------------------------------------------------

@dataclass(frozen=True)
class Standing:
    """A group's achievement percentile, or why the state's ranking leaves it out (state_ranking)."""

    percentile: int | None
    unranked_reason: str | None = None

    @classmethod
    def of(cls, counts: tuple[int, int, int] | None, unranked_reason: str | None) -> Standing:
        """From (schools below, other schools equal, schools ranked) when the group is ranked; else the reason."""
        if counts is None:
            return cls(None, unranked_reason or "not ranked: the school has no figures among those ranked")
        return cls(percentile_rank(*counts))


def percentile_rank(lower: int, equal_others: int, total: int) -> int:
    """DESE's achievement percentile, 1..99: the school's rank r among the `total` schools ranked (tied schools share
    the mean of their ranks), put in one of 99 equal groups as SAS's PROC RANK GROUPS=99 does, floor(99 r / (N + 1)),
    plus one. Computed in integers (2r = 2 × lower + 2 + equal_others): no rounding error decides a group's edge."""
    if total <= 0:
        raise ValueError("a percentile needs at least one school")
    return 99 * (2 * lower + 2 + equal_others) // (2 * (total + 1)) + 1


# --- goals and overall status --------------------------------------------------------------------

def target_in_force(goal: GoalContract, as_of: date, year_end: date | None) -> float:
    """The annual target; while the school year runs, the latest interim target already due."""
    if year_end is not None and as_of <= year_end:
        due = [interim for interim in goal.interim_targets if interim.due <= as_of]
        if due:
            return max(due, key=lambda interim: interim.due).target
    return goal.annual_target


def goal_reason(goal: GoalContract, shown: SubgroupFigures | None, target: float,
                policy: ReviewPolicy) -> GroupStatusReason:
    """meeting at or above the target, approaching within the policy's band below it, else off track; insufficient
    data when the subgroup is suppressed or the metric has no value."""
    if shown is None:
        return reasons.too_few(goal.subgroup, 0, policy.minimum_n)
    if shown.suppressed:
        return reasons.too_few(goal.subgroup, shown.n_tested, policy.minimum_n)
    # "no average scaled score" would only repeat what the sentence says.
    why_missing = shown.unranked_reason if goal.metric in _RANKED_METRICS and shown.unranked_reason != NO_AVERAGE else None
    return reasons.against_goal(goal.metric, goal.subgroup, getattr(shown, goal.metric.value), target,
                                policy.band(goal.metric), why_missing)


def goal_findings(goals: Iterable[GoalContract], subject: Subject, figures: dict[str, SubgroupFigures],
                  policy: ReviewPolicy, as_of: date, year_end: date | None) -> list[GroupGoalFinding]:
    findings = []
    for goal in goals:
        if goal.subject != subject:
            continue
        target = target_in_force(goal, as_of, year_end)
        reason = goal_reason(goal, figures.get(goal.subgroup), target, policy)
        findings.append(GroupGoalFinding(goal_id=goal.goal_id, metric=goal.metric, subject=goal.subject,
                                         subgroup=goal.subgroup, target=target, actual=reason.actual,
                                         status=reason.status, reason=reason))
    return findings


def overall_reason(all_students: SubgroupFigures, findings: Sequence[GroupGoalFinding],
                   previous_proficiency: float | None, previous_year: str, policy: ReviewPolicy) -> GroupStatusReason:
    """Insufficient data when all students are suppressed; else the worst goal with data; with none, all-students
    proficiency against the previous year's (`previous_proficiency`, of `previous_year`)."""
    if all_students.suppressed:
        return reasons.too_few(Subgroup.ALL_STUDENTS, all_students.n_tested, policy.minimum_n)
    judged = [finding for finding in findings if finding.status != ReviewStatus.INSUFFICIENT_DATA]
    if judged:
        worst = max(judged, key=lambda finding: _SEVERITY[finding.status])  # the first of the worst
        return reasons.worst_goal(worst.reason, len(judged))
    return reasons.against_last_year(all_students.proficiency_rate, previous_proficiency, previous_year,
                                     policy.band(Metric.PROFICIENCY_RATE))


# --- integrity flags -----------------------------------------------------------------------------

def _of_expected(m: Measures) -> str:
    return f" ({m.n_tested} of {m.n_students})" if m.n_students and m.n_tested is not None else ""


def low_participation_flags(measures: Iterable[Measures], policy: ReviewPolicy) -> list[GroupIntegrityFlag]:
    """Participation below the minimum, for all students or any subgroup of at least minimum n students."""
    flags = []
    for m in measures:
        if m.participation_rate is None or m.participation_rate >= policy.participation_minimum:
            continue
        size = m.n_students if m.n_students is not None else m.n_tested
        if size is not None and size < policy.minimum_n:
            continue
        flags.append(GroupIntegrityFlag(
            kind="low_participation", subgroup=m.subgroup,
            summary=f"Participation: {reasons.number(m.participation_rate)}% of {reasons.group_words(m.subgroup)} "
                    f"tested{_of_expected(m)}; the zone policy's minimum is {policy.participation_minimum:g}%.",
            evidence={"tested": m.n_tested, "enrolled": m.n_students, "rate": round(m.participation_rate, 2),
                      "minimum": policy.participation_minimum, "basis": m.basis},
        ))
    return flags


@dataclass(frozen=True)
class GainDistribution:
    """Year-over-year changes of all-students average scaled score, as sums (so one school can be taken out)."""

    n: int
    total: float
    total_squares: float

    def without(self, gain: float | None) -> GainDistribution:
        if gain is None:
            return self
        return GainDistribution(self.n - 1, self.total - gain, self.total_squares - gain * gain)

    @property
    def mean(self) -> float:
        return self.total / self.n

    @property
    def sd(self) -> float:
        """Sample standard deviation."""
        variance = (self.total_squares - self.n * self.mean ** 2) / (self.n - 1)
        return math.sqrt(max(0.0, variance))


def improbable_gain_flag(current: Measures | None, previous: Measures | None, comparison: GainDistribution | None,
                         policy: ReviewPolicy, *, years: tuple[str, str]) -> GroupIntegrityFlag | None:
    """A gain in average scaled score more than `gain_sd_threshold` SDs above the mean gain of the other schools."""
    if (current is None or previous is None or comparison is None or comparison.n < MIN_COMPARISON_SCHOOLS
            or current.average_shown(policy.minimum_n) is None or previous.average_shown(policy.minimum_n) is None
            or current.suppressed(policy.minimum_n) or previous.suppressed(policy.minimum_n)):
        return None
    gain = current.average_scaled_score - previous.average_scaled_score
    mean, sd = comparison.mean, comparison.sd
    threshold = mean + policy.integrity.gain_sd_threshold * sd
    if gain <= threshold:
        return None
    z = (gain - mean) / sd if sd > 0 else None
    return GroupIntegrityFlag(
        kind="improbable_gain", subgroup=Subgroup.ALL_STUDENTS,
        summary=f"Average scaled score rose {gain:.1f} points from {years[0]} to {years[1]}; comparable schools rose "
                f"{mean:.1f} ± {sd:.1f} on average; the zone policy flags a gain more than "
                f"{policy.integrity.gain_sd_threshold:g} standard deviations above their mean.",
        evidence={"gain": round(gain, 2), "previous": round(previous.average_scaled_score, 2),
                  "current": round(current.average_scaled_score, 2), "mean": round(mean, 3), "sd": round(sd, 3),
                  "z": None if z is None else round(z, 2), "n_schools": comparison.n,
                  "sd_threshold": policy.integrity.gain_sd_threshold,
                  "comparison": "every other school with an all-students average for the subject in both years"},
    )


@dataclass(frozen=True)
class DropCounts:
    """Students tested at the school last year, and those of them not tested there this year."""

    last_year_tested: int
    cut_score: float  # last year's 25th percentile scaled score at the school
    dropped: int
    dropped_low: int  # of the dropped, scoring at or below the cut last year


def low_scorer_drop_flag(drop: DropCounts | None, policy: ReviewPolicy, *,
                         years: tuple[str, str]) -> GroupIntegrityFlag | None:
    thresholds = policy.integrity
    if drop is None or drop.dropped < thresholds.low_scorer_drop_min_students:
        return None
    share = drop.dropped_low / drop.dropped
    if share < thresholds.low_scorer_drop_share:
        return None
    return GroupIntegrityFlag(
        kind="low_scorer_drop", subgroup=Subgroup.ALL_STUDENTS,
        summary=f"{drop.dropped_low} of the {drop.dropped} students tested in {years[0]} but not in {years[1]} were in "
                f"the school's bottom quartile ({share:.0%}; about 25% expected, and the zone policy flags "
                f"{thresholds.low_scorer_drop_share:.0%} or more).",
        evidence={"last_year_tested": drop.last_year_tested, "dropped": drop.dropped, "dropped_low_scorers": drop.dropped_low,
                  "share": round(share, 3), "threshold_share": thresholds.low_scorer_drop_share,
                  "expected_share": EXPECTED_LOW_SCORER_SHARE, "cut_score": round(drop.cut_score, 2),
                  "min_students": thresholds.low_scorer_drop_min_students},
    )


def exemption_spike_flag(current: Measures | None, previous: Measures | None, policy: ReviewPolicy,
                         *, years: tuple[str, str]) -> GroupIntegrityFlag | None:
    """The share of expected test-takers with a not-tested code rose by at least `exemption_jump_points`."""
    if current is None or previous is None:
        return None
    now, before = current.exempt_share, previous.exempt_share
    if now is None or before is None or min(current.n_students or 0, previous.n_students or 0) < policy.minimum_n:
        return None
    jump = now - before
    if jump < policy.integrity.exemption_jump_points:
        return None
    return GroupIntegrityFlag(
        kind="exemption_spike", subgroup=Subgroup.ALL_STUDENTS,
        summary=f"Students not tested with a reason (exempt, medical, absent, ...) went from {before:.1f}% in {years[0]} "
                f"to {now:.1f}% in {years[1]}; the zone policy flags a rise of "
                f"{policy.integrity.exemption_jump_points:g} points or more.",
        evidence={"share": round(now, 2), "previous_share": round(before, 2), "jump_points": round(jump, 2),
                  "threshold_points": policy.integrity.exemption_jump_points,
                  "not_tested": current.n_not_tested_with_reason, "students": current.n_students,
                  "previous_not_tested": previous.n_not_tested_with_reason, "previous_students": previous.n_students},
    )


# --- one review ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReviewInputs:
    school_year: str
    subject: Subject
    policy: ReviewPolicy
    measures: dict[str, Measures]  # this year, every subgroup with data
    previous_all_students: Measures | None = None
    standings: dict[str, Standing] = field(default_factory=dict)  # achievement percentiles
    comparison: GainDistribution | None = None  # other schools' gains, this school already taken out
    drop: DropCounts | None = None
    goals: Sequence[GoalContract] = ()
    as_of: date = field(default_factory=date.today)
    assessments: Sequence[AssessmentCounted] = ()  # whose results the student figures counted


@dataclass(frozen=True)
class Assessment:
    status: ReviewStatus
    reason: GroupStatusReason
    current: bool  # the zone's policy counts the school year as current: its review may alert
    metrics: list[SubgroupFigures]
    goals: list[GroupGoalFinding]
    flags: list[GroupIntegrityFlag]


def assess(inputs: ReviewInputs) -> Assessment:
    policy = inputs.policy
    shown = {subgroup: report(inputs.measures.get(subgroup), subgroup, policy.minimum_n, inputs.standings.get(subgroup))
             for subgroup in {*policy.subgroups, *inputs.measures}}
    everyone = shown[Subgroup.ALL_STUDENTS]
    if everyone.source == "student_results" and inputs.assessments:
        shown[Subgroup.ALL_STUDENTS] = everyone.model_copy(update={"assessments": list(inputs.assessments)})
    findings = goal_findings(inputs.goals, inputs.subject, shown, policy, inputs.as_of, school_year_end(inputs.school_year))
    previous = inputs.previous_all_students
    previous_proficiency = (previous.proficiency_rate
                            if previous is not None and not previous.suppressed(policy.minimum_n) else None)
    years = (previous_school_year(inputs.school_year) or "the previous year", inputs.school_year)
    reason = overall_reason(shown[Subgroup.ALL_STUDENTS], findings, previous_proficiency, years[0], policy)
    tracked = [inputs.measures[s] for s in policy.subgroups if s in inputs.measures]
    current = inputs.measures.get(Subgroup.ALL_STUDENTS)
    flags = [
        *low_participation_flags(tracked, policy),
        improbable_gain_flag(current, previous, inputs.comparison, policy, years=years),
        low_scorer_drop_flag(inputs.drop, policy, years=years),
        exemption_spike_flag(current, previous, policy, years=years),
    ]
    return Assessment(
        status=reason.status,
        reason=reason,
        current=policy.alerts_for(inputs.school_year, inputs.as_of),
        metrics=[shown[subgroup] for subgroup in policy.subgroups],
        goals=findings,
        flags=[flag for flag in flags if flag is not None],
    )
