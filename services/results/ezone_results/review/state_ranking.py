"""Which schools the state ranks for its achievement percentile, and why a school's group is not ranked.

DESE's rule, from its published results (see docs/reviews.md, "Achievement percentile"): a group's percentile
compares its average scaled score with the same group's at every public school in the state; groups with fewer than
10 students get none, and neither do the state's and districts' totals rows, which are no school. DESE also leaves some
schools' groups unranked for reasons its files do not carry (special-purpose schools such as a school for the deaf, some
small groups): ezone takes those from DESE's published files, as data (`dese_unranked.csv`: every group with an average
but no percentile in the files of the years DESE ranked schools in).
"""

from __future__ import annotations

import csv
import functools
import io
import re
from importlib import resources

STATE_MINIMUM_N = 10  # DESE: "groups with fewer than 10 students do not receive percentiles"
# DESE's codes of totals rows: the state (00000000) and each district (its four digits, then 0000).
TOTALS_CODE_PATTERN = "^[0-9]{4}0000$"

UnrankedKey = tuple[str, str, str, str]  # school code, school year, subject, subgroup


@functools.cache
def state_unranked() -> dict[UnrankedKey, str]:
    """The groups the state published figures but no percentile for, and why."""
    text = resources.files(__package__).joinpath("dese_unranked.csv").read_text(encoding="utf-8")
    return {(row["school_code"], row["school_year"], row["subject"], row["subgroup"]): row["reason"]
            for row in csv.DictReader(io.StringIO(text))}


def unranked_reason(key: UnrankedKey, n_tested: int | None) -> str | None:
    """Why the state's ranking leaves this school's group out, or None if it ranks it (given an average)."""
    if re.match(TOTALS_CODE_PATTERN, key[0]):
        return "not a school: the state's or a district's totals"
    if (reason := state_unranked().get(key)) is not None:
        return f"not ranked by the state: {reason}"
    if n_tested is not None and n_tested < STATE_MINIMUM_N:
        return f"fewer than {STATE_MINIMUM_N} students tested: the state ranks no smaller group"
    return None


@functools.cache
def excluded_columns() -> dict[str, list[str]]:
    """The state's unranked groups as four parallel arrays, for a statement to leave them out of its ranking."""
    keys = list(state_unranked())
    return {name: [key[i] for key in keys]
            for i, name in enumerate(("unranked_codes", "unranked_years", "unranked_subjects", "unranked_subgroups"))}
