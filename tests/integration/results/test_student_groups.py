"""Student groups as data: the deployment's vocabulary (`/student-groups`), state files of any group it names, result
rows of any of its codes, and reviews that report the groups the zone's accountability uses (v2 events with every
code, v1 with the groups v1 can name)."""

from __future__ import annotations

import shutil
import uuid

import pytest
from ezone_schemas import ReviewCompleted, ReviewCompletedV2
from sqlalchemy import text

from tests.helpers import scalar
from tests.integration.results.ingest_support import ingest_zone
from tests.integration.results.test_ingest_csv import csv_text, upload
from tests.integration.results.review_support import cohort, fresh_years, review_zone
from tests.integration.results.test_mcas_import import _years, ezone_import, results_replica
from tests.integration.test_registry_api import assert_problem
from tests.stack import Stack

from ezone.demo import default_data_dir

EL_2022 = default_data_dir() / "mcas" / "grades_3-8_EL_2022.csv"
# ESSA's groups (all students, economically disadvantaged, the major racial and ethnic groups, students with
# disabilities, English learners) and every group DESE publishes in its grades 3-8 files, by a label DESE writes.
ESSA = {"all_students", "econ_disadvantaged", "low_income", "afr_american_black", "amer_ind_alaska_native", "asian",
        "hispanic_latino", "multi_race", "nat_haw_pacific_isl", "white", "swd", "el"}
DESE_LABELS = {"female": "female", "male": "male", "title i": "title_i", "non-disabled": "non_disabled",
               "ever el": "ever_el", "former el": "former_el", "high needs": "high_needs", "el": "el",
               "students with disabilities": "swd", "low-income": "low_income", "afr.american/black": "afr_american_black",
               "hispanic/latino": "hispanic_latino", "multi-race, non-hispanic/latino": "multi_race"}
DEFAULT_ACCOUNTABILITY = {"all_students", "high_needs", "el", "swd", "low_income", "afr_american_black",
                          "hispanic_latino"}


def relabelled(label: str) -> tuple[str, str]:
    """DESE's 2022 English learners file as another group's file (the same layout, another `student_group`), of a
    year no other test loads (the state's figures are every zone's), and that school year."""
    year = next(_years)
    return (EL_2022.read_text(encoding="utf-8-sig").replace(",2022,ALL,EL\n", f",{year},ALL,{label}\n"),
            f"{year - 1}-{year % 100:02d}")


async def groups(stack: Stack, role: str = "board") -> dict[str, dict]:
    response = await stack.clients["results"].get("/student-groups", headers=stack.auth(role, "z-groups"))
    assert response.status_code == 200, response.text
    return {group["code"]: group for group in response.json()}


async def add_group(stack: Stack, body: dict, role: str = "state", zone: str = "z-groups"):  # noqa: ANN201
    return await stack.clients["results"].post("/student-groups", json=body, headers=stack.auth(role, zone))


def new_group() -> tuple[str, str]:
    """A code and a label no other test (or earlier run on the same database) uses."""
    tag = uuid.uuid4().hex[:8]
    return f"foster_care_{tag}", f"Foster Care {tag}"


async def test_every_deployment_starts_with_the_essa_groups_and_every_group_dese_publishes(zone_stack):
    vocabulary = await groups(zone_stack)

    assert ESSA <= set(vocabulary)
    labels = {label: code for code, group in vocabulary.items() for label in group["labels"]}
    assert {label: labels.get(label) for label in DESE_LABELS} == DESE_LABELS
    seeded = {code for code, group in vocabulary.items() if group["added_by"] is None}
    assert {code for code in seeded if vocabulary[code]["accountability"]} == DEFAULT_ACCOUNTABILITY


async def test_a_dese_file_of_a_group_the_vocabulary_names_loads_whatever_its_label(zone_stack):
    content, school_year = relabelled("Female")
    response = await zone_stack.clients["results"].post(
        "/state-aggregates/mcas", content=content.encode(),
        headers={**zone_stack.auth("state", "z-groups"), "Content-Type": "text/csv"})

    assert response.status_code == 200, response.text
    assert (response.json()["subgroup"], response.json()["inserted"]) == ("female", 1811)
    assert await scalar(zone_stack, "SELECT count(*) FROM results.school_aggregates WHERE subgroup = 'female' "
                                    "AND school_year = :y", y=school_year) == 1811


async def test_a_file_with_a_new_label_is_refused_saying_how_to_add_it_and_loads_once_the_state_adds_it(
    zone_stack, tmp_path, key_dir
):
    code, label = new_group()
    state_file = tmp_path / f"grades_3-8_{code}.csv"
    state_file.write_text(relabelled(label)[0])
    shutil.copytree(key_dir, tmp_path / "keys")  # the CLI's dev token, signed by the key the stack trusts

    async with results_replica(zone_stack) as url:
        refused, said = await ezone_import(tmp_path, url, str(state_file), "--zone", "z-groups")
        said = " ".join(said.split())  # as the terminal wrapped it
        assert refused == 1, said
        assert f"'{label}' names no student group of this deployment" in said, said
        assert "POST /student-groups (role state)" in said and f'"labels":["{label.lower()}"]' in said, said
        assert await scalar(zone_stack, "SELECT count(*) FROM results.school_aggregates WHERE subgroup = :c", c=code) == 0

        added = await add_group(zone_stack, {"code": code, "name": "Students in foster care", "labels": [label]})
        assert added.status_code == 201, added.text
        loaded, said = await ezone_import(tmp_path, url, str(state_file), "--zone", "z-groups")

    assert loaded == 0, said
    assert code in said and "1,811" in said, said
    assert await scalar(zone_stack, "SELECT count(*) FROM results.school_aggregates WHERE subgroup = :c", c=code) == 1811


async def test_adding_a_group_twice_adds_it_once_and_another_group_under_its_code_or_labels_is_a_conflict(zone_stack):
    code, label = new_group()
    body = {"code": code, "name": "Students in foster care", "labels": [label, f"  {label.upper()} "],
            "accountability": False}

    first, again = await add_group(zone_stack, body), await add_group(zone_stack, body)

    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    assert first.json() == again.json() == {"code": code, "name": "Students in foster care", "labels": [label.lower()],
                                            "accountability": False, "added_by": first.json()["added_by"]}
    assert (await groups(zone_stack))[code]["labels"] == [label.lower()]
    assert await scalar(zone_stack, "SELECT count(*) FROM results.audit_log WHERE action = 'student_group.added' "
                                    "AND entity_id = :c", c=code) == 1
    renamed = await add_group(zone_stack, {**body, "name": "Another name"})
    assert code in assert_problem(renamed, 409)["detail"]
    other, _ = new_group()
    taken = await add_group(zone_stack, {"code": other, "name": "Girls", "labels": ["Female"]})
    assert "'female' names 'female'" in assert_problem(taken, 409)["detail"]
    assert other not in await groups(zone_stack)


async def test_a_label_is_added_to_a_group_once_and_never_to_two_groups(zone_stack):
    code, label = new_group()
    assert (await add_group(zone_stack, {"code": code, "name": "Foster care"})).status_code == 201
    results, state = zone_stack.clients["results"], zone_stack.auth("state", "z-groups")

    first = await results.post(f"/student-groups/{code}/labels", json={"label": label}, headers=state)
    again = await results.post(f"/student-groups/{code}/labels", json={"label": label.upper()}, headers=state)

    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    assert again.json()["labels"] == [label.lower()]
    assert_problem(await results.post(f"/student-groups/{code}/labels", json={"label": "male"}, headers=state), 409)
    assert_problem(await results.post("/student-groups/no_such_group/labels", json={"label": "x"}, headers=state), 404)
    assert await scalar(zone_stack, "SELECT count(*) FROM results.audit_log WHERE action = 'student_group.label_added' "
                                    "AND entity_id = :c", c=code) == 1


@pytest.mark.parametrize("body", [
    {"code": "Foster Care", "name": "Foster care"},
    {"code": "foster_care_x"},
    {"code": "foster_care_x", "name": ""},
    {"code": "foster_care_x", "name": "Foster care", "labels": ["  "]},
    {"code": "foster_care_x", "name": "Foster care", "colour": "blue"},
], ids=["not-a-code", "no-name", "empty-name", "blank-label", "unknown-field"])
async def test_a_group_that_is_not_valid_is_422_and_adds_nothing(zone_stack, body):
    assert_problem(await add_group(zone_stack, body), 422)
    assert "foster_care_x" not in await groups(zone_stack)


@pytest.mark.parametrize("role, status", [("admin", 403), ("district", 403), ("board", 403), ("sis", 403), (None, 401)])
async def test_only_the_deployments_state_role_adds_groups_not_a_zones_staff(zone_stack, role, status):
    code, _ = new_group()
    headers = {}
    if role:
        headers = zone_stack.auth(role, "z-groups", ["00000000-0000-0000-0000-000000000001"] if role == "sis" else None)
    response = await zone_stack.clients["results"].post("/student-groups", json={"code": code, "name": "x"},
                                                        headers=headers)
    assert_problem(response, status)
    assert_problem(await zone_stack.clients["results"].post(f"/student-groups/{code}/labels", json={"label": "x"},
                                                            headers=headers), status)
    assert code not in await groups(zone_stack)


async def test_result_rows_may_name_any_group_of_the_vocabulary_and_no_other(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    code, _ = new_group()
    rows = zone.results(students=4)
    rows[0]["subgroups"] = ["female", "title_i"]
    rows[1]["subgroups"] = ["el", code]

    refused = await zone.post("/results", rows)
    refused_file = await upload(zone, csv_text(rows[:2]))

    body = assert_problem(refused, 422)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(1, "subgroups.1")], body
    assert f"'{code}' is not a student group of this deployment" in body["errors"][0]["reason"]
    assert refused_file.status_code == 201, refused_file.text  # a file stores its valid rows, lists the others
    assert (refused_file.json()["inserted"], [e["row"] for e in refused_file.json()["errors"]]) == (1, [3])
    assert (await add_group(zone_stack, {"code": code, "name": "Foster care"})).status_code == 201
    stored = await zone.post("/results", rows)
    assert stored.status_code == 201, stored.text
    assert await scalar(zone_stack, "SELECT subgroups FROM results.student_results WHERE zone_id = :z AND student_id = :s",
                        z=zone_id, s=rows[1]["student_id"]) == sorted(["el", code])
    assert (await upload(zone, csv_text(rows[1:2]))).json()["errors"] == []


async def test_a_review_reports_the_groups_the_zones_policy_uses_and_v1_events_only_those_v1_names(zone_stack, zone_id):
    zone = await review_zone(zone_stack, zone_id)
    school, (_, year) = zone.schools[0], fresh_years()
    await zone.results(school, year, "MATH", cohort("f", [495.0] * 6 + [505.0] * 6, subgroups=("female",))
                       + cohort("m", [490.0 + 2 * i for i in range(12)], subgroups=("male", "high_needs")))

    first = await zone.review_of(school, year, "MATH")
    assert "female" not in [m["subgroup"] for m in first["metrics"]]  # not a group the zone's accountability uses
    await zone.change_policy(subgroups=["all_students", "female", "high_needs"])
    second = await zone.wait_for_review(school, year, "MATH", version=2)

    assert [(m["subgroup"], m["n_tested"]) for m in second["metrics"]] == [
        ("all_students", 24), ("female", 12), ("high_needs", 12)]
    assert [(m["subgroup"], m["proficiency_rate"]) for m in second["metrics"]][1] == ("female", 50.0)
    events = {ce_type: payload for ce_type, payload in await _review_events(zone_stack, school, year, version=2)}
    assert [m["subgroup"] for m in events[ReviewCompletedV2.ce_type]["metrics"]] == ["all_students", "female",
                                                                                     "high_needs"]
    assert [m["subgroup"] for m in events[ReviewCompleted.ce_type]["metrics"]] == ["all_students", "high_needs"]
    assert ReviewCompleted.model_validate(events[ReviewCompleted.ce_type]).status == second["status"]


async def _review_events(stack: Stack, school: str, year: str, version: int) -> list[tuple[str, dict]]:
    async with stack.kits["results"].engine.connect() as conn:
        rows = await conn.execute(text(
            "SELECT ce_type, payload FROM results.outbox WHERE key = :k AND payload->>'school_year' = :y "
            "AND (payload->>'version')::int = :v AND ce_type LIKE 'org.ezone.results.review.completed.%'"),
            {"k": school, "y": year, "v": version})
        return [(row.ce_type, row.payload) for row in rows]
