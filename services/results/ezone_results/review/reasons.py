"""Why a review's statuses are what they are: the deciding rule, the numbers it compared, and a sentence a board
member understands. Pure; the rules themselves are engine.py's (docs/reviews.md, "Goals and status")."""

from __future__ import annotations

from ezone_schemas.results import GroupStatusReason, StatusRule
from ezone_schemas.vocabulary import Metric, ReviewStatus, Subgroup

STATUS_WORDS = {
    ReviewStatus.MEETING: "Meeting",
    ReviewStatus.APPROACHING: "Approaching",
    ReviewStatus.OFF_TRACK: "Off track",
    ReviewStatus.INSUFFICIENT_DATA: "Not enough data",
}
SUBGROUP_WORDS = {
    Subgroup.ALL_STUDENTS: "students",
    Subgroup.HIGH_NEEDS: "high-needs students",
    Subgroup.ENGLISH_LEARNERS: "English learners",
    Subgroup.STUDENTS_WITH_DISABILITIES: "students with disabilities",
    Subgroup.LOW_INCOME: "low-income students",
    Subgroup.AFRICAN_AMERICAN_BLACK: "African American/Black students",
    Subgroup.HISPANIC_LATINO: "Hispanic/Latino students",
    Subgroup.WHITE: "White students",
    Subgroup.ASIAN: "Asian students",
    Subgroup.MULTI_RACE: "multi-race students",
}
_METRIC_NAMES = {
    Metric.PROFICIENCY_RATE: "proficiency",
    Metric.PARTICIPATION_RATE: "participation",
    Metric.AVERAGE_SCALED_SCORE: "average scaled score",
    Metric.MEDIAN_GROWTH_PERCENTILE: "median growth percentile",
    Metric.ACHIEVEMENT_PERCENTILE: "achievement percentile",
}
_PERCENT_METRICS = {Metric.PROFICIENCY_RATE, Metric.PARTICIPATION_RATE}


def number(value: float) -> str:
    """One decimal at most, none when it is a whole number: 15.0 → "15", 15.38 → "15.4"."""
    return f"{round(value, 1):.1f}".removesuffix(".0")


def _points(amount: float) -> str:
    shown = number(abs(amount))
    return f"{shown} point" if shown == "1" else f"{shown} points"


def amount(metric: Metric, value: float) -> str:
    """A value as it is said: "26%", "474.9"."""
    return f"{number(value)}%" if metric in _PERCENT_METRICS else number(value)


def measured(metric: Metric, value: float) -> str:
    """This year's value in words: "15% proficient", "an average scaled score of 474.9"."""
    match metric:
        case Metric.PROFICIENCY_RATE:
            return f"{number(value)}% proficient"
        case Metric.PARTICIPATION_RATE:
            return f"{number(value)}% tested"
    article = "a" if metric == Metric.MEDIAN_GROWTH_PERCENTILE else "an"
    return f"{article} {_METRIC_NAMES[metric]} of {number(value)}"


def group_words(code: str) -> str:
    """How a sentence names a group's students; a group of the deployment's own by its code, as written."""
    return SUBGROUP_WORDS.get(code) or f"students of the group {code}"


def _who(subgroup: str) -> str:
    """The subgroup a goal names, leading its sentence; nothing for all students."""
    words = group_words(subgroup)
    return "" if subgroup == Subgroup.ALL_STUDENTS else f"{words[0].upper()}{words[1:]}: "


def too_few(subgroup: str, n_tested: int, minimum_n: int) -> GroupStatusReason:
    status = ReviewStatus.INSUFFICIENT_DATA
    return GroupStatusReason(
        rule="too_few_students", status=status, subgroup=subgroup, n_tested=n_tested, minimum_n=minimum_n,
        sentence=f"{STATUS_WORDS[status]}: {n_tested} {group_words(subgroup)} tested, fewer than the zone policy's "
                 f"minimum of {minimum_n}, so no figures are reported.")


def against_goal(metric: Metric, subgroup: str, actual: float | None, target: float, band: float,
                 why_no_value: str | None = None) -> GroupStatusReason:
    """A goal's status: meeting at or above the target, approaching within the band below it, else off track."""
    common = {"metric": metric, "subgroup": subgroup, "compared_with": "goal", "reference": target, "band": band}
    goal = f"the goal of {amount(metric, target)}"
    if actual is None:
        status = ReviewStatus.INSUFFICIENT_DATA
        missing = f"no {_METRIC_NAMES[metric]} this year" + (f" ({why_no_value})" if why_no_value else "")
        return GroupStatusReason(rule="no_value", status=status, **common,
                                 sentence=f"{_who(subgroup)}{STATUS_WORDS[status]}: {missing} to compare with {goal}.")
    difference = round(actual - target, 2)
    if actual >= target:
        status, rule = ReviewStatus.MEETING, "goal_met"
        detail = f"at or above {goal}" if difference == 0 else f"{_points(difference)} above {goal}"
        policy = ""
    elif actual >= target - band:
        status, rule = ReviewStatus.APPROACHING, "goal_within_band"
        detail = f"{_points(difference)} below {goal}"
        policy = f"; the zone policy calls up to {_points(band)} below a goal approaching"
    else:
        status, rule = ReviewStatus.OFF_TRACK, "goal_below_band"
        detail = f"{_points(difference)} below {goal}"
        policy = f"; the zone policy calls more than {_points(band)} below a goal off track"
    return GroupStatusReason(rule=rule, status=status, actual=actual, difference=difference, **common,
                             sentence=f"{_who(subgroup)}{STATUS_WORDS[status]}: {measured(metric, actual)}, {detail}{policy}.")


def worst_goal(deciding: GroupStatusReason, judged: int) -> GroupStatusReason:
    """The overall status when goals with data decide it: the worst of them, its numbers and its sentence."""
    sentence = deciding.sentence if judged == 1 else f"{deciding.sentence} The worst of the {judged} goals with data."
    return deciding.model_copy(update={"rule": "worst_goal", "sentence": sentence})


def against_last_year(actual: float | None, last_year: float | None, last_year_label: str,
                      band: float) -> GroupStatusReason:
    """The overall status without a goal with data: all-students proficiency against last year's."""
    metric = Metric.PROFICIENCY_RATE
    common = {"metric": metric, "subgroup": Subgroup.ALL_STUDENTS, "reference_year": last_year_label, "band": band}
    if actual is None or last_year is None:
        status = ReviewStatus.INSUFFICIENT_DATA
        this_year = "no proficiency figure this year" if actual is None else f"{measured(metric, actual)}, but"
        missing = f" no {last_year_label} proficiency to compare with" if last_year is None else ""
        joiner = "," if actual is None and last_year is None else ""
        return GroupStatusReason(rule="no_last_year", status=status, actual=actual, reference=last_year, **common,
                                 compared_with="last_year" if last_year is not None else None,
                                 sentence=f"{STATUS_WORDS[status]}: {this_year}{joiner}{missing} and no plan goal "
                                          f"with data.")
    difference = round(actual - last_year, 2)
    before = f"last year's {amount(metric, last_year)}"
    rule: StatusRule
    if actual >= last_year:
        status, rule = ReviewStatus.MEETING, "not_below_last_year"
        detail = f"the same as {before}" if difference == 0 else f"{_points(difference)} above {before}"
        policy = "; with no plan goal to judge, the zone policy calls proficiency that did not fall meeting"
    elif actual >= last_year - band:
        status, rule = ReviewStatus.APPROACHING, "within_band_of_last_year"
        detail = f"{_points(difference)} below {before}"
        policy = f"; the zone policy calls a drop of up to {_points(band)} approaching"
    else:
        status, rule = ReviewStatus.OFF_TRACK, "below_band_of_last_year"
        detail = f"{_points(difference)} below {before}"
        policy = f"; the zone policy calls a drop of more than {_points(band)} off track"
    return GroupStatusReason(rule=rule, status=status, actual=actual, compared_with="last_year", reference=last_year,
                             difference=difference, **common,
                             sentence=f"{STATUS_WORDS[status]}: {measured(metric, actual)}, {detail}{policy}.")
