"""every zone registered before the `planned-purchases-at-risk` alert rule existed gets it, as zones registered since
get it with their default rules; a zone that deleted the rule (its audit log says so) or wrote its own stays as it is

Revision ID: 0011
Revises: 0010
"""

import json
import uuid

from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The rule as the defaults had it when this migration was written (the code's defaults may change later).
_NAME = "planned-purchases-at-risk"
_RULE = {
    "description": "An order or a non-optional service left a school's services budget too small for its approved "
                   "plan's purchases.",
    "event_type": "budget.planned_purchases_at_risk", "conditions": [], "severity": "warning",
    "audiences": ["board", "school_team"], "enabled": True,
}
_RULE_NAMESPACE = uuid.UUID("6f1c9d1e-3b0a-4c55-9b7e-2f4d8a1e0c11")  # rules.service: a rule's id is uuid5 of zone:name

_ZONES_WITHOUT_IT = sa.text("""
    SELECT k.zone_id FROM notifications.known_zones k
    WHERE NOT EXISTS (SELECT 1 FROM notifications.alert_rules r WHERE r.zone_id = k.zone_id AND r.name = :name)
      AND NOT EXISTS (SELECT 1 FROM notifications.audit_log a
                      WHERE a.zone_id = k.zone_id AND a.entity = 'alert_rule' AND a.entity_id = :name
                        AND a.action = 'alert_rule.deleted')""")
_INSERT = sa.text("""
    INSERT INTO notifications.alert_rules
        (id, zone_id, name, description, event_type, conditions, severity, audiences, enabled, updated_by, updated_at)
    VALUES (:id, :zone_id, :name, :description, :event_type, CAST(:conditions AS jsonb), :severity,
            CAST(:audiences AS jsonb), :enabled, 'system:defaults', now())
    ON CONFLICT DO NOTHING""")


def upgrade() -> None:
    connection = op.get_bind()
    zones = connection.execute(_ZONES_WITHOUT_IT, {"name": _NAME}).scalars().all()
    if zones:
        connection.execute(_INSERT, [
            {**_RULE, "id": uuid.uuid5(_RULE_NAMESPACE, f"{zone_id}:{_NAME}"), "zone_id": zone_id, "name": _NAME,
             "conditions": json.dumps(_RULE["conditions"]), "audiences": json.dumps(_RULE["audiences"])}
            for zone_id in zones])


def downgrade() -> None:
    # The rule is the zones' data, as those seeded on zone.registered: the earlier schema holds it as well.
    pass
