"""What announces stored results: `results.posted` v2 for every subject, and its v1 copy for the subjects ezone reviews
(v1 consumers, and the review queue's trigger, know only those)."""

from __future__ import annotations

from collections.abc import Iterable

from ezone_schemas import Event, ResultsPostedV2


def announced(events: Iterable[ResultsPostedV2]) -> list[Event]:
    """Each event's v1 copy, when it has one, then the event itself."""
    return [copy for event in events for copy in (event.as_v1(), event) if copy is not None]
