"""Zones registered before the planned-purchases alert rule existed get it from a migration, as zones registered
since get it with their defaults; a zone that deleted the rule or wrote its own keeps its choice."""

from __future__ import annotations

import json
import uuid

from ezone_kit.migrations import upgrade
from ezone_notifications.rules.engine import DEFAULT_RULES
from ezone_notifications.rules.service import SYSTEM, rule_from_row, rule_id
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

PACKAGE, SCHEMA = "ezone_notifications", "notifications"
RULE = next(rule for rule in DEFAULT_RULES if rule.name == "planned-purchases-at-risk")


async def _rule(connection, zone_id: str, name: str = RULE.name):  # noqa: ANN001
    return (await connection.execute(text("SELECT * FROM notifications.alert_rules WHERE zone_id = :z AND name = :n"),
                                     {"z": zone_id, "n": name})).first()


async def _insert_rule(connection, zone_id: str, name: str, severity: str, updated_by: str) -> None:  # noqa: ANN001
    await connection.execute(text(
        "INSERT INTO notifications.alert_rules (id, zone_id, name, description, event_type, conditions, severity,"
        " audiences, enabled, updated_by) VALUES (:id, :z, :n, '', 'plan.submitted', '[]', :s, :a, true, :by)"),
        {"id": rule_id(zone_id, name), "z": zone_id, "n": name, "s": severity, "a": json.dumps(["board"]),
         "by": updated_by})


async def test_zones_registered_before_the_budget_rule_get_it_unless_they_deleted_or_rewrote_it(postgres):
    name = f"ezone_{uuid.uuid4().hex[:10]}"
    await postgres.ensure_database(name)
    url = postgres.url(name)
    await upgrade(PACKAGE, url, SCHEMA, "0010")
    older, deleted_it, rewrote_it = (f"zone-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("older", "deleted", "own"))
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for zone_id in (older, deleted_it, rewrote_it):
                await connection.execute(text("INSERT INTO notifications.known_zones (zone_id, registered_at) "
                                              "VALUES (:z, now())"), {"z": zone_id})
                await _insert_rule(connection, zone_id, "plan-submitted", "info", SYSTEM)
            await connection.execute(text(
                "INSERT INTO notifications.audit_log (actor, actor_role, zone_id, action, entity, entity_id)"
                " VALUES ('district@x', 'district', :z, 'alert_rule.deleted', 'alert_rule', :n)"),
                {"z": deleted_it, "n": RULE.name})
            await _insert_rule(connection, rewrote_it, RULE.name, "critical", "district@x")

        await upgrade(PACKAGE, url, SCHEMA)

        async with engine.connect() as connection:
            added = await _rule(connection, older)
            assert added is not None and rule_from_row(added) == RULE
            assert (added.id, added.updated_by) == (rule_id(older, RULE.name), SYSTEM)
            assert await _rule(connection, deleted_it) is None
            own = await _rule(connection, rewrote_it)
            assert (own.severity, own.updated_by) == ("critical", "district@x")
    finally:
        await engine.dispose()
