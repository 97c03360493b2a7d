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
from datetime import date
from pathlib import Path

from ezone_schemas.vocabulary import MCAS_NAMESPACE

DEMO_ZONE = {"id": "springfield", "name": "Springfield Empowerment Zone Partnership", "district": "Springfield Public Schools"}

# What the demo zone changes in a new zone's policy: MCAS, and nothing else, counts for accountability — its results
# by the MCAS namespace (JSON, CSV and Ed-Fi rows alike: `MCAS-G7-MATH`, ...), proficient when Meeting or Exceeding
# Expectations (as DESE writes the levels, and as SIS exports shorten them). A retake replaces the earlier attempt.
DEMO_POLICY = {
    "accountability_assessments": [{
        "namespace": MCAS_NAMESPACE,
        "proficient_levels": ["Meeting Expectations", "Exceeding Expectations", "Meeting", "Exceeding"],
    }],
    "result_choice": "latest",
}

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


# DESE's file names: grades_3-8_<student group>_<year>.csv
_FILE_NAME = re.compile(r"_(?P<group>all_students|high_needs|EL|students_with_disabilities|low-income|afr_american-black"
                        r"|hispanic-latino)_(?P<year>\d{4})\.csv$", re.IGNORECASE)
_SUBGROUPS = {"all_students": "all_students", "high_needs": "high_needs", "el": "el", "students_with_disabilities": "swd",
              "low-income": "low_income", "afr_american-black": "afr_american_black", "hispanic-latino": "hispanic_latino"}


def file_parameters(path: Path) -> dict[str, str]:
    """The subgroup and school year a DESE file name tells (MCAS 2022 is school year 2021-22); nothing for
    another name, and the service reads them from the file's `student_group` and `year` columns."""
    match = _FILE_NAME.search(path.name)
    if match is None:
        return {}
    year = int(match["year"])
    return {"subgroup": _SUBGROUPS[match["group"].lower()], "school_year": f"{year - 1}-{year % 100:02d}"}


def all_students_files(mcas_dir: Path) -> list[Path]:
    """DESE's all-students files in `mcas_dir`, oldest year first."""
    return sorted(mcas_dir.glob("grades_3-8_all_students_*.csv"), key=lambda p: int(re.findall(r"\d{4}", p.name)[-1]))


def newest_all_students_file(mcas_dir: Path) -> Path:
    files = all_students_files(mcas_dir)
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


# The demo catalog: what the district provides (four non-optional services every school gets, three it may buy)
# and four partner organisations (fictional) at different stages of vetting. Ids are deterministic so plans'
# line items and re-runs of `ezone up` find the same records.
def _demo_id(kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ezone-demo/{kind}/{name}"))


def _district(name: str, category: str, unit: str, price: str, needs: list[str], levers: list[str], description: str, *,
              non_optional: bool = False, unit_label: str | None = None, capacity: int | None = None,
              service_id: str | None = None) -> dict:
    return {"id": service_id or _demo_id("district", name), "name": name, "provider": "district", "category": category,
            "non_optional": non_optional, "description": description, "unit": unit, "unit_label": unit_label, "price": price,
            "capacity_per_year": capacity, "needs": needs, "levers": levers}


DEMO_DISTRICT_SERVICES = [
    _district("Facilities and maintenance", "facilities", "per_pupil", "38.00", ["operations"], [],
              "Custodial services, repairs and building systems for every school building.", non_optional=True),
    _district("Payroll and HR administration", "payroll", "per_pupil", "9.00", ["operations"], [],
              "Payroll, benefits administration and licensure records for school staff.", non_optional=True),
    _district("Student transportation", "transportation", "per_pupil", "52.00", ["operations", "attendance"], [],
              "Yellow-bus routes and public-transit passes for eligible students.", non_optional=True),
    _district("Food service", "food_service", "per_pupil", "24.00", ["operations"], [],
              "Breakfast and lunch under the community eligibility provision.", non_optional=True),
    _district("Interim assessments", "assessment", "per_pupil", "18.00", ["assessment", "math", "ela"], ["curriculum"],
              "Three interim assessments a year in math and ELA, with item-level reports for teacher teams.",
              service_id=DEMO_ASSESSMENT_SERVICE_ID),
    _district("Curriculum coaching", "curriculum", "per_unit", "850.00", ["curriculum", "math", "ela"], ["curriculum", "staffing"],
              "District content coaches support the rollout of high-quality instructional materials.",
              unit_label="coaching day", capacity=120),
    _district("Professional development institutes", "professional_development", "per_unit", "275.00",
              ["staffing", "curriculum", "leadership"], ["staffing"],
              "Summer and mid-year institutes for teachers and teacher leaders.", unit_label="participant", capacity=400),
]


def demo_partners(today: date) -> list[dict]:
    """Each partner: its onboarding request, its vetting (None: not vetted) and its services."""
    expires = date(today.year + 2, 6, 30).isoformat()  # vetting is reviewed every two school years

    def vetting(status: str, criteria: list[str], evidence: list[tuple[str, str]]) -> dict:
        return {"status": status, "criteria_met": criteria, "evidence": [{"title": t, "url": u} for t, u in evidence],
                "expires_on": expires}

    def partner(name: str, description: str, website: str, vetted: dict | None, services: list[dict],
                partner_id: str | None = None) -> dict:
        partner_id = partner_id or _demo_id("partner", name)
        return {
            "partner": {"id": partner_id, "name": name, "description": description, "website": website},
            "vetting": vetted,
            "services": [{"id": _demo_id("partner-service", s["name"]), "provider": "partner", "partner_id": partner_id,
                          "non_optional": False, "unit_label": None, "capacity_per_year": None, **s} for s in services],
        }

    return [
        partner("Pioneer Valley Math Collaborative", "Coaching for middle-school math teams: lesson study, data cycles, "
                "co-teaching.", "https://pvmc.example.org",
                vetting("vetted", ["Math proficiency gains in three comparable schools", "Two district references",
                                   "Coaches hold Massachusetts licensure"],
                        [("Outcomes report 2022-2024", "https://pvmc.example.org/outcomes-2024.pdf"),
                         ("Reference: Holyoke Public Schools", "https://pvmc.example.org/references/holyoke.pdf")]),
                [{"name": "Middle-school math coaching", "category": "professional_development", "unit": "per_unit",
                  "unit_label": "coaching day", "price": "1200.00", "capacity_per_year": 150,
                  "needs": ["math", "curriculum", "staffing"], "levers": ["curriculum", "staffing"],
                  "description": "A coach works with the school's math team two days a week."}],
                partner_id=DEMO_PARTNER_ID),
        partner("Extended Day Learning Partners", "After-school and Saturday academies staffed with certified teachers.",
                "https://extendedday.example.org",
                vetting("provisional", ["Certified staff", "Two district references"],
                        [("Program description", "https://extendedday.example.org/program.pdf")]),
                [{"name": "Extended learning time academy", "category": "extended_learning_time", "unit": "per_pupil",
                  "price": "420.00", "capacity_per_year": 600, "needs": ["time", "math", "ela", "attendance"],
                  "levers": ["schedule"],
                  "description": "Three extra hours a week of small-group math and ELA, after school and on Saturdays."}]),
        partner("Common Ground Restorative Practices", "Restorative practices, advisory and social-emotional learning.",
                "https://commonground.example.org",
                vetting("vetted", ["Suspension and attendance improvements in four schools", "Two district references"],
                        [("Evaluation 2023", "https://commonground.example.org/evaluation-2023.pdf")]),
                [{"name": "Restorative practices and SEL coaching", "category": "climate_sel", "unit": "fixed",
                  "price": "28000.00", "needs": ["climate", "attendance", "leadership"], "levers": ["culture"],
                  "description": "A year of training, coaching and circles for staff and students."}]),
        partner("Valley Teacher Pipeline", "A teacher residency placing trainee teachers in hard-to-staff classrooms.",
                "https://teacherpipeline.example.org", None,
                [{"name": "Teacher residency placements", "category": "staffing_support", "unit": "per_unit",
                  "unit_label": "resident", "price": "15000.00", "capacity_per_year": 20, "needs": ["staffing"],
                  "levers": ["staffing"],
                  "description": "A resident co-teaches all year under a mentor teacher, and may be hired after."}]),
    ]
