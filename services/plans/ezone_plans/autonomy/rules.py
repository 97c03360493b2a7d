"""Earned autonomy, as pure rules over a school's review history and the zone's tier policy.

A school year's status combines its subjects by the policy's weights: `meeting` when every weighted
subject reviewed is meeting, `off_track` when off-track subjects carry at least half the weight,
otherwise `approaching`; subjects with insufficient data do not count. The tier then follows the
most recent consecutive school years.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ezone_schemas.vocabulary import AutonomyTier, ReviewStatus

from ..policy.document import PolicyDocument


@dataclass(frozen=True)
class TierDecision:
    tier: AutonomyTier
    rule: str
    reason: str


def school_year_start(school_year: str) -> int:
    return int(school_year[:4])


def year_status(subject_statuses: Mapping[str, str], policy: PolicyDocument) -> ReviewStatus | None:
    weights = {subject.value: weight for subject, weight in policy.subject_weights.items() if weight > 0}
    counted = {s: ReviewStatus(v) for s, v in subject_statuses.items() if s in weights and v != ReviewStatus.INSUFFICIENT_DATA}
    if not counted:
        return None
    total = sum(weights[s] for s in counted)
    off_track = sum(weights[s] for s, v in counted.items() if v == ReviewStatus.OFF_TRACK)
    if all(v == ReviewStatus.MEETING for v in counted.values()):
        return ReviewStatus.MEETING
    if off_track * 2 >= total:
        return ReviewStatus.OFF_TRACK
    return ReviewStatus.APPROACHING


def recent_run(statuses_by_year: Mapping[str, ReviewStatus | None], wanted: ReviewStatus, length: int) -> list[str] | None:
    """The last `length` consecutive school years if each had the `wanted` status, else None."""
    years = sorted(statuses_by_year, key=school_year_start)[-length:]
    if len(years) < length:
        return None
    consecutive = all(school_year_start(b) - school_year_start(a) == 1 for a, b in zip(years, years[1:]))
    if consecutive and all(statuses_by_year[y] == wanted for y in years):
        return years
    return None


def decide_tier(history: Mapping[str, Mapping[str, str]], policy: PolicyDocument,
                reasons: Mapping[str, Mapping[str, str]] | None = None) -> TierDecision:
    """`history`: school year → subject → review status (the latest review of each); `reasons`: school year → subject
    → that review's reason sentence, where it gave one. The reason says the years and subjects that decided and the
    policy rule, in words, then the reviews' own sentences for the subjects that decided."""
    by_year = {year: year_status(subjects, policy) for year, subjects in history.items()}
    by_year = {year: status for year, status in by_year.items() if status is not None}

    def why(text: str, years: list[str]) -> str:
        return _with_reviews_reasons(text, years, history, by_year, reasons or {})

    rules = policy.tiers
    full_rule = (f"the zone policy gives full autonomy after {_count_years(rules.full_after_years_meeting)} meeting "
                 f"in a row")
    intensive_rule = (f"intensive support after {_count_years(rules.intensive_after_years_off_track)} off track in a "
                      f"row")
    meeting = recent_run(by_year, ReviewStatus.MEETING, rules.full_after_years_meeting)
    if meeting:
        return TierDecision(AutonomyTier.FULL, f"tiers.full_after_years_meeting = {rules.full_after_years_meeting}",
                            why(f"meeting its goals in {_years(meeting)}; {full_rule}", meeting))
    off_track = recent_run(by_year, ReviewStatus.OFF_TRACK, rules.intensive_after_years_off_track)
    if off_track:
        return TierDecision(AutonomyTier.INTENSIVE_SUPPORT,
                            f"tiers.intensive_after_years_off_track = {rules.intensive_after_years_off_track}",
                            why(f"off track in {_years(off_track)}; the zone policy moves a school to {intensive_rule}",
                                off_track))
    if not by_year:
        return TierDecision(AutonomyTier.STANDARD, "default", "no school year reviewed yet: every school starts standard")
    shown = max(rules.full_after_years_meeting, rules.intensive_after_years_off_track)
    recent = sorted(by_year, key=school_year_start)[-shown:]
    said = "; ".join(f"{year} {_STATUS_WORDS[by_year[year]]} ({_subjects(history[year])})" for year in recent)
    return TierDecision(AutonomyTier.STANDARD, "default",
                        why(f"{said}; {full_rule} and {intensive_rule}, so standard", recent))


def _with_reviews_reasons(text: str, years: list[str], history: Mapping[str, Mapping[str, str]],
                          by_year: Mapping[str, ReviewStatus], reasons: Mapping[str, Mapping[str, str]]) -> str:
    """The decision's words, then each deciding review's own sentence ("Math 2024-25: Off track: 15% proficient, …"):
    the subjects whose status the year had or, for a year approaching from mixed statuses, those not meeting."""
    cited = []
    for year in years:
        statuses = history[year]
        deciding = sorted(s for s, v in statuses.items() if v == by_year[year]) or sorted(
            s for s, v in statuses.items() if v not in (ReviewStatus.MEETING, ReviewStatus.INSUFFICIENT_DATA))
        cited += [f"{_SUBJECT_NAMES.get(s, s)} {year}: {reasons[year][s]}" for s in deciding
                  if s in reasons.get(year, {})]
    return f"{text}. {' '.join(cited)}" if cited else text


_STATUS_WORDS = {ReviewStatus.MEETING: "meeting", ReviewStatus.APPROACHING: "approaching",
                 ReviewStatus.OFF_TRACK: "off track"}
_SUBJECT_NAMES = {"ELA": "ELA", "MATH": "Math", "SCI": "Science"}


def _subjects(statuses: Mapping[str, str]) -> str:
    return ", ".join(f"{_SUBJECT_NAMES.get(subject, subject)} {status.replace('_', ' ')}"
                     for subject, status in sorted(statuses.items()))


def _count_years(n: int) -> str:
    return "1 school year" if n == 1 else f"{n} school years"


def _years(years: list[str]) -> str:
    return " and ".join(years) if len(years) == 2 else ", ".join(years)
