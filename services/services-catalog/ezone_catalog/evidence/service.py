"""Evidence and recommendations, computed on every read from the stored review facts and orders.

Computing on read rather than storing a result keeps the evidence exact under concurrency: a review and a
fulfilment committed at the same moment are both in the next answer, which a recomputation triggered by each
of them in its own transaction would not guarantee. A zone has tens of schools, so the read is cheap.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ezone_kit.auth import Principal
from ezone_schemas.results import GoalFinding, IntegrityFlag
from ezone_schemas.vocabulary import AutonomyTier, Subject
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..access import OVERSEER_ROLES
from ..directory import school_in_zone, school_tier
from ..models import Order, Partner, PartnerVetting, ReviewFact, Service, schools
from ..orders.rules import ENGAGED, partner_refusal
from ..partners.service import current_vettings, is_vetted, partner_in_zone, today
from ..services.service import service_view
from .rules import (
    NEEDS_HELP,
    Facts,
    Figures,
    Outcome,
    Summary,
    SubjectReview,
    caveat,
    comparison_engagements,
    evidence_score,
    needs_for,
    outcomes,
    overall_status,
    ranking,
)
from .schemas import (
    EvidenceView,
    NeedView,
    OutcomeView,
    PartnerEvidence,
    Recommendation,
    RecommendationsView,
    SubjectEvidence,
)

Engagement = tuple[uuid.UUID, str]  # (school, school year)


@dataclass
class ZoneRecord:
    """What evidence is computed from: the zone's schools, their review figures, and who engaged which provider."""

    school_names: dict[uuid.UUID, str]
    facts: Facts
    by_partner: dict[uuid.UUID, set[Engagement]]
    by_service: dict[uuid.UUID, set[Engagement]]

    @classmethod
    async def load(cls, session: AsyncSession, zone_id: str) -> ZoneRecord:
        names = dict((await session.execute(select(schools.c.id, schools.c.name).where(schools.c.zone_id == zone_id))).all())
        facts = {  # of the zone's known schools: a review may arrive before its school does
            (fact.school_id, fact.school_year, fact.subject): Figures(fact.proficiency_rate, fact.median_growth_percentile)
            for fact in (await session.execute(select(ReviewFact).where(ReviewFact.zone_id == zone_id))).scalars()
            if fact.school_id in names
        }
        by_partner: dict[uuid.UUID, set[Engagement]] = defaultdict(set)
        by_service: dict[uuid.UUID, set[Engagement]] = defaultdict(set)
        engaged = await session.execute(select(Order.school_id, Order.school_year, Order.service_id, Order.partner_id)
                                        .where(Order.zone_id == zone_id, Order.status.in_(ENGAGED)))
        for school_id, school_year, service_id, partner_id in engaged:
            by_service[service_id].add((school_id, school_year))
            if partner_id is not None:
                by_partner[partner_id].add((school_id, school_year))
        return cls(names, facts, by_partner, by_service)

    def evidence(self, engaged: set[Engagement], viewer: Principal, whose: str) -> tuple[EvidenceView, list[Summary]]:
        found = outcomes(engaged, self.facts)
        compared = outcomes(comparison_engagements(engaged, self.school_names), self.facts)
        summaries = [Summary.of(subject, found) for subject in Subject]
        # School-by-school outcomes say which school bought what: for the zone's overseers only.
        by_school = viewer.role in OVERSEER_ROLES
        subjects = [
            SubjectEvidence(
                subject=summary.subject, schools=summary.schools, proficiency_change=summary.proficiency_change,
                growth_change=summary.growth_change, comparison_schools=comparison.schools,
                comparison_proficiency_change=comparison.proficiency_change, comparison_growth_change=comparison.growth_change,
                caveat=caveat(summary.schools, whose),
                outcomes=[self._outcome_view(o) for o in found if o.subject == summary.subject] if by_school else None,
            )
            for summary, comparison in zip(summaries, (Summary.of(subject, compared) for subject in Subject), strict=True)
            if summary.schools or comparison.schools
        ]
        with_outcomes = len({o.school_id for o in found})
        view = EvidenceView(schools_engaged=len({school for school, _ in engaged}), schools_with_outcomes=with_outcomes,
                            caveat=caveat(with_outcomes, whose), subjects=subjects)
        return view, summaries

    def _outcome_view(self, outcome: Outcome) -> OutcomeView:
        return OutcomeView(
            school_id=outcome.school_id, school_name=self.school_names.get(outcome.school_id, str(outcome.school_id)),
            school_year=outcome.school_year, proficiency_before=outcome.before.proficiency_rate,
            proficiency_after=outcome.after.proficiency_rate, proficiency_change=round(outcome.proficiency_change, 1),
            growth_before=outcome.before.median_growth_percentile, growth_after=outcome.after.median_growth_percentile,
            growth_change=round(change, 1) if (change := outcome.growth_change) is not None else None,
        )


def _partner_evidence(record: ZoneRecord, viewer: Principal, partner: Partner, vetting: PartnerVetting | None
                      ) -> tuple[PartnerEvidence, list[Summary]]:
    view, summaries = record.evidence(record.by_partner.get(partner.id, set()), viewer, "the partner's")
    evidence = PartnerEvidence(**view.model_dump(), partner_id=partner.id, partner_name=partner.name,
                               vetting_status=vetting.status if vetting else None, vetted=is_vetted(vetting, today()))
    return evidence, summaries


async def partner_evidence(session: AsyncSession, viewer: Principal, zone_id: str, partner_id: uuid.UUID) -> PartnerEvidence:
    partner = await partner_in_zone(session, zone_id, partner_id)
    vetting = (await current_vettings(session, [partner.id])).get(partner.id)
    evidence, _ = _partner_evidence(await ZoneRecord.load(session, zone_id), viewer, partner, vetting)
    return evidence


async def zone_evidence(session: AsyncSession, viewer: Principal, zone_id: str) -> list[PartnerEvidence]:
    """Every partner of the zone, those with evidence of the largest gains first."""
    record = await ZoneRecord.load(session, zone_id)
    partners = (await session.execute(select(Partner).where(Partner.zone_id == zone_id))).scalars().all()
    vettings = await current_vettings(session, [p.id for p in partners])
    found = [_partner_evidence(record, viewer, p, vettings.get(p.id)) for p in partners]
    found.sort(key=lambda pair: ranking(evidence_score(pair[1], Subject), pair[0].schools_with_outcomes, 0, pair[0].partner_name))
    return [evidence for evidence, _ in found]


async def _latest_reviews(session: AsyncSession, zone_id: str, school_id: uuid.UUID) -> tuple[str | None, list[SubjectReview]]:
    facts = (await session.execute(select(ReviewFact).where(ReviewFact.zone_id == zone_id, ReviewFact.school_id == school_id)
                                   .order_by(ReviewFact.school_year.desc(), ReviewFact.subject))).scalars().all()
    if not facts:
        return None, []
    latest = facts[0].school_year
    return latest, [
        SubjectReview(subject=Subject(f.subject), status=f.status, goals=[GoalFinding.model_validate(g) for g in f.goals],
                      flags=[IntegrityFlag.model_validate(flag) for flag in f.flags])
        for f in facts if f.school_year == latest
    ]


async def recommendations(session: AsyncSession, viewer: Principal, zone_id: str, school_id: uuid.UUID) -> RecommendationsView:
    school = await school_in_zone(session, zone_id, school_id)
    tier = await school_tier(session, school["id"])
    school_year, reviews = await _latest_reviews(session, zone_id, school["id"])
    status = overall_status(reviews)
    answer = RecommendationsView(school_id=school["id"], school_year=school_year, status=status, tier=tier, needs=[],
                                 recommendations=[], note=None)
    if status not in NEEDS_HELP:
        answer.note = ("No review yet: recommendations follow the school's first accountability review." if status is None else
                       f"The {school_year} review is {status}: recommendations are for schools off track or approaching.")
        return answer
    needs = needs_for(reviews)
    answer.needs = [NeedView(need=need, because=because) for need, because in needs.items()]
    weak_subjects = [review.subject for review in reviews if review.status in NEEDS_HELP]
    answer.recommendations = await _ranked(session, viewer, zone_id, tier, set(needs), weak_subjects)
    if not answer.recommendations:
        answer.note = "No published service addresses these needs yet."
    return answer


async def _ranked(session: AsyncSession, viewer: Principal, zone_id: str, tier: AutonomyTier, needs: set,
                  weak_subjects: Sequence[Subject]) -> list[Recommendation]:
    """Published optional services meeting a need, the school may buy, ranked by their provider's evidence."""
    candidates = [s for s in (await session.execute(select(Service).where(
        Service.zone_id == zone_id, Service.status == "published", Service.non_optional.is_(False)))).scalars()
        if needs & set(s.needs)]
    partners = {p.id: p for p in (await session.execute(
        select(Partner).where(Partner.id.in_({s.partner_id for s in candidates if s.partner_id})))).scalars()}
    vettings = await current_vettings(session, list(partners))
    record = await ZoneRecord.load(session, zone_id)
    ranked: list[tuple[tuple, Recommendation]] = []
    for service in candidates:
        vetting = vettings.get(service.partner_id) if service.partner_id else None
        # Recommend only what the school may order.
        if service.partner_id is not None and partner_refusal(
                tier, partners[service.partner_id].name, vetting.status if vetting else None,
                vetting.expires_on if vetting else None, today()) is not None:
            continue
        engaged, whose = ((record.by_partner.get(service.partner_id, set()), "the partner's") if service.partner_id
                          else (record.by_service.get(service.id, set()), "the service's"))
        evidence, summaries = record.evidence(engaged, viewer, whose)
        score = evidence_score(summaries, weak_subjects)
        matched = [need for need in service.needs if need in needs]
        ranked.append((ranking(score, evidence.schools_with_outcomes, len(matched), service.name), Recommendation(
            rank=0, service=service_view(service), partner_name=partners[service.partner_id].name if service.partner_id else None,
            vetting_status=vetting.status if vetting else None, matched_needs=matched, evidence_score=score, evidence=evidence,
        )))
    ranked.sort(key=lambda pair: pair[0])
    return [recommendation.model_copy(update={"rank": rank}) for rank, (_, recommendation) in enumerate(ranked, start=1)]


