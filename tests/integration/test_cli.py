"""The `ezone` commands, run as a person runs them, against a running zone."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import uuid
from datetime import UTC, datetime, timedelta

from ezone_kit.auth import JwksVerifier

from tests.helpers import register_school, register_zone, scalar, wait_for_count
from tests.stack import served


async def ezone(stack, home, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "EZONE_HOME": str(home),
        "DATABASE_URL": stack.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "COLUMNS": "200",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ezone.cli", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return process.returncode, output.decode()


async def test_token_command_mints_a_token_bound_to_its_role_zone_and_schools(zone_stack, tmp_path):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    code, output = await ezone(zone_stack, tmp_path, "token", "--role", "school", "--zone", "springfield", "--school", first,
                               "--school", second)
    assert code == 0, output
    principal = await JwksVerifier(str(tmp_path / "keys" / "jwks.json"), "ezone").verify(output.strip())
    assert (principal.role, principal.zone, principal.schools) == ("school", "springfield", frozenset({first, second}))


async def test_token_command_takes_a_schools_state_code_and_refuses_one_the_zone_does_not_have(zone_stack, tmp_path, zone_id):
    await register_zone(zone_stack, zone_id)
    school = await register_school(zone_stack, zone_id)
    shutil.copytree(zone_stack.key_dir, tmp_path / "keys")  # the running zone trusts these keys
    async with served(zone_stack, "plans") as plans:
        (tmp_path / "state.json").write_text(json.dumps({"services": {"plans": plans}}))  # as `ezone up` records it

        code, output = await ezone(zone_stack, tmp_path, "token", "--role", "school", "--zone", zone_id,
                                   "--school", school["code"])
        assert code == 0, output
        principal = await JwksVerifier(str(tmp_path / "keys" / "jwks.json"), "ezone").verify(output.strip())
        assert principal.schools == frozenset({school["id"]})

        code, output = await ezone(zone_stack, tmp_path, "token", "--role", "school", "--zone", zone_id, "--school", "99999999")
        assert code != 0 and "no school with id or state code '99999999'" in output, output


async def test_token_command_refuses_a_school_token_without_schools_and_says_what_to_add(zone_stack, tmp_path):
    code, output = await ezone(zone_stack, tmp_path, "token", "--role", "school", "--zone", "springfield")
    assert code != 0
    assert "--school" in output


async def test_outbox_replay_since_republishes_retained_events_and_consumers_skip_them(zone_stack, tmp_path, zone_id):
    await register_zone(zone_stack, zone_id)
    school = await register_school(zone_stack, zone_id)
    await wait_for_count(zone_stack, "SELECT count(*) FROM results.schools WHERE id = :id", 1, id=school["id"])
    processed_before = zone_stack.kits["results"].workers[0].processed

    since = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    code, output = await ezone(zone_stack, tmp_path, "outbox", "replay", "--since", since, "--service", "plans")
    assert code == 0, output
    assert "Queued" in output
    await wait_for_count(zone_stack, "SELECT count(*) FROM plans.outbox WHERE sent_at IS NULL", 0)
    worker = zone_stack.kits["results"].workers[0]

    async def skipped() -> bool:
        return worker.duplicates_skipped > 0

    from ezone.stack import wait_for

    await wait_for(skipped, 20, what="the replayed events to reach results")
    assert worker.processed == processed_before, "a replayed event was processed a second time"
    assert await scalar(zone_stack, "SELECT count(*) FROM results.schools WHERE zone_id = :z", z=zone_id) == 1


async def test_dlq_list_on_a_healthy_zone_says_there_is_nothing_dead_lettered(zone_stack, tmp_path):
    code, output = await ezone(zone_stack, tmp_path, "dlq", "list")
    assert code == 0, output
    assert "No dead-lettered events." in output


async def test_dlq_commands_reject_an_unknown_group_listing_the_real_ones(zone_stack, tmp_path):
    code, output = await ezone(zone_stack, tmp_path, "dlq", "replay", "--group", "nope")
    assert code != 0
    groups = ["ezone.catalog.events", "ezone.notifications.events", "ezone.plans.events", "ezone.results.events"]
    assert f"the groups are {', '.join(groups)}" in " ".join(output.replace("│", " ").split()), output
