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
    PlannedPurchasesAtRisk,
    PlanSubmitted,
    ReviewCompleted,
    SchoolTierChanged,
)
from ezone_schemas.vocabulary import AutonomyTier, Metric, ReviewStatus, Subgroup, Subject

from ..board import links as pages
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


def _tier(tier: AutonomyTier) -> str:
    return {AutonomyTier.INTENSIVE_SUPPORT: "intensive support"}.get(tier, f"{tier.value} autonomy")


def review_thread(event: ReviewCompleted) -> str:
    return f"review:{event.school_id}:{event.school_year}:{event.subject.value}"


def vote_thread(plan_id: object, version: int) -> str:
    return f"plan-vote:{plan_id}:{version}"


def _figures(event: ReviewCompleted, subject: str) -> str:
    """A review made before reviews gave their reasons (a replayed event): its figures, as alerts said them then."""
    everyone = next((m for m in event.metrics if m.subgroup == Subgroup.ALL_STUDENTS), None)
    goal = next((g for g in event.goals if g.metric == Metric.PROFICIENCY_RATE and g.subgroup == Subgroup.ALL_STUDENTS),
                None)
    if everyone is not None and everyone.suppressed:
        return f"{subject}: too few students tested to report ({everyone.n_tested})."
    text = f"{subject} proficiency {_pct(everyone.proficiency_rate if everyone else None)}"
    if goal is not None:
        text += f" vs goal {_pct(goal.target)}"
    return text + "."


def _review(event: ReviewCompleted, school: str, settings: Settings) -> Composition:
    """The review's own reason for its status, then any other goal off track and the flags, each in its words."""
    subject = SUBJECT_NAMES.get(event.subject, event.subject.value)
    if event.reason is not None:
        parts = [f"{school} — {subject} {event.school_year}: {event.reason.sentence}"]
    else:
        parts = [f"{school} — {_figures(event, subject)}"]
    said = {event.reason.sentence} if event.reason is not None else set()
    others = [g.reason.sentence for g in event.goals
              if g.status == ReviewStatus.OFF_TRACK and g.reason is not None and g.reason.sentence not in said]
    if others:
        parts.append("Also off track: " + " ".join(others))
    if event.flags:
        parts.append("Data flagged: " + " ".join(flag.summary for flag in event.flags))
    body = " ".join(parts)
    if event.flags and event.status != ReviewStatus.OFF_TRACK:
        kinds = sorted({FLAG_WORDS.get(flag.kind, flag.kind) for flag in event.flags})
        title = f"{school}: {subject} data flagged — {', '.join(kinds)} ({event.school_year})"
    else:
        title = f"{school}: {subject} {STATUS_WORDS[event.status]} ({event.school_year})"
    review_url = pages.review_page(settings, event.school_id, event.school_year, event.subject.value)
    return Composition(
        title=title, body=body, links={"review": review_url, "board": pages.board_page(settings)},
        thread=review_thread(event), thread_position=event.version,
    )


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
                links={"plan": pages.plan_page(settings, event.school_id, event.school_year),
                       "board": pages.board_page(settings)},
                thread=vote_thread(event.plan_id, event.version), thread_position=event.version,
            )
        case PlanApproved():
            how = "automatically (a small amendment)" if event.automatic else f"{event.approvals} to {event.returns}"
            return Composition(
                title=f"{school}: {event.school_year} plan approved",
                body=f"The board approved version {event.version} of {school}'s {event.school_year} plan, {how}. "
                     f"Budget envelope ${event.budget.total:,.0f}; {len(event.goals)} goals.",
                links={"plan": pages.plan_page(settings, event.school_id, event.school_year)},
                settles=(vote_thread(event.plan_id, event.version),),
            )
        case PlanReturned():
            levers = sorted({c.lever.value for c in event.comments})
            comments = f" Comments on {', '.join(levers)}." if levers else ""
            return Composition(
                title=f"{school}: {event.school_year} plan returned",
                body=f"The board returned version {event.version} of {school}'s {event.school_year} plan "
                     f"({event.returns} to return, {event.approvals} to approve).{comments}",
                links={"plan": pages.plan_page(settings, event.school_id, event.school_year)},
                settles=(vote_thread(event.plan_id, event.version),),
            )
        case SchoolTierChanged():
            return Composition(
                title=f"{school}: {_tier(event.previous_tier)} → {_tier(event.tier)}",
                # A reason that cites the deciding reviews' sentences already ends with a full stop.
                body=f"{school} moved from {_tier(event.previous_tier)} to {_tier(event.tier)}: "
                     f"{event.reason.removesuffix('.')}.",
                links={"school": pages.school_page(settings, event.school_id)},
            )
        case OrderRejected():
            return Composition(
                title=f"{school}: order for {event.service_name} rejected",
                body=f"{school}'s order of {event.quantity} × {event.service_name} (${event.amount:,.2f}, "
                     f"{event.school_year}) was rejected by {event.rejected_by}: {event.reason}",
                links={"orders": pages.orders_page(settings, event.school_id)},
            )
        case PlannedPurchasesAtRisk():
            what = ("the non-optional service" if event.cause == "assignment" else "an order of") + f" {event.service_name}"
            return Composition(
                title=f"{school}: {event.school_year} plan's purchases no longer fit its services budget",
                body=f"After {what} (${event.amount:,.2f}), {school} has ${event.remaining:,.2f} left of its "
                     f"{event.school_year} services budget (${event.envelope:,.2f}), but the purchases its approved plan "
                     f"still has to make need ${event.planned_outstanding:,.2f}: ${event.short_by:,.2f} short. Amend "
                     "the plan, or cancel what it did not plan for.",
                links={"orders": pages.orders_page(settings, event.school_id),
                       "plan": pages.plan_page(settings, event.school_id, event.school_year)},
            )
    raise TypeError(f"no alert wording for {type(event).__name__}")
