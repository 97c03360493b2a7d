"""What happens when the broker or a service process goes away: nothing is lost."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from ezone_kit.bus import ensure_topics
from ezone_kit.devkeys import mint_token
from ezone_kit.relay import relay_application_name

from ezone.services import all_topics
from ezone.stack import EmbeddedBroker, EmbeddedPostgres, free_port, wait_for
from tests.helpers import duggan, scalar, wait_for_count
from tests.stack import Stack, new_database, running_stack

pytestmark = pytest.mark.slow

SCHOOLS = [{**duggan(), "name": f"School {i}"} for i in range(5)]


@pytest.fixture
async def own_broker(tmp_path) -> AsyncIterator[EmbeddedBroker]:
    instance = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    instance.start()
    yield instance
    instance.stop()


async def test_broker_down_during_posts_every_post_succeeds_and_every_event_arrives_after_recovery(
    postgres, own_broker, key_dir, zone_id
):
    database_url = await new_database(postgres)
    async with running_stack(database_url, own_broker.bootstrap_servers, key_dir) as stack:
        plans = stack.clients["plans"]
        admin = stack.auth("admin", zone_id)
        own_broker.stop()

        response = await plans.post("/zones", json={"id": zone_id, "name": "Z", "district": "D"}, headers=admin)
        assert response.status_code == 201, response.text
        for school in SCHOOLS:
            response = await plans.post(f"/zones/{zone_id}/schools", json=school, headers=admin)
            assert response.status_code == 201, response.text
        # zone.registered and its policy version 1, then one school.registered per school
        assert await scalar(stack, "SELECT count(*) FROM plans.outbox WHERE sent_at IS NULL") == 2 + len(SCHOOLS)

        await asyncio.sleep(1.0)  # let the relay fail against the dead broker at least once
        own_broker.start()
        await ensure_topics(stack.settings(), all_topics())  # the memory-only broker came back empty

        for schema in ("results", "catalog", "notifications"):
            await wait_for_count(
                stack, f"SELECT count(*) FROM {schema}.schools WHERE zone_id = :z", len(SCHOOLS), timeout_s=60, z=zone_id
            )
        assert await scalar(stack, "SELECT count(*) FROM plans.outbox WHERE sent_at IS NULL") == 0


async def test_database_killed_every_call_answers_503_with_retry_after_and_the_service_recovers_by_itself(
    own_broker, key_dir, zone_id
):
    # A broker of its own: on the shared one, its consumers would join the shared stack's groups.
    # Not under tmp_path: pytest's folder is closed to the user the server runs as.
    root = Path(tempfile.mkdtemp(prefix="ezone-test-pg-"))
    postgres = EmbeddedPostgres(root / "data")
    postgres.start()
    try:
        database_url = await new_database(postgres)
        stack = await Stack(database_url, own_broker.bootstrap_servers, key_dir).start(only=("plans", "results"))
        try:
            admin = stack.auth("admin", zone_id)
            calls = [("plans", "POST", "/zones", {"id": zone_id, "name": "Z", "district": "D"}),
                     ("plans", "GET", f"/zones/{zone_id}/schools", None),
                     ("results", "GET", f"/zones/{zone_id}/schools", None),
                     ("results", "GET", "/ed-fi/data/v3/ed-fi/assessments", None),
                     ("results", "POST", "/ed-fi/data/v3/ed-fi/academicSubjectDescriptors",
                      {"namespace": "uri://ezone.test/AcademicSubjectDescriptor", "codeValue": "Robotics",
                       "shortDescription": "Robotics"})]

            async def answers() -> list[int]:
                return [(await stack.clients[service].request(method, path, json=body, headers=admin)).status_code
                        for service, method, path, body in calls]

            assert await answers() == [201, 200, 200, 200, 201]
            postgres.kill()  # the postmaster, SIGKILL; its backends end with it

            down = [await stack.clients[service].request(method, path, json=body, headers=admin)
                    for service, method, path, body in calls]
            for response in down:
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["retry-after"] == "5" and "database" in response.json()["detail"]

            postgres.start()  # crash recovery, on the same socket

            async def recovered() -> bool:
                return await answers() == [200, 200, 200, 200, 200]  # the zone and the descriptor again: no change

            await wait_for(recovered, 30, what="the services answering again after PostgreSQL came back")
        finally:
            await stack.stop()
    finally:
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_relay_losing_its_database_connection_reconnects_and_publishes_what_comes_next(
    postgres, own_broker, key_dir, zone_id
):
    database_url = await new_database(postgres)
    async with running_stack(database_url, own_broker.bootstrap_servers, key_dir) as stack:
        admin = stack.auth("admin", zone_id)
        assert (await stack.clients["plans"].post("/zones", json={"id": zone_id, "name": "Z", "district": "D"},
                                                  headers=admin)).status_code == 201
        await wait_for_count(stack, "SELECT count(*) FROM plans.outbox WHERE sent_at IS NULL", 0)

        terminated = await scalar(
            stack, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                   " WHERE application_name = :name AND datname = current_database()", name=relay_application_name("plans"))
        assert terminated == 1

        for school in SCHOOLS:
            response = await stack.clients["plans"].post(f"/zones/{zone_id}/schools", json=school, headers=admin)
            assert response.status_code == 201, response.text
        await wait_for_count(stack, "SELECT count(*) FROM results.schools WHERE zone_id = :z", len(SCHOOLS), z=zone_id)
        assert await scalar(stack, "SELECT count(*) FROM plans.outbox WHERE sent_at IS NULL") == 0


async def test_process_killed_between_commit_and_publish_still_delivers_the_event(postgres, own_broker, key_dir, zone_id):
    database_url = await new_database(postgres)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",  # nothing listens: every publish fails
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "EZONE_JWKS_URL": str(key_dir / "jwks.json"),
        "EZONE_RUN_CONSUMERS": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ezone_plans.main:app", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            async def up() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(up, 30, what="the plans process to start")
            headers = {"Authorization": f"Bearer {mint_token(key_dir, role='admin', zone=zone_id)}"}
            assert (await client.post("/zones", json={"id": zone_id, "name": "Z", "district": "D"}, headers=headers)).status_code == 201
            response = await client.post(f"/zones/{zone_id}/schools", json=duggan(), headers=headers)
            assert response.status_code == 201, response.text
            school_id = response.json()["id"]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    # Its own broker: a second stack on the shared one would join the shared stack's consumer groups.
    async with running_stack(database_url, own_broker.bootstrap_servers, key_dir) as stack:
        # zone.registered, zone.policy_changed (version 1) and school.registered
        assert await scalar(stack, "SELECT count(*) FROM plans.outbox WHERE sent_at IS NULL") == 3
        for schema in ("results", "catalog", "notifications"):
            await wait_for_count(stack, f"SELECT count(*) FROM {schema}.schools WHERE id = :id", 1, timeout_s=30, id=school_id)
