"""Student results and enrollments posted as JSON batches, on the real stack: upserts, corrections, events per
school, year and subject, all-or-nothing and partial batches, Idempotency-Key, and who may post what."""

from __future__ import annotations

import copy

import orjson
from ezone_schemas import ResultsPosted

from tests.helpers import scalar
from tests.integration.results.ingest_support import YEAR, ingest_zone
from tests.integration.test_registry_api import assert_problem
from tests.results_data import enrollments


async def test_a_batch_is_stored_and_announced_once_per_school_year_and_subject(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id)
    rows = zone.results(0, students=40) + zone.results(1, students=25) + zone.results(0, students=40, subject="ELA")

    response = await zone.post("/results", rows, role="district")
    assert response.status_code == 201, response.text
    batch = response.json()
    assert (batch["rows_received"], batch["inserted"], batch["updated"], batch["unchanged"], batch["rejected"]) == (105, 105, 0, 0, 0)
    assert (batch["status"], batch["source"], batch["changed"], batch["errors"]) == ("completed", "json", True, [])
    assert batch["message"] == "105 inserted, 0 updated, 0 unchanged"
    assert response.headers["Location"] == f"/zones/{zone_id}/batches/{batch['batch_id']}"
    assert await zone.stored() == 105

    events = await zone.published(batch["batch_id"], expected=3)
    assert [(e["school_id"], e["subject"], e["rows_inserted"], e["rows_updated"]) for e in events] == [
        (zone.schools[0], "ELA", 40, 0), (zone.schools[0], "MATH", 40, 0), (zone.schools[1], "MATH", 25, 0)]
    assert all(e["school_year"] == YEAR and e["source"] == "json" and e["zone_id"] == zone_id for e in events)
    assert events[1]["assessment_identifiers"] == ["MCAS-G6-MATH", "MCAS-G7-MATH", "MCAS-G8-MATH"]
    assert {e["_headers"]["ce_type"] for e in events} == {ResultsPosted.ce_type}
    assert await zone.outbox_events(batch["batch_id"]) == 3  # one per school, year and subject, not one per row

    stored = await zone.request("GET", f"/batches/{batch['batch_id']}", role="admin")
    assert stored.status_code == 200, stored.text
    assert stored.json() == batch
    audited = await scalar(zone_stack, "SELECT count(*) FROM results.audit_log WHERE entity_id = :b AND action = 'results.posted'",
                           b=batch["batch_id"])
    assert audited == 1


async def test_sending_the_same_rows_again_changes_nothing_and_says_so(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows = zone.results(students=500)
    assert (await zone.post("/results", rows)).status_code == 201

    shuffled = [dict(row, subgroups=list(reversed(row["subgroups"]))) for row in reversed(rows)]
    again = await zone.post("/results", shuffled)
    assert again.status_code == 201, again.text
    body = again.json()
    assert (body["inserted"], body["updated"], body["unchanged"], body["changed"]) == (0, 0, 500, False)
    assert body["message"] == "nothing changed: all 500 rows were already stored"
    assert await zone.outbox_events(body["batch_id"]) == 0
    assert await zone.stored() == 500


async def test_new_rows_sent_with_stored_ones_are_inserted_and_the_stored_ones_left_alone(zone_stack, zone_id):
    # The stored rows are where a batch's sample (first, middle, last) does not look: its insert of new rows fails on
    # them, and the upsert stores the batch.
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows = zone.results(students=9)
    stored = [rows[1], rows[2], rows[7]]
    assert (await zone.post("/results", stored)).status_code == 201

    response = await zone.post("/results", rows)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["inserted"], body["updated"], body["unchanged"]) == (6, 0, 3)
    [event] = await zone.published(body["batch_id"], expected=1)
    assert (event["rows_inserted"], event["rows_updated"]) == (6, 0)
    assert await zone.stored() == 9


async def test_a_corrected_score_updates_its_row_and_announces_a_new_review(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id)
    math, ela = zone.results(0), zone.results(1, subject="ELA")
    assert (await zone.post("/results", math + ela)).status_code == 201

    corrected = copy.deepcopy(math)
    tested = next(row for row in corrected if "scale_score" in row)
    tested |= {"scale_score": 541, "performance_level": "Exceeding", "proficient": True}
    response = await zone.post("/results", corrected + ela)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["inserted"], body["updated"], body["unchanged"], body["changed"]) == (0, 1, len(math) + len(ela) - 1, True)

    [event] = await zone.published(body["batch_id"], expected=1)
    assert (event["school_id"], event["subject"], event["rows_inserted"], event["rows_updated"]) == (zone.schools[0], "MATH", 0, 1)
    assert event["assessment_identifiers"] == [tested["assessment_identifier"]]
    stored = await scalar(zone_stack, "SELECT scale_score::int FROM results.student_results WHERE zone_id = :z AND student_id = :s "
                                      "AND subject = 'MATH'", z=zone_id, s=tested["student_id"])
    assert stored == 541


def _bad_rows(zone) -> tuple[list[dict], dict[int, set[str | None]]]:
    rows = zone.results(students=12)
    tested = [i for i, row in enumerate(rows) if "scale_score" in row]
    a, b, c, d, e, f, g, h = tested[:8]
    rows[a]["subject"] = "HISTORY"
    rows[b] |= {"scale_score": 600, "growth_percentile": 0}
    rows[c]["school_id"] = "7b0c4a4e-0000-4000-8000-000000000000"
    rows[d] |= {"subgroups": ["el", "martians"], "grade": "13"}
    rows[e]["not_tested_reason"] = "absent"
    rows[f]["administration_date"] = "2025-08-15"
    rows[h]["grade"] = "4"  # a middle school (6-8)
    rows.append(dict(rows[g]))  # the same natural key twice
    return rows, {a: {"subject"}, b: {"scale_score", "growth_percentile"}, c: {"school_id"}, d: {"subgroups.1", "grade"},
                  e: {"not_tested_reason"}, f: {"administration_date"}, h: {"grade"}, len(rows) - 1: {None}}


async def test_invalid_rows_are_all_listed_at_once_and_nothing_is_stored(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows, expected = _bad_rows(zone)

    body = assert_problem(await zone.post("/results", rows, role="district"), 422)
    assert body["type"] == "https://ezone.dev/problems/validation"
    listed: dict[int, set[str | None]] = {}
    for error in body["errors"]:
        assert error["reason"], error
        listed.setdefault(error["row"], set()).add(error["field"])
    assert listed == expected
    assert "partial=true" in body["detail"]
    assert (await zone.stored(), await zone.batches(), await zone.outbox_events()) == (0, 0, 0)


async def test_partial_stores_the_valid_rows_and_lists_the_others(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows, expected = _bad_rows(zone)

    response = await zone.post("/results", rows, role="district", partial=True)
    assert response.status_code == 201, response.text
    body = response.json()
    valid = len(rows) - len(expected)
    assert (body["rows_received"], body["inserted"], body["rejected"]) == (len(rows), valid, len(expected))
    assert {error["row"] for error in body["errors"]} == set(expected)
    assert body["message"] == f"{valid} inserted, 0 updated, 0 unchanged; {len(expected)} rows rejected"
    assert await zone.stored() == valid
    [event] = await zone.published(body["batch_id"], expected=1)
    assert event["rows_inserted"] == valid


async def test_partial_with_no_valid_row_is_422_and_stores_nothing(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows, expected = _bad_rows(zone)
    # Each invalid on its own (the last row of _bad_rows repeats an earlier, valid one's key: left out).
    invalid = [row for index, row in enumerate(rows) if expected.get(index, {None}) != {None}]

    body = assert_problem(await zone.post("/results", invalid, role="district", partial=True), 422)

    assert {error["row"] for error in body["errors"]} == set(range(len(invalid)))
    assert "partial=true" not in body["detail"]
    assert (await zone.stored(), await zone.batches(), await zone.outbox_events()) == (0, 0, 0)


async def test_an_idempotency_key_answers_a_resend_with_the_first_batch_and_refuses_another_body(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows = zone.results(students=20)

    first = await zone.post("/results", rows, key="sis-upload-0001")
    assert first.status_code == 201, first.text
    again = await zone.post("/results", rows, key="sis-upload-0001")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]

    other = assert_problem(await zone.post("/results", rows[:5], key="sis-upload-0001"), 422)
    assert other["type"] == "https://ezone.dev/problems/idempotency-key-reused"
    assert (await zone.batches(), await zone.stored(), await zone.outbox_events()) == (1, 20, 1)


async def test_a_batch_holds_one_to_ten_thousand_rows(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    too_many = zone.results(students=10_001)
    body = assert_problem(await zone.post("/results", too_many, role="admin"), 413)
    assert "CSV" in body["detail"]
    assert_problem(await zone.post("/results", []), 422)
    assert (await zone.stored(), await zone.batches()) == (0, 0)

    most = await zone.post("/results", too_many[:10_000], role="admin")
    assert most.status_code == 201, most.text
    assert most.json()["inserted"] == await zone.stored() == 10_000


async def test_an_sis_token_for_one_school_cannot_post_or_overwrite_another_schools_results(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id)
    school_a, school_b = zone.schools
    rows = zone.results(0, students=6) + zone.results(1, students=3)

    for partial in (False, True):
        body = assert_problem(await zone.post("/results", rows, schools=[school_a], partial=partial), 403)
        assert body["rows"] == [6, 7, 8]
        assert "6, 7, 8" in body["detail"]
    assert (await zone.stored(), await zone.batches(), await zone.outbox_events()) == (0, 0, 0)

    # School B's own results, then school A's token sends one of them as school A's: it would move B's result.
    b_rows = zone.results(1, students=3)
    assert (await zone.post("/results", b_rows, schools=[school_b])).status_code == 201
    moved = [dict(b_rows[0], school_id=school_a)]
    body = assert_problem(await zone.post("/results", moved, schools=[school_a]), 403)
    assert body["rows"] == [0]
    held = await scalar(zone_stack, "SELECT count(*) FROM results.student_results WHERE zone_id = :z AND school_id = :s",
                        z=zone_id, s=school_b)
    assert held == 3

    mine = await zone.post("/results", zone.results(0, students=6), schools=[school_a])
    assert mine.status_code == 201, mine.text
    # A tested student's score (school ids are new each run, and so is which generated students were not tested).
    tested = next(row for row in zone.results(0, students=6) if row.get("scale_score") not in (None, 441))
    corrected = [dict(tested, scale_score=441, performance_level="Not Meeting", proficient=False)]
    again = await zone.post("/results", corrected, schools=[school_a])
    assert again.status_code == 201, again.text
    assert (again.json()["updated"], await zone.stored()) == (1, 9)


async def test_a_state_school_code_as_school_id_is_422_saying_to_send_the_schools_id(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    code = await scalar(zone_stack, "SELECT code FROM results.schools WHERE id = :id", id=zone.schools[0])
    rows = [{**row, "school_id": code} for row in zone.results(students=3)]

    for partial in (False, True):
        body = assert_problem(await zone.post("/results", rows, partial=partial), 422)

        assert [(error["row"], error["field"]) for error in body["errors"]] == [(0, "school_id"), (1, "school_id"),
                                                                               (2, "school_id")]
        reason = body["errors"][0]["reason"]
        assert "UUID" in reason and "state code" in reason and "GET /zones/{zone_id}/schools" in reason, reason
    assert (await zone.stored(), await zone.batches(), await zone.outbox_events()) == (0, 0, 0)


async def test_a_row_corrected_into_another_school_announces_both_schools(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id)
    school_a, school_b = zone.schools
    b_rows = zone.results(1, students=3)
    assert (await zone.post("/results", b_rows, role="district")).status_code == 201

    response = await zone.post("/results", [dict(b_rows[0], school_id=school_a)], role="district")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["inserted"], body["updated"], body["unchanged"]) == (0, 1, 0)
    events = await zone.published(body["batch_id"], expected=2)
    assert [(e["school_id"], e["subject"], e["rows_inserted"], e["rows_updated"]) for e in events] == [
        (school_a, "MATH", 0, 1), (school_b, "MATH", 0, 1)]
    held = await scalar(zone_stack, "SELECT count(*) FROM results.student_results WHERE zone_id = :z AND school_id = :s",
                        z=zone_id, s=school_b)
    assert held == 2


async def test_a_body_that_is_not_a_json_batch_is_refused(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows = zone.results(students=2)
    as_text = await zone.request("POST", "/results", content=orjson.dumps({"rows": rows}), headers={"Content-Type": "text/plain"})
    assert "application/json" in assert_problem(as_text, 415)["detail"]
    cut = await zone.request("POST", "/results", content=orjson.dumps({"rows": rows})[:-10],
                             headers={"Content-Type": "application/json"})
    assert assert_problem(cut, 422)["errors"][0]["code"] == "json_invalid"
    for body in ({"rows": rows, "partial": True}, {"rows": "all of them"}, [rows]):
        assert_problem(await zone.request("POST", "/results", json=body), 422)
    assert (await zone.stored(), await zone.batches()) == (0, 0)


async def test_other_zones_and_roles_that_do_not_post_results_are_refused(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows = zone.results(students=3)
    other_zone = await zone_stack.clients["results"].post(f"/zones/{zone_id}/results", json={"rows": rows},
                                                          headers=zone_stack.auth("admin", "some-other-zone"))
    assert_problem(other_zone, 404)
    for role in ("board", "school"):
        assert_problem(await zone.post("/results", rows, role=role), 403)
    assert (await zone.stored(), await zone.batches()) == (0, 0)


async def test_an_sis_sees_only_its_own_batches(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    posted = await zone.request("POST", "/results", json={"rows": zone.results(students=3)}, headers=zone.auth(subject="vendor-a"))
    batch_id = posted.json()["batch_id"]

    own = await zone.request("GET", f"/batches/{batch_id}", headers=zone.auth(subject="vendor-a"))
    assert own.status_code == 200, own.text
    assert_problem(await zone.request("GET", f"/batches/{batch_id}", headers=zone.auth(subject="vendor-b")), 403)
    listed = await zone.request("GET", "/batches", headers=zone.auth(subject="vendor-b"))
    assert listed.status_code == 200 and listed.json() == []
    assert_problem(await zone.request("GET", "/batches/6f1c1b8e-0000-4000-8000-000000000000", role="admin"), 404)


async def test_enrollments_are_upserted_and_a_change_re_reviews_the_subjects_with_results(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id)
    assert (await zone.post("/results", zone.results(0, students=30) + zone.results(0, students=30, subject="ELA"))).status_code == 201
    rows = enrollments(zone.schools, students_per_school=30, school_year=YEAR)

    response = await zone.post("/enrollments", rows)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["inserted"], body["updated"], body["unchanged"]) == (60, 0, 0)
    assert await zone.stored("enrollments") == 60
    # School 0 has MATH and ELA results: both are reviewed again. School 1 has none: nothing to review yet.
    events = await zone.published(body["batch_id"], expected=2)
    assert [(e["school_id"], e["subject"], e["assessment_identifiers"], e["rows_inserted"]) for e in events] == [
        (zone.schools[0], "ELA", [], 0), (zone.schools[0], "MATH", [], 0)]

    again = (await zone.post("/enrollments", rows)).json()
    assert (again["unchanged"], again["changed"]) == (60, False)
    assert await zone.outbox_events(again["batch_id"]) == 0

    rows[0]["exit_date"] = "2025-02-14"
    invalid = copy.deepcopy(rows[1]) | {"entry_date": "2026-09-01"}
    response = await zone.post("/enrollments", [rows[0], invalid], partial=True)
    body = response.json()
    assert (body["updated"], body["rejected"], body["errors"][0]["field"]) == (1, 1, "entry_date")
