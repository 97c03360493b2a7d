"""The base of every event contract.

An event is a pydantic model with two class-level facts: its CloudEvents `type`
(versioned, e.g. ``org.ezone.plans.school.registered.v1``) and the Kafka topic of the
service that produces it. Subclasses register themselves, so a consumer can turn a
`ce_type` header back into the right model.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

EVENT_TYPES: dict[str, type[Event]] = {}


class Event(BaseModel):
    # Consumers ignore fields they do not know yet: changes within a version are additive.
    model_config = ConfigDict(extra="ignore", frozen=True)

    ce_type: ClassVar[str]
    topic: ClassVar[str]
    summary: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        ce_type = cls.__dict__.get("ce_type")
        if ce_type is None:
            return  # an abstract intermediate class
        if ce_type in EVENT_TYPES and EVENT_TYPES[ce_type] is not cls:
            raise TypeError(f"event type {ce_type!r} is declared twice ({EVENT_TYPES[ce_type].__name__}, {cls.__name__})")
        EVENT_TYPES[ce_type] = cls

    def partition_key(self) -> str:
        """The Kafka record key: the school when the event is about one, else the zone."""
        school_id = getattr(self, "school_id", None)
        if school_id is not None:
            return str(school_id)
        return str(getattr(self, "zone_id"))


def event_class(ce_type: str) -> type[Event] | None:
    return EVENT_TYPES.get(ce_type)
