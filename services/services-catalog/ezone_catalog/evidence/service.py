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
from ezone_schemas.catalog import Need, OutcomeMeasure, ServiceCategory
from ezone_schemas.results import GoalFinding, IntegrityFlag
from ezone_schemas.vocabulary import AutonomyTier, Subject
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..access import OVERSEER_ROLES
from ..directory import school_in_zone, school_tier
from ..models import Order, Partner, PartnerVetting, ReviewFact, Service, schools
from ..orders.rules import ENGAGED, partner_refusal
from ..partners.service import current_vettings, is_vetted, partner_in_zone, today
from ..services.service import service_partner, service_view
from .policy import EvidencePolicy, evidence_policy
from .rules import (
    MEASURE_WORDS,
    NEEDS_HELP,
    RANK_GROUPS,
    RANKING_RULE,
    REVIEW_MEASURES,
    VERDICT_WORDS,
    Change,
    Engagement,
    Facts,
    Figures,
    Judgement,
    Outcome,
    ReviewRef,
    StateFacts,
    SubjectReview,
    Verdict,
    caveat,
    deciding,
    judge,
    needs_for,
    outcomes,
    overall_status,
    rank_group,
    ranking,
)
from .schemas import (
    ComparisonSchoolView,
    EvidenceView,
    MeasureEvidence,
    NeedView,
    NotMeasuredView,
    OutcomeView,
    PartnerEvidence,
    Recommendation,
    RecommendationsView,
    ReviewRefView,
)


@dataclass
class ZoneRecord:
    """What evidence is computed from: the zone's schools, their review figures, who engaged which provider, and the
    zone policy's evidence rules."""

    school_names: dict[uuid.UUID, str]
    facts: Facts
    state: StateFacts
    by_partner: dict[uuid.UUID, set[Engagement]]
    by_service: dict[uuid.UUID, set[Engagement]]
    policy: EvidencePolicy
    oldest_counted_year: str

    @classmethod
    async def load(cls, session: AsyncSession, zone_id: str) -> ZoneRecord:
        names = dict((await session.execute(select(schools.c.id, schools.c.name).where(schools.c.zone_id == zone_id))).all())
        found = (await session.execute(select(ReviewFact).where(ReviewFact.zone_id == zone_id)
                                       .order_by(ReviewFact.completed_at))).scalars().all()
        facts = {  # of the zone's known schools: a review may arrive before its school does
            (fact.school_id, fact.school_year, fact.subject): Figures(
                fact.proficiency_rate, fact.median_growth_percentile, fact.participation_rate,
                ReviewRef(fact.review_id, fact.review_version, fact.school_year))
            for fact in found if fact.school_id in names
        }
        # The state's figures of a year and subject, as the newest review of them carried them.
        state = {(fact.school_year, fact.subject): Figures(**fact.state) for fact in found if fact.state is not None}
        by_partner: dict[uuid.UUID, set[Engagement]] = defaultdict(set)
        by_service: dict[uuid.UUID, set[Engagement]] = defaultdict(set)
        engaged = await session.execute(select(Order.school_id, Order.school_year, Order.service_id, Order.partner_id)
                                        .where(Order.zone_id == zone_id, Order.status.in_(ENGAGED)))
        for school_id, school_year, service_id, partner_id in engaged:
            by_service[service_id].add((school_id, school_year))
            if partner_id is not None:
                by_partner[partner_id].add((school_id, school_year))
        policy = await evidence_policy(session, zone_id)
        return cls(names, facts, state, by_partner, by_service, policy, policy.oldest_counted_year(today()))

    def evidence(self, engaged: set[Engagement], measures: Sequence[OutcomeMeasure], subjects: Sequence[Subject],
                 viewer: Principal, whose: str) -> EvidenceView:
        """The provider judged on `measures` in `subjects`, each outcome against its comparable schools."""
        # School-by-school outcomes say which school bought what: for the zone's overseers only.
        by_school = viewer.role in OVERSEER_ROLES
        measured, not_measured, with_outcomes = [], [], set()
        for measure in measures:
            if measure not in REVIEW_MEASURES:
                not_measured.append(NotMeasuredView(measure=measure, reason=(
                    f"The zone has no {MEASURE_WORDS[measure]} figures yet: not measured, and not replaced by a "
                    "test-score verdict.")))
                continue
            for subject in subjects:
                found = outcomes(engaged, self.school_names, self.facts, subject, measure, self.policy,
                                 self.oldest_counted_year, self.state)
                if not found:
                    continue
                with_outcomes |= {o.school_id for o in found}
                judgement = judge(subject, measure, found, self.policy)
                measured.append((judgement, MeasureEvidence(
                    subject=subject, measure=measure, verdict=judgement.verdict, sentence=judgement.sentence,
                    schools=judgement.schools, change=judgement.change, comparison_change=judgement.comparison_change,
                    difference=judgement.difference, spread=judgement.spread,
                    interval_low=judgement.interval[0] if judgement.interval else None,
                    interval_high=judgement.interval[1] if judgement.interval else None,
                    comparison_schools=judgement.comparison_schools, state_outcomes=judgement.state_outcomes,
                    stale_outcomes=judgement.stale_outcomes,
                    outcomes=[self._outcome_view(o) for o in found] if by_school else None)))
        engaged_schools = len({school for school, _ in engaged})
        verdict, sentence, decided = self._overall([j for j, _ in measured], measures, engaged_schools)
        return EvidenceView(
            schools_engaged=engaged_schools, schools_with_outcomes=len(with_outcomes), verdict=verdict,
            verdict_schools=decided.schools if decided else 0, behind_comparison=decided.behind if decided else False,
            sentence=sentence, caveat=caveat(engaged_schools, len(with_outcomes), self.policy, whose),
            oldest_counted_school_year=self.oldest_counted_year, policy_version=self.policy.version,
            measures=[view for _, view in measured], not_measured=not_measured)

    def _overall(self, judgements: list[Judgement], measures: Sequence[OutcomeMeasure], engaged: int
                 ) -> tuple[Verdict, str, Judgement | None]:
        if not any(measure in REVIEW_MEASURES for measure in measures):
            judged_on = ", ".join(MEASURE_WORDS[m] for m in measures) or "nothing"
            return Verdict.NOT_MEASURED, (f"Not measured: the zone's policy judges this work on {judged_on}, and the "
                                          "zone has no such figures; it is not judged on test scores instead."), None
        decided = deciding(judgements)
        if decided is None:
            return Verdict.NO_EVIDENCE, ("No evidence yet: no school has used it." if engaged == 0 else
                                         f"No evidence yet: of the {engaged} school{'s' if engaged != 1 else ''} "
                                         "that used it, none has reviews for the year it used it and the year "
                                         "before."), None
        return decided.verdict, decided.sentence, decided

    def _name(self, school_id: uuid.UUID) -> str:
        return self.school_names.get(school_id, str(school_id))

    def _outcome_view(self, outcome: Outcome) -> OutcomeView:
        def refs(change: Change) -> list[ReviewRefView]:
            return [ReviewRefView(review_id=r.review_id, version=r.version, school_year=r.school_year)
                    for r in change.reviews]

        return OutcomeView(
            school_id=outcome.school_id, school_name=self._name(outcome.school_id), school_year=outcome.school_year,
            before=outcome.own.before, after=outcome.own.after, change=round(outcome.own.change, 1),
            comparison_change=_round(outcome.comparison_change), difference=_round(outcome.difference),
            counted=outcome.counted, stale=outcome.stale, reviews=refs(outcome.own), comparison=outcome.basis,
            state_before=outcome.state.before if outcome.state else None,
            state_after=outcome.state.after if outcome.state else None,
            comparison_schools=[ComparisonSchoolView(
                school_id=c.school_id, school_name=self._name(c.school_id), before=c.before, after=c.after,
                change=round(c.change, 1), reviews=refs(c)) for c in outcome.comparison],
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _measures_of(policy: EvidencePolicy, categories: Sequence[str]) -> list[OutcomeMeasure]:
    return list(dict.fromkeys(m for category in categories for m in policy.measures_of(category)))


async def _partner_evidence(session: AsyncSession, record: ZoneRecord, viewer: Principal, partner: Partner,
                            vetting: PartnerVetting | None) -> PartnerEvidence:
    categories = list(dict.fromkeys((await session.execute(
        select(Service.category).where(Service.partner_id == partner.id).order_by(Service.created_at))).scalars()))
    view = record.evidence(record.by_partner.get(partner.id, set()), _measures_of(record.policy, categories),
                           list(Subject), viewer, "the partner's")
    return PartnerEvidence(**view.model_dump(), partner_id=partner.id, partner_name=partner.name,
                           vetting_status=vetting.status if vetting else None, vetted=is_vetted(vetting, today()),
                           categories=[ServiceCategory(c) for c in categories])


async def partner_evidence(session: AsyncSession, viewer: Principal, zone_id: str, partner_id: uuid.UUID) -> PartnerEvidence:
    partner = await partner_in_zone(session, zone_id, partner_id)
    vetting = (await current_vettings(session, [partner.id])).get(partner.id)
    return await _partner_evidence(session, await ZoneRecord.load(session, zone_id), viewer, partner, vetting)


async def zone_evidence(session: AsyncSession, viewer: Principal, zone_id: str) -> list[PartnerEvidence]:
    """Every partner of the zone, in the order of the ranking rule's groups, then by schools behind it, then name."""
    record = await ZoneRecord.load(session, zone_id)
    partners = (await session.execute(select(Partner).where(Partner.zone_id == zone_id))).scalars().all()
    vettings = await current_vettings(session, [p.id for p in partners])
    found = [await _partner_evidence(session, record, viewer, p, vettings.get(p.id)) for p in partners]
    found.sort(key=lambda e: (rank_group(e.verdict, e.behind_comparison), -e.verdict_schools, e.partner_name))
    return found


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
    record = await ZoneRecord.load(session, zone_id)
    stale = school_year is not None and school_year < record.oldest_counted_year
    answer = RecommendationsView(school_id=school["id"], school_year=school_year, status=status, findings_stale=stale,
                                 tier=tier, needs=[], ranking_rule=RANKING_RULE, recommendations=[], note=None)
    if status not in NEEDS_HELP:
        answer.note = ("No review yet: recommendations follow the school's first accountability review." if status is None else
                       f"The {school_year} review is {status}: recommendations are for schools off track or approaching.")
        return answer
    needs = needs_for(reviews)
    answer.needs = [NeedView(need=need, because=because) for need, because in needs.items()]
    weak_subjects = [review.subject for review in reviews if review.status in NEEDS_HELP]
    answer.recommendations = await _ranked(session, viewer, record, zone_id, tier, needs, weak_subjects)
    if stale:
        answer.note = (f"Stale findings: the school's latest review is of {school_year}, older than the zone's "
                       f"{record.policy.window_school_years}-year evidence window (from {record.oldest_counted_year}); "
                       "these recommendations answer findings that may no longer hold.")
    elif not answer.recommendations:
        answer.note = "No published service addresses these needs yet."
    return answer


async def _ranked(session: AsyncSession, viewer: Principal, record: ZoneRecord, zone_id: str, tier: AutonomyTier,
                  needs: dict[Need, list[str]], weak_subjects: Sequence[Subject]) -> list[Recommendation]:
    """Published optional services meeting a need, the school may buy, ranked by RANKING_RULE."""
    candidates = [s for s in (await session.execute(select(Service).where(
        Service.zone_id == zone_id, Service.status == "published", Service.non_optional.is_(False)))).scalars()
        if set(needs) & set(s.needs)]
    partners = {p.id: p for p in (await session.execute(
        select(Partner).where(Partner.id.in_({s.partner_id for s in candidates if s.partner_id})))).scalars()}
    vettings = await current_vettings(session, list(partners))
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
        evidence = record.evidence(engaged, record.policy.measures_of(service.category), weak_subjects, viewer, whose)
        matched = [Need(need) for need in service.needs if need in needs]
        group = rank_group(evidence.verdict, evidence.behind_comparison)
        provider = service_partner(partners[service.partner_id], vetting) if service.partner_id else None
        ranked.append((ranking(group, len(matched), evidence.verdict_schools, service.name), Recommendation(
            rank=0, service=service_view(service, provider), partner_name=provider.name if provider else None,
            vetting_status=vetting.status if vetting else None, matched_needs=matched,
            answers=list(dict.fromkeys(finding for need in matched for finding in needs[need])),
            rank_group=group + 1, reasons=[], evidence=evidence,
        )))
    ranked.sort(key=lambda pair: pair[0])
    return [recommendation.model_copy(update={"rank": rank,
                                              "reasons": _reasons(recommendation, rank, len(ranked), needs)})
            for rank, (_, recommendation) in enumerate(ranked, start=1)]


def _reasons(recommendation: Recommendation, rank: int, of: int, needs: dict[Need, list[str]]) -> list[str]:
    """What the school's findings ask for, what the evidence says, and why it is ranked here: sentences with numbers."""
    evidence = recommendation.evidence
    matched = recommendation.matched_needs
    group = recommendation.rank_group
    return [
        f"It meets {len(matched)} of the school's {len(needs)} needs ({', '.join(matched)}), answering these findings: "
        + "; ".join(recommendation.answers) + ".",
        f"Evidence: {evidence.sentence}",
        f"Ranked {rank} of {of}: its evidence is {VERDICT_WORDS[evidence.verdict]} (n = {evidence.verdict_schools}), "
        f"group {group} of {len(RANK_GROUPS)} ({RANK_GROUPS[group - 1]}); within the group, services meeting more of "
        f"the school's needs come first ({len(matched)} here), then those with more schools behind their evidence, "
        "then by name.",
    ]
