"""Student results uploaded as a streamed CSV file, on the real stack: bad rows listed and the rest stored,
progress while it uploads, school-bound tokens, unreadable files, bounded memory, and `ezone import csv`."""

from __future__ import annotations

import asyncio
import csv
import json
import gc
import io
import shutil
from collections.abc import AsyncIterator, Iterable

import psutil
import pytest
import uvicorn

from ezone.stack import free_port
from tests.helpers import scalar
from tests.integration.results.ingest_support import YEAR, IngestZone, ingest_zone
from tests.integration.test_cli import ezone
from tests.integration.test_registry_api import assert_problem
from tests.results_data import NAMESPACE, iter_student_results

COLUMNS = ("student_id", "school_id", "assessment_namespace", "assessment_identifier", "subject", "grade", "school_year",
           "administration_date", "scale_score", "performance_level", "proficient", "growth_percentile",
           "not_tested_reason", "subgroups")


def csv_line(row: dict) -> str:
    """A row as a CSV line (no value of the generated rows needs quoting)."""
    cells = []
    for column in COLUMNS:
        value = row.get(column)
        cells.append("" if value is None else ";".join(value) if column == "subgroups" else str(value).lower()
                     if isinstance(value, bool) else str(value))
    return ",".join(cells) + "\n"


def csv_text(rows: Iterable[dict]) -> str:
    return ",".join(COLUMNS) + "\n" + "".join(map(csv_line, rows))


async def upload(zone: IngestZone, content: object, *, role: str = "sis", schools: list[str] | None = None,
                 content_type: str = "text/csv"):
    return await zone.request("POST", "/results/csv", role=role, schools=schools, content=content,
                              headers={"Content-Type": content_type})


async def test_a_csv_file_stores_its_valid_rows_and_lists_the_bad_ones_by_line(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id)
    rows = list(iter_student_results(zone.schools, students_per_school=30, school_year=YEAR, subject="ELA"))
    lines = csv_text(rows).splitlines(keepends=True)
    lines[3] = lines[3].replace(",ELA,", ",HISTORY,")  # line 4
    lines[10] = lines[10].replace(f",{YEAR},", ",2024-26,")  # line 11
    lines.insert(20, "\n")  # a blank line is skipped (line 21)
    lines.append(lines[5])  # line 63 repeats line 6
    # Quoted cells (a comma inside, a doubled quote), Windows line ends, a byte order mark: all read as written.
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(
        ["S-quoted-1", zone.schools[1], "uri://doe.mass.edu/mcas", "MCAS-G7-ELA", "ELA", "7", YEAR, "2025-03-25", "501",
         'Meeting "Expectations", per state', "true", "", "", "el;low_income"])
    lines.append(out.getvalue())
    body = ("\ufeff" + "".join(lines)).encode()

    response = await upload(zone, body, role="admin")
    assert response.status_code == 201, response.text
    batch = response.json()
    assert (batch["source"], batch["status"], batch["rows_received"]) == ("csv", "completed", 62)
    assert (batch["inserted"], batch["rejected"]) == (59, 3)
    assert [(e["row"], e["field"]) for e in batch["errors"]] == [(4, "subject"), (11, "school_year"), (63, None)]
    assert batch["errors"][2]["reason"] == "the same natural key as line 6"
    assert await zone.stored() == 59
    level = await scalar(zone_stack, "SELECT performance_level FROM results.student_results WHERE student_id = 'S-quoted-1'")
    assert level == 'Meeting "Expectations", per state'

    events = await zone.published(batch["batch_id"], expected=2)
    assert [(e["school_id"], e["subject"], e["source"], e["rows_inserted"]) for e in events] == [
        (zone.schools[0], "ELA", "csv", 28), (zone.schools[1], "ELA", "csv", 31)]
    status = await zone.request("GET", f"/batches/{batch['batch_id']}", role="admin")
    assert status.json() == batch

    again = (await upload(zone, body, role="admin")).json()
    assert (again["unchanged"], again["rejected"], again["changed"]) == (59, 3, False)
    assert again["message"] == "nothing changed: 59 rows were already stored; 3 rows rejected"
    assert await zone.outbox_events(again["batch_id"]) == 0


async def test_the_batch_shows_its_progress_while_the_file_is_uploading(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows = list(iter_student_results(zone.schools, students_per_school=12_000, school_year=YEAR, subject="MATH"))
    seen: list[dict] = []

    async def body() -> AsyncIterator[bytes]:
        yield csv_text([]).encode()
        for start in range(0, len(rows), 500):
            yield "".join(map(csv_line, rows[start:start + 500])).encode()
            if start == 11_000 - 500:  # 11,000 rows sent: two chunks of 5,000 are staged
                listed = await zone.request("GET", "/batches", params={"status": "receiving"})
                seen.extend(listed.json())

    response = await upload(zone, body())
    assert response.status_code == 201, response.text
    [during] = seen
    assert during["batch_id"] == response.json()["batch_id"]
    assert (during["status"], during["rows_received"], during["inserted"]) == ("receiving", 10_000, 0)
    assert during["message"] == "receiving: 10,000 rows so far"
    assert response.json()["inserted"] == 12_000


async def test_an_sis_token_stores_nothing_for_a_school_it_does_not_act_for(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id)
    school_a, school_b = zone.schools
    rows = list(iter_student_results(zone.schools, students_per_school=10, school_year=YEAR, subject="MATH"))

    response = await upload(zone, csv_text(rows).encode(), schools=[school_a])
    assert response.status_code == 201, response.text
    batch = response.json()
    assert (batch["inserted"], batch["rejected"]) == (10, 10)
    assert {(e["row"], e["field"]) for e in batch["errors"]} == {(line, "school_id") for line in range(12, 22)}
    assert all(school_b in e["reason"] for e in batch["errors"])
    stored_b = await scalar(zone_stack, "SELECT count(*) FROM results.student_results WHERE school_id = :s", s=school_b)
    assert stored_b == 0
    [event] = await zone.published(batch["batch_id"], expected=1)
    assert event["school_id"] == school_a

    # School B's results stored by a district, then sent again under school A's id by A's token: not moved.
    b_rows = [row for row in rows if row["school_id"] == school_b]
    assert (await upload(zone, csv_text(b_rows).encode(), role="district")).status_code == 201
    moved = (await upload(zone, csv_text([dict(b_rows[0], school_id=school_a)]).encode(), schools=[school_a])).json()
    assert (moved["inserted"], moved["updated"], moved["rejected"]) == (0, 0, 1)
    assert "stored for school" in moved["errors"][0]["reason"]
    stored_b = await scalar(zone_stack, "SELECT count(*) FROM results.student_results WHERE school_id = :s", s=school_b)
    assert stored_b == 10


async def test_a_file_that_cannot_be_read_stores_nothing_and_says_why(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows = list(iter_student_results(zone.schools, students_per_school=8_000, school_year=YEAR, subject="MATH"))

    header = assert_problem(await upload(zone, b"student_id,school,score\nS-1,x,500\n"), 422)
    assert {e["reason"] for e in header["errors"]} >= {"unknown column 'school'", "missing column 'school_id'"}
    assert_problem(await upload(zone, b""), 422)
    assert_problem(await upload(zone, csv_text(rows[:3]).encode(), content_type="application/json"), 415)
    assert await zone.batches() == 0

    # Not UTF-8 after 6,000 rows: the first chunk was already staged, and still nothing is stored.
    broken = csv_text(rows[:6_000]).encode() + b"S-9,\xff\xfe\n" + csv_text(rows[6_000:]).encode()
    body = assert_problem(await upload(zone, broken), 422)
    assert "not UTF-8" in body["detail"]
    status = (await zone.request("GET", f"/batches/{body['batch_id']}")).json()
    assert (status["status"], status["rows_received"]) == ("failed", 6_000)
    assert status["message"].startswith("failed after 6,000 rows: the file is not UTF-8")
    assert (await zone.stored(), await zone.outbox_events()) == (0, 0)


async def test_an_upload_cut_off_halfway_stores_nothing_and_its_batch_says_it_failed(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows = list(iter_student_results(zone.schools, students_per_school=7_000, school_year=YEAR, subject="MATH"))

    async def body() -> AsyncIterator[bytes]:
        yield csv_text(rows[:6_000]).encode()
        raise ConnectionResetError("the SIS went away")

    with pytest.raises(ConnectionResetError):
        await upload(zone, body())
    [batch] = (await zone.request("GET", "/batches")).json()
    assert (batch["status"], batch["rows_received"]) == ("failed", 6_000)
    assert batch["message"] == "failed after 6,000 rows: the upload stopped (ConnectionResetError); nothing was stored"
    assert (await zone.stored(), await zone.outbox_events()) == (0, 0)


async def test_a_streamed_file_of_200_thousand_rows_keeps_memory_flat(zone_stack, zone_id):
    """A guard, not a benchmark: the file is generated as it is sent and never held whole, by the test or the service."""
    zone = await ingest_zone(zone_stack, zone_id)
    students = 100_000

    async def body() -> AsyncIterator[bytes]:
        yield csv_text([]).encode()
        for number, school in enumerate(zone.schools):
            for start in range(0, students, 1_000):
                yield "".join(_cheap_line(number, school, index) for index in range(start, start + 1_000)).encode()

    gc.collect()
    before = psutil.Process().memory_info().rss
    response = await upload(zone, body(), role="admin")
    gc.collect()
    grown = psutil.Process().memory_info().rss - before
    assert response.status_code == 201, response.text
    assert response.json()["inserted"] == 2 * students
    assert await zone.stored() == 2 * students
    assert grown < 100 * 2**20, f"memory grew by {grown / 2**20:.0f} MiB"


def _cheap_line(school_number: int, school_id: str, index: int) -> str:
    """A valid row from a template (student, grade and score varying): as fast as a test can make one."""
    grade, score = 6 + index % 3, 440 + index * 7919 % 121
    level, proficient = ("Meeting", "true") if score >= 500 else ("Not Meeting", "false")
    return (f"S{school_number}-{index:07d},{school_id},{NAMESPACE},MCAS-G{grade}-ELA,ELA,{grade},{YEAR},2025-03-25,{score},"
            f"{level},{proficient},{1 + index % 99},,low_income;hispanic_latino\n")


async def test_ezone_import_csv_streams_a_file_and_prints_the_batch_summary(zone_stack, zone_id, tmp_path):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    rows = list(iter_student_results(zone.schools, students_per_school=300, school_year=YEAR, subject="MATH"))
    path = tmp_path / "results.csv"
    path.write_text(csv_text(rows) + csv_line(dict(rows[0], student_id="S-bad", grade="13")))
    # The dev keys where `ezone up` keeps them, so the default token is one the services trust.
    shutil.copytree(zone_stack.key_dir, tmp_path / "keys")

    port = free_port()
    # The results app of the stack, served over real HTTP for the command line.
    server = uvicorn.Server(uvicorn.Config(zone_stack.clients["results"]._transport.app, host="127.0.0.1", port=port,
                                           lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        # Without --url: the results service the running zone recorded (its ports need not be the defaults).
        (tmp_path / "state.json").write_text(json.dumps({"services": {"results": url}}))
        code, output = await ezone(zone_stack, tmp_path, "import", "csv", str(path), "--zone", zone_id)
        assert code == 1, output  # a row was rejected: a script can tell a partial load
        assert "300 inserted, 0 updated, 0 unchanged; 1 row rejected" in output
        assert "line 302: grade: grade must be K or 1 to 12" in output
        assert "1 row(s) rejected (listed above); the others are stored" in output

        code, output = await ezone(zone_stack, tmp_path, "import", "csv", str(path), "--zone", "not-my-zone", "--url", url,
                                   "--token", zone_stack.token("admin", zone_id))
        assert code == 1
        assert "404" in output and "Check the zone id" in output

        code, output = await ezone(zone_stack, tmp_path, "import", "csv", str(path), "--zone", zone_id, "--url",
                                   f"http://127.0.0.1:{free_port()}")
        assert code == 1
        assert "cannot reach the results service" in output
    finally:
        server.should_exit = True
        await serving
    assert await zone.stored() == 300
