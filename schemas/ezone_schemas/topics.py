"""Kafka topics: one per producing service, versioned; one dead-letter topic per consumer group."""

PLANS = "ezone.plans.v1"
RESULTS = "ezone.results.v1"
CATALOG = "ezone.catalog.v1"
NOTIFICATIONS = "ezone.notifications.v1"

ALL = (PLANS, RESULTS, CATALOG, NOTIFICATIONS)


def dead_letter_topic(topic: str, group: str) -> str:
    return f"{topic}.dlq.{group}"
