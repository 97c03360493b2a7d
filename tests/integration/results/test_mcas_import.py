"""Statewide MCAS school-level files: `ezone import mcas` and `POST /state-aggregates/mcas`."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from ezone_kit.service import create_app
from ezone_results.bootstrap import definition as results_definition
from ezone_schemas import ResultsPosted

from ezone.demo import default_data_dir
from ezone.demo import file_parameters
from tests.events import published_events
from tests.helpers import scalar, school_code, wait_for_count
from tests.integration.results.edfi_support import zone_with_schools
from tests.integration.results.review_support import ReviewZone
from tests.integration.results.test_review_metrics import metric
from tests.integration.test_registry_api import assert_problem
from tests.stack import Stack, stack_settings

MCAS_2022 = default_data_dir() / "mcas" / "grades_3-8_all_students_2022.csv"
DUGGAN = "02810320"
HEADER = ("school_name,school_code,subject,me_num,me_percent,e_num,e_percent,m_num,m_percent,pm_num,pm_percent,nm_num,"
          "nm_percent,num_of_students_included,part_rate_percent,avg_scaled_score,sgp,included_in_sgp,ach_pctl,year")
_years = itertools.count(random.randrange(2500, 2700, 10))  # school years no other test uses (aggregates are statewide)


def row(code: str, subject: str = "MATH", me: str = "40", year: int = 2022, name: str = "Test - Test School",
        avg: str = "495.5", ach: str = "50.0") -> str:
    return f"{name},{code},{subject},10,{me},1,1,9,39,50,50,10,10,\"       1,200\",98,{avg},50.0,  100,{ach},{year}"


def csv_file(*rows: str) -> bytes:
    return "\n".join((HEADER, *rows)).encode() + b"\n"


async def post_mcas(stack: Stack, content: bytes, role: str = "state", zone: str = "z-mcas", **params: str):  # noqa: ANN201
    return await stack.clients["results"].post("/state-aggregates/mcas", content=content, params=params,
                                               headers={**stack.auth(role, zone), "Content-Type": "text/csv"})


async def aggregates(stack: Stack, school_year: str) -> int:
    return await scalar(stack, "SELECT count(*) FROM results.school_aggregates WHERE school_year = :y AND source = 'mcas'", y=school_year)


async def mcas_events(stack: Stack, zone_id: str) -> int:
    return await scalar(stack, """SELECT count(*) FROM results.outbox WHERE ce_type = :t AND payload->>'zone_id' = :z
                                  AND payload->>'source' = 'mcas'""", t=ResultsPosted.ce_type, z=zone_id)


@contextlib.asynccontextmanager
async def results_replica(stack: Stack) -> AsyncIterator[str]:
    """Another results API process on a real port, as `ezone up` runs it (its events go out by the stack's relay)."""
    settings = stack_settings(stack.database_url, stack.bootstrap_servers, stack.key_dir,
                              ezone_run_relay=False, ezone_run_consumers=False)
    app = create_app(results_definition, results_definition.settings_class(**settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def ezone_import(home: Path, url: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ezone.cli", "import", "mcas", *args, "--url", url,
        env={**os.environ, "EZONE_HOME": str(home), "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    return process.returncode, output.decode()


def test_the_cli_reads_subgroup_and_school_year_from_dese_file_names():
    assert file_parameters(MCAS_2022) == {"subgroup": "all_students", "school_year": "2021-22"}
    assert file_parameters(Path("grades_3-8_EL_2019.csv")) == {"subgroup": "el", "school_year": "2018-19"}
    assert file_parameters(Path("grades_3-8_students_with_disabilities_2021.csv"))["subgroup"] == "swd"
    assert file_parameters(Path("grades_3-8_afr_american-black_2022.csv"))["subgroup"] == "afr_american_black"
    assert file_parameters(Path("grades_3-8_hispanic-latino_2022.csv"))["subgroup"] == "hispanic_latino"
    assert file_parameters(Path("grades_3-8_low-income_2022.csv"))["subgroup"] == "low_income"
    assert file_parameters(Path("state_results.csv")) == {}


async def test_the_2022_statewide_file_loads_through_the_cli_announces_zone_schools_and_loads_again_without_effect(
    zone_stack, zone_id, tmp_path, key_dir
):
    schools = await zone_with_schools(zone_stack, zone_id, {DUGGAN: {"name": "John J Duggan Academy", "grade_span": "6-12"}})
    duggan = schools[DUGGAN]
    shutil.copytree(key_dir, tmp_path / "keys")  # the CLI's dev token, signed by the key the stack trusts

    async with results_replica(zone_stack) as url:
        code, output = await ezone_import(tmp_path, url, str(MCAS_2022), "--zone", zone_id)

    assert code == 0, output
    assert "grades_3-8_all_students_2022.csv" in output and "3,929" in output and "1,385" in output, output
    assert await aggregates(zone_stack, "2021-22") == 3929
    stored = await scalar(zone_stack, """SELECT to_jsonb(a) - 'batch_id' - 'updated_at' FROM results.school_aggregates a
        WHERE school_code = :c AND school_year = '2021-22' AND subject = 'MATH' AND subgroup = 'all_students'""", c=DUGGAN)
    assert stored == {"school_code": DUGGAN, "school_year": "2021-22", "subject": "MATH", "subgroup": "all_students",
                      "school_name": "John J Duggan Academy", "n_tested": 431, "proficiency_rate": 15.00,
                      "average_scaled_score": 482.00, "median_growth_percentile": 51.50, "participation_rate": 99.00,
                      "source": "mcas"}
    assert await scalar(zone_stack, "SELECT count(DISTINCT school_code) FROM results.school_aggregates WHERE school_year = '2021-22' "
                                    "AND subgroup = 'all_students' AND source = 'mcas'") == 1385
    # The state's own achievement percentile (ach_pctl) is not stored anywhere: ezone ranks schools itself.
    announced = await published_events(zone_stack, "ezone.results.v1", ResultsPosted.ce_type, key=duggan, expected=3)
    assert sorted((e["school_year"], e["subject"], e["source"], e["rows_inserted"]) for e in announced) == [
        ("2021-22", subject, "mcas", 1) for subject in ("ELA", "MATH", "SCI")]
    assert await scalar(zone_stack, "SELECT count(*) FROM results.ingest_batches WHERE source = 'mcas' AND rows_inserted = 3929") == 1

    again = await post_mcas(zone_stack, MCAS_2022.read_bytes(), zone=zone_id, subgroup="all_students",
                            school_year="2021-22")
    assert again.status_code == 200, again.text
    assert {k: again.json()[k] for k in ("batch_id", "inserted", "updated", "unchanged", "schools", "zone_schools_changed")} == {
        "batch_id": None, "inserted": 0, "updated": 0, "unchanged": 3929, "schools": 1385, "zone_schools_changed": 0}
    assert await mcas_events(zone_stack, zone_id) == 3
    assert await scalar(zone_stack, "SELECT count(*) FROM results.ingest_batches WHERE source = 'mcas' AND rows_received = 3929") == 1

    # The state corrects Duggan's math: one row changes and its review is asked for again.
    corrected = MCAS_2022.read_text().replace("John J Duggan Academy,2810320,MATH,          65,15,", "John J Duggan Academy,2810320,MATH,          65,16,")
    fixed = await post_mcas(zone_stack, corrected.encode(), zone=zone_id)
    assert (fixed.json()["updated"], fixed.json()["zone_schools_changed"]) == (1, 1), fixed.text
    update = await published_events(zone_stack, "ezone.results.v1", ResultsPosted.ce_type, key=duggan, where={"rows_updated": 1})
    assert [(e["subject"], e["rows_inserted"]) for e in update] == [("MATH", 0)]
    assert await scalar(zone_stack, """SELECT proficiency_rate FROM results.school_aggregates WHERE school_code = :c
        AND school_year = '2021-22' AND subject = 'MATH' AND subgroup = 'all_students'""", c=DUGGAN) == 16
    assert (await post_mcas(zone_stack, MCAS_2022.read_bytes(), zone=zone_id)).json()["updated"] == 1


async def test_every_zone_school_in_the_file_gets_results_posted_in_its_own_zone(zone_stack, zone_id):
    year = next(_years)
    school_year = f"{year - 1}-{year % 100:02d}"
    ours, theirs, nobodys = (f"0{school_code()[1:]}" for _ in range(3))  # DESE's eight digits, zero-padded
    other_zone = f"{zone_id}-b"
    our_school = (await zone_with_schools(zone_stack, zone_id, {ours: {"name": "Ours", "grade_span": "6-8"}}))[ours]
    # Registered without DESE's zero padding: codes are compared as numbers.
    their_school = (await zone_with_schools(zone_stack, other_zone, {theirs[1:]: {"name": "Theirs", "grade_span": "6-8"}}))[theirs[1:]]
    content = csv_file(row(ours[1:], "ELA", year=year), row(ours, "MATH", year=year), row(theirs, year=year), row(nobodys, year=year))

    response = await post_mcas(zone_stack, content, zone=zone_id)

    assert response.status_code == 200, response.text
    assert (response.json()["inserted"], response.json()["zone_schools_changed"], response.json()["school_years"]) == (4, 2, [school_year])
    events = await published_events(zone_stack, "ezone.results.v1", ResultsPosted.ce_type, key=our_school, expected=2)
    assert sorted((e["zone_id"], e["subject"], e["school_year"], e["source"]) for e in events) == [
        (zone_id, "ELA", school_year, "mcas"), (zone_id, "MATH", school_year, "mcas")]
    events = await published_events(zone_stack, "ezone.results.v1", ResultsPosted.ce_type, key=their_school)
    assert [(e["zone_id"], e["subject"]) for e in events] == [(other_zone, "MATH")]

    assert (await post_mcas(zone_stack, content, zone=zone_id)).json()["batch_id"] is None
    assert (await mcas_events(zone_stack, zone_id), await mcas_events(zone_stack, other_zone)) == (2, 1)


async def test_a_school_registered_after_the_state_file_loaded_is_reviewed_against_it_once(zone_stack, zone_id):
    year = next(_years)
    school_year = f"{year - 1}-{year % 100:02d}"
    code = f"0{school_code()[1:]}"
    content = csv_file(row(code, "ELA", year=year), row(code, "MATH", me="20", year=year))
    loaded = await post_mcas(zone_stack, content, zone=zone_id)
    assert (loaded.json()["inserted"], loaded.json()["zone_schools_changed"]) == (2, 0), loaded.text

    school = (await zone_with_schools(zone_stack, zone_id, {code: {"name": "Late", "grade_span": "6-8"}}))[code]

    zone = ReviewZone(zone_stack, zone_id, [school], [code])
    for subject, proficiency in (("ELA", 40.0), ("MATH", 20.0)):
        review = await zone.wait_for_review(school, school_year, subject)
        assert metric(review, "all_students")["proficiency_rate"] == proficiency
    # A change that keeps the school's code (its name here) asks for no second review.
    admin = zone_stack.auth("admin", zone_id)
    current = await zone_stack.clients["plans"].get(f"/zones/{zone_id}/schools/{school}", headers=admin)
    renamed = await zone_stack.clients["plans"].patch(f"/zones/{zone_id}/schools/{school}", json={"name": "Late Renamed"},
                                                      headers={**admin, "If-Match": current.headers["etag"]})
    assert renamed.status_code == 200, renamed.text
    await wait_for_count(zone_stack, "SELECT count(*) FROM results.schools WHERE id = :s AND name = 'Late Renamed'", 1, s=school)
    await asyncio.sleep(0.5)  # time for a second review, were there one
    assert await scalar(zone_stack, "SELECT count(*) FROM results.reviews WHERE school_id = :s", s=school) == 2
    assert await scalar(zone_stack, "SELECT count(*) FROM results.review_requests WHERE school_id = :s", s=school) == 0


def _year_rows(year: int, code: str) -> list[str]:
    return [row(code, "ELA", year=year), row(code, "MATH", year=year)]


@pytest.mark.parametrize("change, params, problems", [
    (lambda rows: [*rows, rows[0]], {}, [(4, None)]),
    (lambda rows: [rows[0].replace(",40,", ",140,"), rows[1].replace("MATH", "HISTORY")], {},
     [(2, "me_percent"), (3, "subject")]),
    (lambda rows: [rows[0].replace(",495.5,", ",high,"), rows[1].replace(",98,", ",,").replace(",1,1,9", ",x,1,9")], {},
     [(2, "avg_scaled_score")]),
    (lambda rows: rows, {"school_year": "1999-00"}, [(2, "year"), (3, "year")]),
    (lambda rows: [r[:40] for r in rows], {}, [(2, None), (3, None)]),
], ids=["duplicate-row", "out-of-range-and-unknown-subject", "not-a-number", "other-school-year", "short-rows"])
async def test_a_file_with_bad_rows_is_422_listing_them_by_line_and_stores_nothing(zone_stack, change, params, problems):
    year = next(_years)
    content = csv_file(*change(_year_rows(year, school_code())))

    response = await post_mcas(zone_stack, content, **params)

    body = assert_problem(response, 422)
    assert [(e["row"], e["field"]) for e in body["errors"]] == problems, body
    assert await aggregates(zone_stack, f"{year - 1}-{year % 100:02d}") == 0


async def test_the_state_achievement_percentile_is_never_read(zone_stack):
    year = next(_years)
    code = school_code()
    response = await post_mcas(zone_stack, csv_file(row(code, year=year, ach="not even a number")))
    assert response.status_code == 200, response.text
    assert await aggregates(zone_stack, f"{year - 1}-{year % 100:02d}") == 1


@pytest.mark.parametrize("content, params", [
    (b"", {}),
    (b"school,code\nA,1\n", {}),
    (csv_file(row("91234567")).replace(b",2022\n", b",2022,ALL,EL\n").replace(b",year", b",year,grade,student_group"),
     {"subgroup": "high_needs"}),
], ids=["empty", "not-an-mcas-file", "subgroup-other-than-the-files"])
async def test_a_file_that_is_not_what_the_request_says_is_422(zone_stack, content, params):
    before = await scalar(zone_stack, "SELECT count(*) FROM results.school_aggregates")
    assert_problem(await post_mcas(zone_stack, content, **params), 422)
    assert await scalar(zone_stack, "SELECT count(*) FROM results.school_aggregates") == before


async def test_a_file_with_a_student_group_column_is_stored_for_that_subgroup(zone_stack):
    year = next(_years)
    code = school_code()
    content = csv_file(row(code, year=year)).replace(f",{year}\n".encode(), f",{year},ALL,EL\n".encode()).replace(
        b",year", b",year,grade,student_group")
    response = await post_mcas(zone_stack, content)
    assert response.json()["subgroup"] == "el", response.text
    assert await scalar(zone_stack, "SELECT subgroup FROM results.school_aggregates WHERE school_code = :c", c=code) == "el"


@pytest.mark.parametrize("role, status", [("admin", 403), ("district", 403), ("sis", 403), ("school", 403), ("board", 403),
                                          (None, 401)])
async def test_only_the_deployments_state_role_loads_state_files_not_a_zones_admin_or_district(zone_stack, role, status):
    year = next(_years)
    headers = {"Content-Type": "text/csv"}
    if role:
        headers |= zone_stack.auth(role, "z-mcas", ["00000000-0000-0000-0000-000000000001"] if role in ("sis", "school") else None)
    response = await zone_stack.clients["results"].post("/state-aggregates/mcas", content=csv_file(*_year_rows(year, "91111111")),
                                                        headers=headers)
    assert_problem(response, status)
    assert await aggregates(zone_stack, f"{year - 1}-{year % 100:02d}") == 0


async def test_a_body_that_is_not_csv_is_415(zone_stack):
    response = await zone_stack.clients["results"].post("/state-aggregates/mcas", json={"rows": []},
                                                        headers=zone_stack.auth("state", "z-mcas"))
    assert_problem(response, 415)
