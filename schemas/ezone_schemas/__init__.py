"""Event contracts: every event ezone publishes, as pydantic models (the source of truth).

JSON Schema files and the AsyncAPI document under schemas/ are generated from these.
"""

from . import plans, topics
from .base import EVENT_TYPES, Event, event_class
from .plans import SchoolRegistered, SchoolUpdated, ZoneRegistered

__all__ = ["EVENT_TYPES", "Event", "event_class", "plans", "topics", "SchoolRegistered", "SchoolUpdated", "ZoneRegistered"]
