"""docs/ingest.md is what an SIS vendor builds against: its examples are posted here as written (with the zone's own
school id in place of the example's, as the page tells the reader to do), and its field tables list every field."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from ezone_results.ingest.schemas import EnrollmentRow, ResultRow

from tests.integration.results.ingest_support import ingest_zone

DOC = Path(__file__).resolve().parents[3] / "docs" / "ingest.md"
EXAMPLE_SCHOOL_ID = "9d3c2a41-6f0e-4b8a-9c57-2e1f0b7d4a68"  # the one the page says to replace


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), flags=re.MULTILINE | re.DOTALL)


def documented_fields(section: str) -> set[str]:
    """The field names in the first table under the `## section` heading."""
    text = DOC.read_text().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))


@pytest.mark.parametrize(("section", "model"), [("Student results", ResultRow), ("Enrollments", EnrollmentRow)])
def test_the_ingest_page_lists_every_field_of_a_row(section, model):
    assert documented_fields(section) == set(model.model_fields)


def test_the_ingest_page_shows_a_curl_for_each_format():
    commands = "\n".join(code_blocks("sh"))
    for path in ("/zones/springfield/results", "/zones/springfield/results/csv"):
        assert f"http://127.0.0.1:8002{path}\n" in commands, path


async def test_the_ingest_pages_examples_are_stored_as_written(zone_stack, zone_id):
    zone = await ingest_zone(zone_stack, zone_id, schools=1)
    [school_id] = zone.schools
    results, enrollments = (block.replace(EXAMPLE_SCHOOL_ID, school_id) for block in code_blocks("json"))
    [csv_file] = [block.replace(EXAMPLE_SCHOOL_ID, school_id) for block in code_blocks("csv")]

    for path, body, content_type in (("/results", results, "application/json"),
                                     ("/enrollments", enrollments, "application/json"),
                                     ("/results/csv", csv_file, "text/csv")):
        response = await zone.request("POST", path, role="sis", content=body.encode(),
                                      headers={"Content-Type": content_type})

        assert response.status_code == 201, (path, response.text)
        rows = len(orjson.loads(body)["rows"]) if content_type == "application/json" else len(body.splitlines()) - 1
        assert (response.json()["inserted"], response.json()["rejected"]) == (rows, 0), (path, response.json())
    assert await zone.stored() == 4
    assert await zone.stored("enrollments") == 2
