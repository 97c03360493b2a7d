"""The zone's rules in the database: seeded with the defaults when the zone registers, edited by its staff."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import alert_rules
from .engine import DEFAULT_RULES, Rule, RuleBody

_RULE_NAMESPACE = uuid.UUID("6f1c9d1e-3b0a-4c55-9b7e-2f4d8a1e0c11")
SYSTEM = "system:defaults"


def rule_id(zone_id: str, name: str) -> uuid.UUID:
    return uuid.uuid5(_RULE_NAMESPACE, f"{zone_id}:{name}")


def _row(zone_id: str, rule: Rule, updated_by: str) -> dict[str, Any]:
    return {
        "id": rule_id(zone_id, rule.name), "zone_id": zone_id, "name": rule.name, "description": rule.description,
        "event_type": rule.event_type, "conditions": [c.model_dump() for c in rule.conditions],
        "severity": rule.severity, "audiences": rule.audiences, "enabled": rule.enabled, "updated_by": updated_by,
        "updated_at": datetime.now(UTC),
    }


def rule_from_row(row: Any) -> Rule:
    return Rule(name=row.name, description=row.description, event_type=row.event_type, conditions=row.conditions,
                severity=row.severity, audiences=row.audiences, enabled=row.enabled)


async def seed_default_rules(session: AsyncSession, zone_id: str) -> None:
    """Idempotent: a redelivered zone.registered, or rules the zone already edited, are left as they are."""
    statement = pg_insert(alert_rules).values([_row(zone_id, rule, SYSTEM) for rule in DEFAULT_RULES])
    await session.execute(statement.on_conflict_do_nothing(index_elements=[alert_rules.c.id]))


async def zone_rules(session: AsyncSession, zone_id: str, event_type: str | None = None) -> list[Any]:
    query = select(alert_rules).where(alert_rules.c.zone_id == zone_id).order_by(alert_rules.c.name)
    if event_type is not None:
        query = query.where(alert_rules.c.event_type == event_type)
    return list((await session.execute(query)).all())


async def put_rule(session: AsyncSession, zone_id: str, name: str, body: RuleBody, actor: str) -> tuple[Any, bool]:
    """Create or replace a rule; returns (row, changed). The same rule sent again changes nothing."""
    rule = Rule(name=name, **body.model_dump())
    existing = (await session.execute(
        select(alert_rules).where(alert_rules.c.id == rule_id(zone_id, name)).with_for_update())).first()
    if existing is not None and rule_from_row(existing) == rule:
        return existing, False
    values = _row(zone_id, rule, actor)
    statement = pg_insert(alert_rules).values(values)
    row = (await session.execute(
        statement.on_conflict_do_update(index_elements=[alert_rules.c.id],
                                        set_={k: statement.excluded[k] for k in values if k != "id"})
        .returning(*alert_rules.c))).one()
    return row, True


async def delete_rule(session: AsyncSession, zone_id: str, name: str) -> Any | None:
    return (await session.execute(
        delete(alert_rules).where(alert_rules.c.id == rule_id(zone_id, name)).returning(*alert_rules.c))).first()
