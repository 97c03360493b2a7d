"""What an import of a state file answers."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field


class ImportOut(BaseModel):
    batch_id: uuid.UUID | None = Field(description="The ingest batch that recorded the changes; null when nothing changed.")
    source: str = "mcas"
    subgroup: str
    school_years: list[str]
    rows_received: int
    inserted: int
    updated: int
    unchanged: int
    schools: int = Field(description="Distinct school codes in the file (the state total is code 00000000).")
    zone_schools_changed: int = Field(description="Zone schools whose figures changed: each got results.posted per year and subject.")

