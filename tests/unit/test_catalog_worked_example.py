"""docs/catalog.md's worked example is what the evidence rules make of the demo's real MCAS figures: the demo
schools' and the state's math rows of 2020-21 and 2021-22, three of the schools using one partner in 2021-22."""

from __future__ import annotations

import csv
import re
import uuid
from datetime import date
from pathlib import Path

import pytest
from ezone_catalog.evidence.policy import EvidencePolicy
from ezone_catalog.evidence.rules import Figures, Judgement, judge, outcomes
from ezone_schemas.catalog import OutcomeMeasure
from ezone_schemas.vocabulary import Subject

from ezone.demo import DEMO_SCHOOL_SPANS, default_data_dir

DOC = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"
FILES = {"2020-21": "grades_3-8_all_students_2021.csv", "2021-22": "grades_3-8_all_students_2022.csv"}
USED_IT = ("John J Duggan Academy", "Forest Park Middle", "Chestnut Accelerated Middle School (Talented and Gifted)")
POLICY = EvidencePolicy(window_school_years=6)  # 2021-22 still counts in December 2026


def _figure(value: str) -> float | None:
    return float(value) if value.strip() else None


def _judged(measure: OutcomeMeasure) -> tuple[Judgement, dict[str, str]]:
    names, facts, state = {}, {}, {}
    for school_year, name in FILES.items():
        with (default_data_dir() / "mcas" / name).open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                code = row["school_code"].strip()
                if row["subject"].strip() != "MATH":
                    continue
                figures = Figures(_figure(row["me_percent"]), _figure(row["sgp"]), _figure(row["part_rate_percent"]))
                if code == "0":  # DESE's statewide row
                    state[(school_year, "MATH")] = figures
                elif code in DEMO_SCHOOL_SPANS:
                    school = uuid.uuid5(uuid.NAMESPACE_URL, code)
                    names[row["school_name"].split(" - ", 1)[-1].strip()] = school
                    facts[(school, school_year, "MATH")] = figures
    engaged = {(names[name], "2021-22") for name in USED_IT}
    found = outcomes(engaged, names.values(), facts, Subject.MATH, measure, POLICY,
                     POLICY.oldest_counted_year(date(2026, 12, 7)), state)
    bases = {name: o.basis for name, school in names.items() for o in found if o.school_id == school}
    return judge(Subject.MATH, measure, found, POLICY), bases


def _doc_text() -> str:
    """The page's prose with its quotes' markers and line breaks taken out."""
    return re.sub(r"\s+", " ", re.sub(r"^> ", "", DOC.read_text(), flags=re.MULTILINE))


@pytest.mark.parametrize("measure", [OutcomeMeasure.PROFICIENCY_RATE, OutcomeMeasure.MEDIAN_GROWTH_PERCENTILE])
def test_the_worked_examples_sentences_are_what_the_rules_make_of_the_demo_figures(measure):
    judgement, _ = _judged(measure)

    assert judgement.sentence in _doc_text()


def test_in_the_worked_example_the_school_without_comparable_zone_schools_is_compared_with_the_state():
    proficiency, bases = _judged(OutcomeMeasure.PROFICIENCY_RATE)

    assert bases == {"John J Duggan Academy": "zone", "Forest Park Middle": "zone",
                     "Chestnut Accelerated Middle School (Talented and Gifted)": "state"}
    assert (proficiency.verdict, proficiency.schools, proficiency.state_outcomes, proficiency.difference) == (
        "too_few_to_tell", 3, 1, 1.6)
