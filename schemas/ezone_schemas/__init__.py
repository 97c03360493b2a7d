"""Event contracts: every event ezone publishes, as pydantic models (the source of truth).

JSON Schema files and the AsyncAPI document under schemas/ are generated from these.
"""

from . import catalog, notifications, plans, results, topics, vocabulary
from .base import EVENT_TYPES, Event, event_class
from .catalog import (
    OrderCancelled,
    OrderConfirmed,
    OrderFulfilled,
    OrderPlaced,
    OrderRejected,
    PartnerVettingChanged,
    PlannedPurchasesAtRisk,
    ServicePublished,
)
from .plans import (
    BoardMemberChanged,
    PlanApproved,
    PlanReturned,
    PlanSubmitted,
    PlanVoteCast,
    SchoolRegistered,
    SchoolTeamChanged,
    SchoolTierChanged,
    SchoolUpdated,
    ZonePolicyChanged,
    ZoneRegistered,
)
from .notifications import AlertDelivered, AlertRaised
from .results import ResultsPosted, ResultsPostedV2, ReviewCompleted, ReviewCompletedV2

__all__ = [
    "EVENT_TYPES", "Event", "event_class", "catalog", "notifications", "plans", "results", "topics", "vocabulary",
    "OrderCancelled", "OrderConfirmed", "OrderFulfilled", "OrderPlaced", "OrderRejected", "PartnerVettingChanged",
    "PlannedPurchasesAtRisk", "ServicePublished", "BoardMemberChanged", "PlanApproved", "PlanReturned", "PlanSubmitted", "PlanVoteCast",
    "ResultsPosted", "ResultsPostedV2", "ReviewCompleted", "ReviewCompletedV2", "SchoolRegistered", "SchoolTeamChanged", "SchoolTierChanged", "SchoolUpdated",
    "ZonePolicyChanged", "ZoneRegistered", "AlertDelivered", "AlertRaised",
]
