"""The demo zone: the Springfield Empowerment Zone, built from real MCAS school-level files.

Ten of the zone's middle and 6–12 schools, with their state school codes (zero-padded to DESE's
eight digits) and an enrollment estimate for the tested grades: students tested in math ÷
participation rate, from the newest year in the files.
"""

from __future__ import annotations

import csv
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

DEMO_ZONE = {"id": "springfield", "name": "Springfield Empowerment Zone Partnership", "district": "Springfield Public Schools"}

# MCAS school code → grade span: the zone's middle schools and Duggan Academy (6–12).
DEMO_SCHOOL_SPANS = {
    "2810367": "6-8",   # Chestnut Accelerated Middle School (Talented and Gifted)
    "2810366": "6-8",   # Impact Prep at Chestnut
    "2810325": "6-8",   # Forest Park Middle
    "2810328": "6-8",   # John F Kennedy Middle
    "2810320": "6-12",  # John J Duggan Academy
    "2810316": "6-8",   # Kiley Academy
    "2810315": "6-8",   # Kiley Prep
    "2810480": "6-8",   # Rise Academy at Van Sickle
    "2810485": "6-8",   # Van Sickle Academy
    "2810335": "6-8",   # Springfield Realization Academy
}


# A fictional board in the real zone's shape: 7 seats, 3 appointed by the district, 4 by the state.
DEMO_BOARD = [
    {"seat": 1, "name": "Maria Alvarez", "appointed_by": "district"},
    {"seat": 2, "name": "James Whitfield", "appointed_by": "district"},
    {"seat": 3, "name": "Denise Carter", "appointed_by": "district"},
    {"seat": 4, "name": "Robert Chen", "appointed_by": "state"},
    {"seat": 5, "name": "Angela Brooks", "appointed_by": "state"},
    {"seat": 6, "name": "Luis Ortega", "appointed_by": "state"},
    {"seat": 7, "name": "Karen O'Neill", "appointed_by": "state"},
]
BOARD_TERM_START = "2025-07-01"

_GIVEN = ["Ana", "Brian", "Carla", "Derek", "Elena", "Felix", "Grace", "Hector", "Irene", "Jamal", "Keisha", "Liam"]
_FAMILY = ["Santos", "Murphy", "Nguyen", "Brooks", "Rivera", "Kowalski", "Okafor", "Bianchi", "Haddad", "Lindqvist"]


def board_member_request(member: dict) -> dict:
    return {**member, "subject": f"board-seat-{member['seat']}@springfield.example", "active_from": BOARD_TERM_START}


def leadership_team(school_index: int, code: str) -> list[dict]:
    """A principal and two elected teacher leaders per school; fictional, deterministic names."""
    def person(k: int) -> str:
        return f"{_GIVEN[(school_index * 3 + k) % len(_GIVEN)]} {_FAMILY[(school_index + k * 7) % len(_FAMILY)]}"

    return [
        {"name": person(0), "subject": f"principal-{code}@springfield.example", "role": "principal"},
        *({"name": person(k), "subject": f"teacher-leader-{k}-{code}@springfield.example", "role": "teacher_leader",
           "elected_on": "2025-06-01", "term_ends": "2027-06-30"} for k in (1, 2)),
    ]


DEMO_SCHOOL_YEAR = "2025-26"
PER_PUPIL = 9_800
# Deterministic ids, so the catalog's demo partners (a later service) can be the same organisations.
DEMO_PARTNER_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "ezone-demo/partner/math-coaching-collaborative"))
DEMO_ASSESSMENT_SERVICE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "ezone-demo/district/interim-assessments"))


@dataclass(frozen=True)
class DemoSchool:
    code: str
    name: str
    grade_span: str
    enrollment: int | None
    proficiency: dict[str, float]  # subject -> % meeting or exceeding, newest year
    growth: dict[str, float]  # subject -> median student growth percentile, newest year

    def as_request(self) -> dict[str, object]:
        return {"code": self.code, "name": self.name, "grade_span": self.grade_span, "enrollment": self.enrollment}


def default_data_dir() -> Path:
    """shared/data beside the checkout, unless EZONE_DATA_DIR says otherwise."""
    return Path(os.environ.get("EZONE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def newest_all_students_file(mcas_dir: Path) -> Path:
    files = sorted(mcas_dir.glob("grades_3-8_all_students_*.csv"), key=lambda p: int(re.findall(r"\d{4}", p.name)[-1]))
    if not files:
        raise FileNotFoundError(
            f"no MCAS files (grades_3-8_all_students_<year>.csv) in {mcas_dir}; set EZONE_DATA_DIR to the folder holding mcas/"
        )
    return files[-1]


def demo_schools(data_dir: Path | None = None) -> list[DemoSchool]:
    path = newest_all_students_file((data_dir or default_data_dir()) / "mcas")
    schools: dict[str, DemoSchool] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["school_code"].strip() in DEMO_SCHOOL_SPANS]
        for row in rows:
            code = row["school_code"].strip()
            if row["subject"].strip() != "MATH":
                continue
            tested = int(row["num_of_students_included"].strip() or 0)
            participation = float(row["part_rate_percent"].strip() or 0)
            schools[code] = DemoSchool(
                code=code.zfill(8),
                name=row["school_name"].split(" - ", 1)[-1].strip(),
                grade_span=DEMO_SCHOOL_SPANS[code],
                enrollment=round(tested * 100 / participation) if participation else None,
                proficiency={},
                growth={},
            )
        for row in rows:
            school = schools.get(row["school_code"].strip())
            if school is not None and row["subject"].strip() in ("ELA", "MATH"):
                school.proficiency[row["subject"].strip()] = float(row["me_percent"])
                if row["sgp"].strip():
                    school.growth[row["subject"].strip()] = float(row["sgp"])
    missing = sorted(set(DEMO_SCHOOL_SPANS) - set(schools))
    if missing:
        raise ValueError(f"{path.name} has no math row for school code(s) {', '.join(missing)}")
    return [schools[code] for code in DEMO_SCHOOL_SPANS]


def plan_request(school: DemoSchool) -> dict:
    """A 2025-26 operating plan whose goals start from the school's real MCAS figures."""
    def lever(narrative: str, title: str) -> dict:
        return {"narrative": narrative, "decisions": [{"title": title, "description": narrative}]}

    total = PER_PUPIL * (school.enrollment or 300)
    goals = [
        {"metric": "proficiency_rate", "subject": subject, "subgroup": "all_students", "baseline": baseline,
         "annual_target": min(100.0, baseline + 6), "interim_targets": [{"due": "2026-01-31", "target": min(100.0, baseline + 3)}]}
        for subject, baseline in sorted(school.proficiency.items())
    ]
    if "MATH" in school.growth:
        baseline = school.growth["MATH"]
        goals.append({"metric": "median_growth_percentile", "subject": "MATH", "subgroup": "all_students",
                      "baseline": baseline, "annual_target": max(50.0, min(99.0, baseline + 5))})
    return {
        "school_year": DEMO_SCHOOL_YEAR,
        "levers": {
            "curriculum": lever("High-quality, standards-aligned materials in every math and ELA classroom.", "Adopt Illustrative Mathematics 6-8"),
            "staffing": lever("Teacher leaders coach peers; two math coaches join the staff.", "Hire two math coaches"),
            "schedule": lever("A longer day with a daily intervention block.", "Add a 45-minute intervention block"),
            "budget": {
                "narrative": "Weighted per-pupil funding, with district assessments and a vetted math partner.",
                "per_pupil_allocation": f"{PER_PUPIL}.00",
                "total": f"{total}.00",
                "line_items": [
                    {"description": "Teachers and staff", "amount": f"{round(total * 0.78)}", "category": "staffing", "provider": "internal"},
                    {"description": "Interim assessments (district)", "amount": f"{round(total * 0.015)}", "category": "services",
                     "provider": "district", "service_id": DEMO_ASSESSMENT_SERVICE_ID},
                    {"description": "Math coaching (partner)", "amount": f"{round(total * 0.02)}", "category": "services",
                     "provider": "partner", "partner_id": DEMO_PARTNER_ID},
                ],
            },
            "culture": lever("Restorative practices and advisory in every grade.", "Daily advisory"),
        },
        "goals": goals,
    }
