"""Synthetic student results and enrollments for tests and benchmarks: seeded, realistic, no real students.

Middle schools (grades 6–8) with MCAS-like results: scaled scores 440–560 around a school mean, the four
performance levels of the MCAS since 2017 (proficient = Meeting or Exceeding), growth percentiles, about 2% of
students not tested (absent, medical, exempt), and subgroup memberships at the rates of a Springfield-like
district. The same seed, school and student index always give the same student (grade, subgroups, ability),
whatever the subject, so results and enrollments of one call line up with those of another.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from datetime import date

NAMESPACE = "uri://doe.mass.edu/mcas"
GRADES = ("6", "7", "8")
LEVELS = ((530, "Exceeding"), (500, "Meeting"), (470, "Partially Meeting"), (440, "Not Meeting"))
PROFICIENT_LEVELS = {"Exceeding", "Meeting"}
# Test days in the spring of the school year: (month, day).
TEST_DAYS = {"ELA": (3, 25), "MATH": (5, 6), "SCI": (5, 20)}
# Membership rates (Springfield Public Schools' middle grades, MA DESE profiles, rounded).
PROGRAM_RATES = {"low_income": 0.72, "el": 0.22, "swd": 0.21}
RACES = ("hispanic_latino", "afr_american_black", "white", "asian", "multi_race")
RACE_WEIGHTS = (0.68, 0.17, 0.10, 0.02, 0.03)
NOT_TESTED_RATE = 0.02
NOT_TESTED_REASONS = ("absent", "medical", "exempt")
NOT_TESTED_WEIGHTS = (0.6, 0.25, 0.15)


def student_id(school_id: object, index: int) -> str:
    """Pseudonymous, unique per school and index."""
    return f"S{hashlib.sha1(str(school_id).encode()).hexdigest()[:10]}-{index:05d}"


def _students(school_id: object, count: int, seed: int) -> Iterator[tuple[int, str, float, list[str]]]:
    """(index, grade, ability in SDs, subgroups) of a school's students, always the same for the same seed."""
    rng = random.Random(f"{seed}/{school_id}")
    for index in range(count):
        subgroups = [name for name, rate in PROGRAM_RATES.items() if rng.random() < rate]
        if subgroups:
            subgroups.append("high_needs")  # MA: high needs = low income, EL or with disabilities
        subgroups.append(rng.choices(RACES, RACE_WEIGHTS)[0])
        ability = rng.gauss(0.0, 1.0) - 0.35 * ("el" in subgroups) - 0.45 * ("swd" in subgroups)
        yield index, GRADES[index % 3], ability, sorted(subgroups)


def _level(score: int) -> str:
    return next(name for floor, name in LEVELS if score >= floor)


def iter_student_results(school_ids: Iterable[object], *, students_per_school: int, school_year: str, subject: str,
                         seed: int = 0) -> Iterator[dict]:
    """Rows as `POST /zones/{zone}/results` takes them, one at a time (for files too big to hold). Science is
    tested in grade 8 only, as in MCAS."""
    month, day = TEST_DAYS[subject]
    tested_on = date(int(school_year[:4]) + 1, month, day).isoformat()
    for school_id in school_ids:
        school_mean = random.Random(f"{seed}/{school_id}/mean").gauss(492.0, 9.0)
        rng = random.Random(f"{seed}/{school_id}/{subject}")
        for index, grade, ability, subgroups in _students(school_id, students_per_school, seed):
            if subject == "SCI" and grade != "8":
                continue
            row = {
                "student_id": student_id(school_id, index), "school_id": str(school_id), "assessment_namespace": NAMESPACE,
                "assessment_identifier": f"MCAS-G{grade}-{subject}", "subject": subject, "grade": grade,
                "school_year": school_year, "administration_date": tested_on, "subgroups": subgroups,
            }
            if rng.random() < NOT_TESTED_RATE:
                row["not_tested_reason"] = rng.choices(NOT_TESTED_REASONS, NOT_TESTED_WEIGHTS)[0]
                yield row
                continue
            score = round(min(560.0, max(440.0, school_mean + 16.0 * ability + rng.gauss(0.0, 7.0))))
            level = _level(score)
            row |= {"scale_score": score, "performance_level": level, "proficient": level in PROFICIENT_LEVELS}
            if rng.random() < 0.95:  # a student new to the state has no growth percentile
                row["growth_percentile"] = min(99, max(1, round(50 + 18.0 * rng.gauss(0.0, 1.0) + 4.0 * ability)))
            yield row


def student_results(school_ids: Iterable[object], *, students_per_school: int, school_year: str, subject: str,
                    seed: int = 0) -> list[dict]:
    return list(iter_student_results(school_ids, students_per_school=students_per_school, school_year=school_year,
                                     subject=subject, seed=seed))


def enrollments(school_ids: Iterable[object], *, students_per_school: int, school_year: str, seed: int = 0) -> list[dict]:
    """Rows as `POST /zones/{zone}/enrollments` takes them: the same students, most entering on the first day."""
    first_day = date(int(school_year[:4]), 8, 28)
    rows = []
    for school_id in school_ids:
        rng = random.Random(f"{seed}/{school_id}/enrollment")
        for index, grade, _, subgroups in _students(school_id, students_per_school, seed):
            entry = first_day if rng.random() < 0.93 else date(first_day.year, rng.choice((10, 11, 12)), rng.randint(1, 28))
            rows.append({"student_id": student_id(school_id, index), "school_id": str(school_id), "school_year": school_year,
                         "grade": grade, "entry_date": entry.isoformat(), "subgroups": subgroups})
    return rows
