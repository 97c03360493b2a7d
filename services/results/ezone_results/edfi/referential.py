"""An Ed-Fi item's referential id: the key its natural key makes."""

from __future__ import annotations

import functools
import uuid
from typing import Any

import orjson

# Ed-Fi's Data Management Service keys its documents the same way: a name-based UUID of the natural key.
_REFERENTIAL_NAMESPACE = uuid.UUID("6f0c2a8e-1b8e-5d2a-9c1e-ed0f1a5e0001")


def referential_id(zone_id: str, resource: str, identity: dict[str, Any]) -> uuid.UUID:
    """An item's key, whatever order its identity's fields come in: one unique column to look items up by, so the
    planner has one index to choose whatever its statistics say (a multi-column lookup on (zone, resource,
    identity) was planned on another index while a zone's first load outran its statistics: a scan a key)."""
    return _named(zone_id, resource, orjson.dumps(identity, option=orjson.OPT_SORT_KEYS))


# A write asks for its items' ids a few times, and most records refer to the same few assessments.
@functools.lru_cache(maxsize=65_536)
def _named(zone_id: str, resource: str, canonical: bytes) -> uuid.UUID:
    return uuid.uuid5(_REFERENTIAL_NAMESPACE, f"{zone_id}\x1f{resource}\x1f{canonical.decode()}")
