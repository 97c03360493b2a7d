"""Event contracts: every event ezone publishes, as pydantic models (the source of truth).

JSON Schema files and the AsyncAPI document under schemas/ are generated from these.
"""

from . import catalog, plans, results, topics, vocabulary
from .base import EVENT_TYPES, Event, event_class
from .catalog import (
    OrderCancelled,
    OrderConfirmed,
    OrderFulfilled,
    OrderPlaced,
    OrderRejected,
    PartnerVettingChanged,
    ServicePublished,
)
from .plans import (
    PlanApproved,
    PlanReturned,
    PlanSubmitted,
    SchoolRegistered,
    SchoolTierChanged,
    SchoolUpdated,
    ZonePolicyChanged,
    ZoneRegistered,
)
from .results import ResultsPosted, ReviewCompleted

__all__ = [
    "EVENT_TYPES", "Event", "event_class", "catalog", "plans", "results", "topics", "vocabulary",
    "OrderCancelled", "OrderConfirmed", "OrderFulfilled", "OrderPlaced", "OrderRejected", "PartnerVettingChanged",
    "ServicePublished", "PlanApproved", "PlanReturned", "PlanSubmitted", "ResultsPosted", "ReviewCompleted",
    "SchoolRegistered", "SchoolTierChanged", "SchoolUpdated", "ZonePolicyChanged", "ZoneRegistered",
]
