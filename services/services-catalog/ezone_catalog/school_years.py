"""School years as the zone writes them: `2025-26`, over two consecutive calendar years."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

SCHOOL_YEAR_PATTERN = r"^20\d{2}-\d{2}$"


def consecutive_years(value: str) -> str:
    first, second = value.split("-")
    if (int(first) + 1) % 100 != int(second):
        raise ValueError(f"a school year runs over two consecutive years, e.g. {first}-{(int(first) + 1) % 100:02d}")
    return value


def previous_school_year(school_year: str) -> str:
    start = int(school_year[:4]) - 1
    return f"{start}-{(start + 1) % 100:02d}"


SchoolYear = Annotated[str, Field(pattern=SCHOOL_YEAR_PATTERN, examples=["2025-26"]), AfterValidator(consecutive_years)]
