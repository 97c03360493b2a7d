"""The four services, as the CLI and the tests see them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ezone_kit.service import ServiceDefinition
from ezone_schemas import topics


@dataclass(frozen=True)
class ServiceEntry:
    name: str  # as in services/<name>/
    package: str
    port: int

    @property
    def definition(self) -> ServiceDefinition:
        return importlib.import_module(f"{self.package}.bootstrap").definition

    @property
    def asgi_app(self) -> str:
        return f"{self.package}.main:app"


SERVICES = (
    ServiceEntry("plans", "ezone_plans", 8001),
    ServiceEntry("results", "ezone_results", 8002),
    ServiceEntry("services-catalog", "ezone_catalog", 8003),
    ServiceEntry("notifications", "ezone_notifications", 8004),
)


def all_topics() -> list[str]:
    """Every topic ezone needs: one per producer, and a dead-letter topic per consumer group and topic."""
    return [*topics.ALL, *(t for entry in SERVICES for t in entry.definition.dead_letter_topics())]
