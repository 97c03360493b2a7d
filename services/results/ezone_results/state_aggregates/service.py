"""Storing a state file's school aggregates: one upsert statement for the whole file, and results.posted
for each zone school (in any zone) whose figures it changed, so their reviews run."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

from ezone_kit.auth import Principal
from ezone_kit.uow import UnitOfWork
from ezone_schemas import ResultsPostedV2
from sqlalchemy import text

from ..announcements import announced
from ..models import IngestBatch, SchoolAggregate
from ..models import schools as directory
from ..review.queries import lock_school_codes
from .mcas import AggregateRow
from .schemas import ImportOut

_FIGURES = ("school_name", "n_tested", "proficiency_rate", "average_scaled_score", "median_growth_percentile",
            "participation_rate")
_TYPES = {"school_code": "text", "school_year": "text", "subject": "text", "subgroup": "text", "school_name": "text",
          "n_tested": "integer", "proficiency_rate": "numeric", "average_scaled_score": "numeric",
          "median_growth_percentile": "numeric", "participation_rate": "numeric"}
_AGGREGATES = SchoolAggregate.__table__.fullname

# Unchanged rows are not updated (and not returned); `xmax = 0` tells an inserted row from an updated one.
# Each returned row is joined to the zone schools with its state code (compared without zero padding).
_UPSERT = text(f"""
WITH incoming AS (
    SELECT * FROM unnest({", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _TYPES.items())})
                  AS t({", ".join(_TYPES)})
), upserted AS (
    INSERT INTO {_AGGREGATES} ({", ".join(_TYPES)}, source, batch_id)
    SELECT {", ".join(_TYPES)}, 'mcas', CAST(:batch_id AS uuid) FROM incoming
    ON CONFLICT (school_code, school_year, subject, subgroup) DO UPDATE
       SET {", ".join(f"{name} = EXCLUDED.{name}" for name in _FIGURES)},
           source = EXCLUDED.source, batch_id = EXCLUDED.batch_id, updated_at = now()
     WHERE ({", ".join(f"{_AGGREGATES}.{name}" for name in (*_FIGURES, "source"))})
           IS DISTINCT FROM ({", ".join(f"EXCLUDED.{name}" for name in (*_FIGURES, "source"))})
    RETURNING school_code, school_year, subject, subgroup, xmax = 0 AS inserted
)
SELECT u.school_code, u.school_year, u.subject, u.subgroup, u.inserted, s.id AS school_id, s.zone_id
FROM upserted u LEFT JOIN {directory.fullname} s ON ltrim(s.code, '0') = ltrim(u.school_code, '0')
""")


async def import_aggregates(uow: UnitOfWork, actor: Principal, rows: list[AggregateRow], subgroup: str) -> ImportOut:
    """All rows or none. Re-importing the same file changes nothing, records no batch and announces nothing."""
    batch_id = uuid.uuid4()
    columns = {name: [row.column(name) for row in rows] for name in _TYPES}
    await lock_school_codes(uow.session, exclusive=False)
    changed = (await uow.session.execute(_UPSERT, {**columns, "batch_id": batch_id})).all()
    inserted = {(r.school_code, r.school_year, r.subject, r.subgroup) for r in changed if r.inserted}
    updated = {(r.school_code, r.school_year, r.subject, r.subgroup) for r in changed if not r.inserted}
    school_years = sorted({row.school_year for row in rows})
    summary = ImportOut(
        batch_id=batch_id if changed else None, subgroup=subgroup, school_years=school_years, rows_received=len(rows),
        inserted=len(inserted), updated=len(updated), unchanged=len(rows) - len(inserted) - len(updated),
        schools=len({row.school_code for row in rows}),
        zone_schools_changed=len({r.school_id for r in changed if r.school_id is not None}),
    )
    if not changed:
        return summary
    counts: dict[tuple[str, uuid.UUID, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in changed:
        if r.school_id is not None:
            counts[(r.zone_id, r.school_id, r.school_year, r.subject)][0 if r.inserted else 1] += 1
    now = datetime.now(UTC)
    uow.emit(*announced(
        ResultsPostedV2(zone_id=zone_id, school_id=school_id, school_year=school_year, subject=subject,
                        assessment_identifiers=["MCAS"], batch_id=batch_id, source="mcas", rows_inserted=ins,
                        rows_updated=upd, posted_at=now)
        for (zone_id, school_id, school_year, subject), (ins, upd) in counts.items()
    ))
    uow.session.add(IngestBatch(
        id=batch_id, zone_id=actor.zone, source="mcas", status="completed", submitted_by=actor.subject,
        rows_received=len(rows), rows_inserted=summary.inserted, rows_updated=summary.updated,
        rows_unchanged=summary.unchanged, completed_at=now,
    ))
    await uow.audit(actor=actor, action="school_aggregates.imported", entity="ingest_batch", entity_id=str(batch_id),
                    zone_id=actor.zone, after=summary.model_dump(mode="json"))
    await uow.commit()
    return summary
