"""The review API: versions newest first, the latest review and metrics, the zone's latest per school, and who
may read what (the zone's board, district and admin everything; a school or SIS its own schools; another zone nothing)."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.results.review_support import ReviewZone, cohort, fresh_years, review_zone
from tests.integration.results.test_review_metrics import SCORES


@pytest.fixture
async def reviewed(zone_stack, zone_id) -> tuple[ReviewZone, str]:
    """Two schools with a MATH review; the first reviewed twice, and for ELA once."""
    zone = await review_zone(zone_stack, zone_id, schools=2)
    _, year = fresh_years()
    first, second = zone.schools
    for school in zone.schools:
        await zone.results(school, year, "MATH", cohort(f"{school}-m", SCORES))
        await zone.review_of(school, year, "MATH")
    await zone.review_of(first, year, "MATH", version=2)
    await zone.results(first, year, "ELA", cohort(f"{first}-e", SCORES))
    await zone.review_of(first, year, "ELA")
    return zone, year


async def get(zone: ReviewZone, path: str, role: str = "board", *, zone_id: str | None = None,
              schools: list[str] | None = None, **params: str):
    headers = zone.stack.auth(role, zone_id or zone.zone_id, schools)
    return await zone.stack.clients["results"].get(path, headers=headers, params=params)


async def test_a_schools_reviews_are_listed_newest_first_and_filtered(reviewed):
    zone, year = reviewed
    first = zone.schools[0]
    path = f"/zones/{zone.zone_id}/schools/{first}/reviews"

    every = await get(zone, path)
    math = await get(zone, path, school_year=year, subject="MATH")

    assert every.status_code == 200, every.text
    assert [(r["subject"], r["version"]) for r in every.json()] == [("ELA", 1), ("MATH", 2), ("MATH", 1)]
    assert [r["version"] for r in math.json()] == [2, 1]
    assert math.json()[0]["metrics"][0]["average_scaled_score"] == 514.17
    assert (await get(zone, path, school_year="1999")).status_code == 422


async def test_the_latest_review_and_its_metrics(reviewed):
    zone, year = reviewed
    first = zone.schools[0]
    base = f"/zones/{zone.zone_id}/schools/{first}"

    latest = await get(zone, f"{base}/reviews/latest", school_year=year, subject="MATH")
    metrics = await get(zone, f"{base}/metrics", school_year=year)

    assert latest.status_code == 200 and latest.json()["version"] == 2
    assert [(m["subject"], m["review_version"]) for m in metrics.json()] == [("ELA", 1), ("MATH", 2)]
    assert metrics.json()[1]["metrics"] == latest.json()["metrics"]
    assert metrics.json()[1]["review_id"] == latest.json()["id"]
    missing = await get(zone, f"{base}/reviews/latest", school_year=year, subject="SCI")
    assert missing.status_code == 404
    assert (await get(zone, f"{base}/reviews/latest", school_year=year)).status_code == 422


async def test_the_zones_latest_review_per_school_and_subject(reviewed):
    zone, year = reviewed
    first, second = zone.schools
    path = f"/zones/{zone.zone_id}/reviews/latest"

    board = await get(zone, path)
    own = await get(zone, path, "school", schools=[second])

    assert sorted((r["school_id"], r["subject"], r["version"]) for r in board.json()) == sorted(
        [(first, "ELA", 1), (first, "MATH", 2), (second, "MATH", 1)])
    assert [(r["school_id"], r["subject"]) for r in own.json()] == [(second, "MATH")]
    assert (await get(zone, path, school_year=year)).json() == board.json()
    assert (await get(zone, path, school_year="1999-00")).json() == []


@pytest.mark.parametrize("role", ["board", "district", "admin"])
async def test_zone_roles_read_every_school(reviewed, role):
    zone, _ = reviewed
    for school in zone.schools:
        response = await get(zone, f"/zones/{zone.zone_id}/schools/{school}/reviews", role)
        assert response.status_code == 200 and response.json(), (role, response.text)


@pytest.mark.parametrize("role", ["school", "sis"])
async def test_school_and_sis_tokens_read_only_their_own_schools(reviewed, role):
    zone, _ = reviewed
    first, second = zone.schools
    own = await get(zone, f"/zones/{zone.zone_id}/schools/{first}/reviews", role, schools=[first])
    other = await get(zone, f"/zones/{zone.zone_id}/schools/{second}/reviews", role, schools=[first])
    metrics = await get(zone, f"/zones/{zone.zone_id}/schools/{second}/metrics", role, schools=[first])

    assert own.status_code == 200 and own.json()
    assert other.status_code == 403 and metrics.status_code == 403


async def test_another_zone_and_unknown_schools_are_not_found(reviewed, zone_stack):
    zone, year = reviewed
    first = zone.schools[0]
    for path in (f"/zones/{zone.zone_id}/schools/{first}/reviews", f"/zones/{zone.zone_id}/reviews/latest",
                 f"/zones/{zone.zone_id}/schools/{first}/metrics"):
        response = await get(zone, path, "admin", zone_id="another-zone")
        assert response.status_code == 404, path
    unknown = await get(zone, f"/zones/{zone.zone_id}/schools/{uuid.uuid4()}/reviews")
    assert unknown.status_code == 404
    anonymous = await zone_stack.clients["results"].get(f"/zones/{zone.zone_id}/reviews/latest")
    assert anonymous.status_code == 401
