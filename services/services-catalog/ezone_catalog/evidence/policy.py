"""The part of a zone's policy document evidence reads: its `evidence` rules.

The plans service owns the document (and validates it); the catalog keeps each zone's newest version
(`ZonePolicy`) and reads only these fields, ignoring the rest, so a new policy field never breaks evidence.
The defaults are the plans service's: a zone whose policy has not arrived yet is judged by them.
"""

from __future__ import annotations

from datetime import date

from ezone_schemas.catalog import OutcomeMeasure, ServiceCategory, default_evidence_measures
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import ZonePolicy


class EvidencePolicy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int | None = Field(None, description="The zone policy version the rules are from (none: the defaults).")
    minimum_schools: int = 5
    minimum_comparison_schools: int = 3
    comparable_within_points: float = 10.0
    meaningful_difference: float = 2.0
    window_school_years: int = 3
    measures: dict[ServiceCategory, list[OutcomeMeasure]] = Field(default_factory=default_evidence_measures)

    def measures_of(self, category: str) -> list[OutcomeMeasure]:
        return self.measures.get(ServiceCategory(category), [])

    def oldest_counted_year(self, today: date) -> str:
        """The oldest school year whose evidence counts: the current one (a school year starts on 1 July) and the
        `window_school_years - 1` before it."""
        current = today.year if today.month >= 7 else today.year - 1
        first = current - self.window_school_years + 1
        return f"{first}-{(first + 1) % 100:02d}"


async def evidence_policy(session: AsyncSession, zone_id: str) -> EvidencePolicy:
    row = await session.get(ZonePolicy, zone_id)
    if row is None:
        return EvidencePolicy()
    return EvidencePolicy.model_validate({**row.document.get("evidence", {}), "version": row.version})
