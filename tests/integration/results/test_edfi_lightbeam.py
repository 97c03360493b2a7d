"""Acceptance of the Ed-Fi API: lightbeam (https://github.com/edanalytics/lightbeam), the loader districts use,
unmodified, given only the base URL and an OAuth client, loads the Ed-Fi sample district's assessment data (Grand
Bend, Data Standard 5.2) into a zone: validate, send, count, fetch, send again, delete.

lightbeam is run as a command (`.venv/bin/lightbeam`) against the results API served on a real port, and judged by
its exit code and its `--results-file` (send and validate: JSON per resource; count: `Records<TAB>Endpoint` lines;
fetch writes `<resource>.jsonl`). What the sample files become is `tests/edfi_grand_bend.py`; it stops at any
element it has no rule for, so nothing of the sample is left out unsaid. What the test adds to the sample:

* `ACT_ABW`: StudentAssessmentSample.xml's two results are of the assessment `ACT-ABW` (namespace
  `uri://ed-fi.org/Assessment`), which no AssessmentMetadata file describes;
* `studentSchoolAssociations`: no result names its school, so each student is enrolled for the school year at the
  Grand Bend school of the grade it was assessed in (`edfi_grand_bend.student_school_associations`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.edfi_grand_bend import convert, student_school_associations, write_jsonl
from tests.helpers import scalar
from tests.integration.results.edfi_support import footprint, register_client, zone_with_schools
from tests.stack import Stack, served

LIGHTBEAM = Path(sys.executable).with_name("lightbeam")
TIMEOUT_S = 300  # a whole command; lightbeam retries some failures (and loops on a failed fetch page) by itself

# The least Data Standard 5.2 requires of an assessment (identifier, namespace, title, a subject). The sample gives
# its two results a Composite Score and nothing else, so its subject is the Composite, as for `ACT Composite`.
ACT_ABW = {
    "assessmentIdentifier": "ACT-ABW",
    "namespace": "uri://ed-fi.org/Assessment",
    "assessmentTitle": "ACT-ABW",
    "academicSubjects": [{"academicSubjectDescriptor": "uri://ed-fi.org/AcademicSubjectDescriptor#Composite"}],
}

# In the order lightbeam sends them (the API's dependency order).
RESOURCES = ("assessments", "assessmentItems", "objectiveAssessments", "studentSchoolAssociations", "studentAssessments")
SENT = {"assessments": 12, "assessmentItems": 46, "objectiveAssessments": 20, "studentSchoolAssociations": 165,
        "studentAssessments": 531}
SERVER_SET = {"id", "_etag", "_lastModifiedDate", "link"}  # what the API adds to a document it returns


def grand_bend_documents() -> dict[str, list[dict[str, Any]]]:
    conversion = convert()
    documents = {
        **conversion.documents,
        "assessments": [*conversion.documents["assessments"], ACT_ABW],
        "studentSchoolAssociations": student_school_associations(conversion.documents["studentAssessments"]),
    }
    return {resource: documents[resource] for resource in RESOURCES}


class Lightbeam:
    """lightbeam's configuration for one zone's Ed-Fi API, and its commands as subprocesses (not blocking the event
    loop the served API runs in)."""

    def __init__(self, root: Path, base_url: str, client_id: str, client_secret: str) -> None:
        self.root = root
        self.runs = 0
        self.config = self.write_config("lightbeam.yaml", root / "data", base_url, client_id, client_secret)
        # `fetch` writes `<resource>.jsonl` into its data_dir: a directory of its own, not the one sent from.
        self.fetch_config = self.write_config("fetch.yaml", root / "fetched", base_url, client_id, client_secret)

    def write_config(self, name: str, data_dir: Path, base_url: str, client_id: str, client_secret: str) -> Path:
        data_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "state_dir": str(self.root / "state"),
            "data_dir": str(data_dir),
            "namespace": "ed-fi",
            "edfi_api": {"base_url": base_url, "version": 3, "mode": "shared_instance",
                         "client_id": client_id, "client_secret": client_secret},
            "connection": {"pool_size": 4, "timeout": 30, "num_retries": 1, "backoff_factor": 0.1,  # one attempt: a 5xx fails its record
                           "retry_statuses": [429, 500, 501, 503, 504], "verify_ssl": False},
            "validate": {"methods": ["schema", "descriptors", "uniqueness"]},
            "fetch": {"page_size": 100},  # lightbeam's default: the 531 results come back in 6 pages
            "log_level": "INFO",
            "show_stacktrace": True,
        }
        path = self.root / name
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        return path

    async def run(self, command: str, *args: str, config: Path | None = None) -> tuple[int, Path, str]:
        """(exit code, its results file, what it printed)."""
        self.runs += 1
        results = self.root / "results" / f"{self.runs:02d}-{command}.out"
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        process = await asyncio.create_subprocess_exec(
            str(LIGHTBEAM), command, "-c", str(config or self.config), "--results-file", str(results), *args,
            cwd=self.root, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        try:
            output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
        except TimeoutError:
            process.kill()
            output, _ = await process.communicate()
            raise AssertionError(f"lightbeam {command} {' '.join(args)} ran over {TIMEOUT_S} s:\n"
                                 f"{output.decode(errors='replace')[-5000:]}") from None
        return process.returncode, results, output.decode(errors="replace")

    async def report(self, command: str, *args: str) -> dict[str, Any]:
        """`validate` or `send`: its JSON report, once it exited 0."""
        code, results, output = await self.run(command, *args)
        assert code == 0, f"lightbeam {command} exited {code}:\n{output[-5000:]}"
        return json.loads(results.read_text())

    async def count(self, *resources: str) -> dict[str, int | str]:
        code, results, output = await self.run("count", "-s", ",".join(resources))
        assert code == 0, f"lightbeam count exited {code}:\n{output[-5000:]}"
        header, *lines = results.read_text().splitlines()
        assert header == "Records\tEndpoint", header
        counted: dict[str, int | str] = {}
        for line in lines:
            records, endpoint = line.split("\t")
            counted[endpoint] = int(records) if records.isdigit() else records  # an error is reported as text
        return counted

    async def fetch(self, *resources: str) -> dict[str, list[dict[str, Any]]]:
        code, _, output = await self.run("fetch", "-s", ",".join(resources), config=self.fetch_config)
        assert code == 0, f"lightbeam fetch exited {code}:\n{output[-5000:]}"
        fetched = {}
        for resource in resources:
            path = self.root / "fetched" / f"{resource}.jsonl"
            fetched[resource] = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return fetched


def without_server_fields(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: without_server_fields(value) for key, value in node.items() if key not in SERVER_SET}
    if isinstance(node, list):
        return [without_server_fields(item) for item in node]
    return node


def canonical(documents: list[dict[str, Any]]) -> list[str]:
    """The documents as a sorted list of canonical JSON texts: equal lists hold the same documents."""
    return sorted(json.dumps(without_server_fields(document), sort_keys=True) for document in documents)


def per_resource(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert sorted(report["resources"]) == sorted(RESOURCES), report["resources"].keys()
    return {resource: report["resources"][resource] for resource in RESOURCES}


async def edfi_documents(stack: Stack, zone_id: str) -> dict[str, Any]:
    """How many Ed-Fi documents of each sent resource the zone holds, with `footprint`: every row results keeps about
    the zone's data and a digest of them (the documents with their change versions and modification times)."""
    counted = json.loads(await scalar(stack, """
        SELECT coalesce(json_object_agg(resource, n), '{}')::text FROM (
            SELECT resource, count(*) AS n FROM results.edfi_documents WHERE zone_id = :z GROUP BY resource) counts""",
        z=zone_id))
    return {"counts": {resource: counted.get(resource, 0) for resource in RESOURCES}, **await footprint(stack, zone_id)}


async def test_lightbeam_validates_sends_counts_fetches_resends_and_deletes_the_grand_bend_sample(zone_stack, zone_id, tmp_path):
    documents = grand_bend_documents()
    assert {resource: len(docs) for resource, docs in documents.items()} == SENT
    write_jsonl(tmp_path / "data", documents)  # generated for the run, never committed

    schools = await zone_with_schools(zone_stack, zone_id)  # Grand Bend's high, middle and elementary schools
    registered = await register_client(zone_stack, zone_id, list(schools.values()), name="Grand Bend lightbeam")
    assert registered.status_code == 201, registered.text
    client = registered.json()

    async with served(zone_stack, "results") as base:
        lightbeam = Lightbeam(tmp_path, f"{base}/ed-fi", client["client_id"], client["client_secret"])
        before = await edfi_documents(zone_stack, zone_id)
        assert before["counts"] == dict.fromkeys(RESOURCES, 0)

        # validate: every record follows the API's published schema, uses descriptor values the API has, and has
        # an identity of its own (lightbeam reads the schemas, descriptors and dependencies from the API).
        validated = await lightbeam.report("validate")
        assert per_resource(validated) == {resource: {"records_processed": count, "records_skipped": 0, "records_failed": 0}
                                           for resource, count in SENT.items()}, json.dumps(validated["resources"], indent=1)[:5000]

        # send: every record created.
        sent = await lightbeam.report("send")
        assert per_resource(sent) == {resource: {"successes": [{"status_code": 201, "count": count}], "records_processed": count,
                                                 "records_skipped": 0, "records_failed": 0}
                                      for resource, count in SENT.items()}, json.dumps(sent["resources"], indent=1)[:5000]
        stored = await edfi_documents(zone_stack, zone_id)
        assert stored["counts"] == SENT

        # count: what the API says it holds is what was sent.
        assert await lightbeam.count(*RESOURCES) == SENT

        # fetch: every record back, paged, as it was sent.
        fetched = await lightbeam.fetch(*RESOURCES)
        for resource in RESOURCES:
            assert len(fetched[resource]) == SENT[resource], resource
            assert all(document.get("id") for document in fetched[resource]), resource
            assert canonical(fetched[resource]) == canonical(documents[resource]), resource

        # send again, forced past lightbeam's own record of what it sent: every record answered 200, nothing changes.
        again = await lightbeam.report("send", "-f")
        assert per_resource(again) == {resource: {"successes": [{"status_code": 200, "count": count}], "records_processed": count,
                                                  "records_skipped": 0, "records_failed": 0}
                                       for resource, count in SENT.items()}, json.dumps(again["resources"], indent=1)[:5000]
        assert await edfi_documents(zone_stack, zone_id) == stored
        assert await lightbeam.count(*RESOURCES) == SENT

        # delete the student assessments (forced past the hashlog, which skips records it sent; confirmed by
        # `force_delete`, lightbeam's non-interactive setting): lightbeam finds each by its natural key and deletes it.
        code, _, output = await lightbeam.run("delete", "-s", "studentAssessments", "-f", "--set", "force_delete", "true")
        assert code == 0, f"lightbeam delete exited {code}:\n{output[-5000:]}"
        assert await lightbeam.count(*RESOURCES) == {**SENT, "studentAssessments": 0}, output[-5000:]
        assert (await edfi_documents(zone_stack, zone_id))["counts"] == {**SENT, "studentAssessments": 0}
