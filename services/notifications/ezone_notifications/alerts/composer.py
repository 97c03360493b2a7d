"""What an alert says, pure: a title, a short plain-language body with the numbers that matter, and links.

Numbers come from the event itself, so the alert says exactly what the review or decision said.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ezone_schemas import (
    Event,
    OrderRejected,
    PlanApproved,
    PlanReturned,
    PlanSubmitted,
    ReviewCompleted,
    SchoolTierChanged,
)
from ezone_schemas.vocabulary import Metric, ReviewStatus, Subgroup, Subject

from ..config import Settings

SUBJECT_NAMES = {Subject.ELA: "ELA", Subject.MATH: "Math", Subject.SCIENCE: "Science"}
STATUS_WORDS = {
    ReviewStatus.MEETING: "meeting its goals",
    ReviewStatus.APPROACHING: "approaching its goals",
    ReviewStatus.OFF_TRACK: "off track",
    ReviewStatus.INSUFFICIENT_DATA: "without enough data to judge",
}
FLAG_WORDS = {
    "low_participation": "low participation",
    "improbable_gain": "an improbable score gain",
    "low_scorer_drop": "low scorers missing from testing",
    "exemption_spike": "a jump in exemptions",
}


@dataclass(frozen=True)
class Composition:
    title: str
    body: str
    links: dict[str, str] = field(default_factory=dict)
    # A newer alert of the same thread supersedes older unread ones; position orders the thread.
    thread: str | None = None
    thread_position: int = 0
    # Threads this event settles (e.g. a decided plan settles its call for votes): their unread alerts are superseded.
    settles: tuple[str, ...] = ()


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def review_thread(event: ReviewCompleted) -> str:
    return f"review:{event.school_id}:{event.school_year}:{event.subject.value}"


def vote_thread(plan_id: object, version: int) -> str:
    return f"plan-vote:{plan_id}:{version}"


def _review(event: ReviewCompleted, school: str, settings: Settings) -> Composition:
    subject = SUBJECT_NAMES.get(event.subject, event.subject.value)
    everyone = next((m for m in event.metrics if m.subgroup == Subgroup.ALL_STUDENTS), None)
    goal = next((g for g in event.goals if g.metric == Metric.PROFICIENCY_RATE and g.subgroup == Subgroup.ALL_STUDENTS),
                None)
    parts: list[str] = []
    if everyone is not None and everyone.suppressed:
        parts.append(f"{subject}: too few students tested to report ({everyone.n_tested})")
    else:
        proficiency = everyone.proficiency_rate if everyone else None
        text = f"{subject} proficiency {_pct(proficiency)}"
        if goal is not None:
            text += f" vs goal {_pct(goal.target)}"
        parts.append(text)
        low = next((f for f in event.flags if f.kind == "low_participation" and f.subgroup == Subgroup.ALL_STUDENTS),
                   None)
        if everyone is not None and everyone.participation_rate is not None:
            participation = f"participation {_pct(everyone.participation_rate)}"
            if low is not None:
                participation += f" (below {low.evidence.get('minimum', 95):g}%)"
            parts.append(participation)
    other_goals = [g for g in event.goals if g is not goal and g.status == ReviewStatus.OFF_TRACK]
    if other_goals:
        parts.append(f"{len(other_goals)} more goal{'s' if len(other_goals) > 1 else ''} off track")
    body = f"{school} — " + "; ".join(parts) + "."
    if event.flags:
        body += " Data flagged: " + " ".join(flag.summary for flag in event.flags)
    if event.flags and event.status != ReviewStatus.OFF_TRACK:
        kinds = sorted({FLAG_WORDS.get(flag.kind, flag.kind) for flag in event.flags})
        title = f"{school}: {subject} data flagged — {', '.join(kinds)} ({event.school_year})"
    else:
        title = f"{school}: {subject} {STATUS_WORDS[event.status]} ({event.school_year})"
    review_url = (f"{settings.ezone_results_url}/zones/{event.zone_id}/schools/{event.school_id}/reviews"
                  f"?school_year={event.school_year}&subject={event.subject.value}")
    return Composition(
        title=title, body=body, links={"review": review_url, "board": f"{settings.ezone_notifications_url}/board"},
        thread=review_thread(event), thread_position=event.version,
    )


def _plan_url(settings: Settings, zone_id: str, school_id: object, school_year: str) -> str:
    return f"{settings.ezone_plans_url}/zones/{zone_id}/schools/{school_id}/plans/{school_year}"


def compose(event: Event, school: str, settings: Settings) -> Composition:
    match event:
        case ReviewCompleted():
            return _review(event, school, settings)
        case PlanSubmitted():
            kind = "An amendment to the" if event.amendment else "The"
            return Composition(
                title=f"{school}: {event.school_year} plan awaits your vote",
                body=f"{kind} {event.school_year} operating plan of {school} (version {event.version}) was submitted by "
                     f"{event.submitted_by} and needs the board's vote.",
                links={"plan": _plan_url(settings, event.zone_id, event.school_id, event.school_year),
                       "board": f"{settings.ezone_notifications_url}/board"},
                thread=vote_thread(event.plan_id, event.version), thread_position=event.version,
            )
        case PlanApproved():
            how = "automatically (a small amendment)" if event.automatic else f"{event.approvals} to {event.returns}"
            return Composition(
                title=f"{school}: {event.school_year} plan approved",
                body=f"The board approved version {event.version} of {school}'s {event.school_year} plan, {how}. "
                     f"Budget envelope ${event.budget.total:,.0f}; {len(event.goals)} goals.",
                links={"plan": _plan_url(settings, event.zone_id, event.school_id, event.school_year)},
                settles=(vote_thread(event.plan_id, event.version),),
            )
        case PlanReturned():
            levers = sorted({c.lever.value for c in event.comments})
            comments = f" Comments on {', '.join(levers)}." if levers else ""
            return Composition(
                title=f"{school}: {event.school_year} plan returned",
                body=f"The board returned version {event.version} of {school}'s {event.school_year} plan "
                     f"({event.returns} to return, {event.approvals} to approve).{comments}",
                links={"plan": _plan_url(settings, event.zone_id, event.school_id, event.school_year)},
                settles=(vote_thread(event.plan_id, event.version),),
            )
        case SchoolTierChanged():
            return Composition(
                title=f"{school}: autonomy tier {event.previous_tier.value} → {event.tier.value}",
                body=f"{school} moved from {event.previous_tier.value} to {event.tier.value} autonomy: {event.reason}",
                links={"school": f"{settings.ezone_plans_url}/zones/{event.zone_id}/schools/{event.school_id}"},
            )
        case OrderRejected():
            return Composition(
                title=f"{school}: order for {event.service_name} rejected",
                body=f"{school}'s order of {event.quantity} × {event.service_name} (${event.amount:,.2f}, "
                     f"{event.school_year}) was rejected by {event.rejected_by}: {event.reason}",
                links={"orders": f"{settings.ezone_catalog_url}/zones/{event.zone_id}/schools/{event.school_id}/orders"},
            )
    raise TypeError(f"no alert wording for {type(event).__name__}")
