"""What the plans tests share: requests as a given role, and the rows a rejected request must leave alone."""

from __future__ import annotations

import httpx

from tests.helpers import scalar
from tests.integration.test_registry_api import assert_invalid_fields, assert_problem
from tests.stack import Stack

__all__ = ["assert_invalid_fields", "assert_problem", "call", "footprint", "audit_entries", "outbox_count"]

_ZONE_ROWS = {
    "zones": "SELECT count(*) FROM plans.zones WHERE id = :z",
    "schools": "SELECT count(*) FROM plans.schools WHERE zone_id = :z",
    "board_members": "SELECT count(*) FROM plans.board_members WHERE zone_id = :z",
    "leadership_members": "SELECT count(*) FROM plans.leadership_members WHERE zone_id = :z",
    "zone_policies": "SELECT count(*) FROM plans.zone_policies WHERE zone_id = :z",
    "outbox": "SELECT count(*) FROM plans.outbox WHERE payload->>'zone_id' = :z",
    "audit_log": "SELECT count(*) FROM plans.audit_log WHERE zone_id = :z",
}


async def footprint(stack: Stack, zone_id: str) -> dict[str, object]:
    """Every row plans keeps about a zone, and a digest of their contents: a rejected request leaves it as it was."""
    counts: dict[str, object] = {table: await scalar(stack, sql, z=zone_id) for table, sql in _ZONE_ROWS.items()}
    counts["contents"] = await scalar(stack, """
        SELECT md5(concat_ws('|',
            (SELECT string_agg(z::text, ',') FROM plans.zones z WHERE id = :z),
            (SELECT string_agg(s::text, ',' ORDER BY id) FROM plans.schools s WHERE zone_id = :z),
            (SELECT string_agg(b::text, ',' ORDER BY id) FROM plans.board_members b WHERE zone_id = :z),
            (SELECT string_agg(l::text, ',' ORDER BY id) FROM plans.leadership_members l WHERE zone_id = :z)))""", z=zone_id)
    return counts


async def call(stack: Stack, method: str, path: str, role: str = "admin", zone: str | None = None, *,
               schools: list[str] | None = None, headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
    """A request to plans as `role` of `zone` (by default the zone in the path)."""
    token_zone = zone or path.split("/")[2]
    auth = stack.auth(role, token_zone, schools)
    return await stack.clients["plans"].request(method, path, headers={**auth, **(headers or {})}, **kwargs)


async def audit_entries(stack: Stack, action: str, entity_id: str) -> int:
    return await scalar(stack, "SELECT count(*) FROM plans.audit_log WHERE action = :a AND entity_id = :e", a=action, e=entity_id)


async def outbox_count(stack: Stack, ce_type: str, key: str) -> int:
    return await scalar(stack, "SELECT count(*) FROM plans.outbox WHERE ce_type = :t AND key = :k", t=ce_type, k=key)
