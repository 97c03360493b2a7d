"""What the rules API returns."""

from __future__ import annotations

from datetime import datetime

from .engine import Rule


class RuleOut(Rule):
    updated_by: str
    updated_at: datetime
