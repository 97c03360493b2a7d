"""`ezone up` as a newcomer runs it: a real process tree on this machine."""

from __future__ import annotations

import mailbox
import os
import re
import signal
import time
from datetime import date
from pathlib import Path

import httpx
import psutil
import pytest
from ezone_kit.devkeys import mint_token
from ezone_results.state_aggregates.mcas import McasReader
from ezone_schemas.vocabulary import Subgroup

from ezone.demo import (
    DEMO_BOARD,
    DEMO_DISTRICT_SERVICES,
    DEMO_POLICY,
    DEMO_SCHOOL_SPANS,
    all_students_files,
    board_member_request,
    default_data_dir,
    demo_partners,
)
from ezone.local import DEMO_APPROVED_PLANS
from ezone.services import SERVICES
from ezone.stack import free_port
from tests.integration.up_support import (
    descendants,
    four_free_ports,
    leftover_processes,
    start_up,
    stop_with_ctrl_c,
    up_home,
    wait_for_output,
    wait_until_ready,
)

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"


def comparable(line: str) -> str:
    """A line of `up`'s output with what differs from run to run made alike: ports, durations, which service was ready
    last, and the lengths of progress bars and table borders (they follow the ports' digits)."""
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
    line = re.sub(r"\b\d+:\d\d:\d\d\b", "H:MM:SS", line)
    line = re.sub(r"\b\d+\.\ds\b", "N.Ns", line)
    line = re.sub(r"ready \([a-z-]+\)", "ready (SERVICE)", line)
    return re.sub(r"([━─ ])\1+", r"\1", line.strip())


def assert_readme_shows_what_up_printed(output: str) -> None:
    """The README's sample of `make up`'s output, line for line; its `…` stand for paths and tokens."""
    # Fenced blocks, opening and closing fences in turn.
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```$", README.read_text(), flags=re.MULTILINE | re.DOTALL)
    [sample] = [block for block in blocks if "Ctrl-C stops everything" in block]
    printed = output[:output.index("Ctrl-C stops everything.") + len("Ctrl-C stops everything.")]
    printed_lines = [line for line in printed.splitlines() if line.strip()]
    assert len(printed_lines) == len(sample.splitlines()), f"README shows:\n{sample}\n`up` printed:\n{printed}"
    for shown, line in zip(sample.splitlines(), printed_lines, strict=True):
        pattern = re.escape(comparable(shown)).replace("…", ".*")
        assert re.fullmatch(pattern, comparable(line)), f"README shows {shown!r}, `up` printed {line!r}"


def assert_demo_governance(home: Path, port_base: int) -> None:
    """A seated board of seven, and 2025-26 plans: six approved, four waiting for seat 1's vote."""
    chair = {"Authorization": f"Bearer {mint_token(home / 'keys', role='board', zone='springfield', subject=board_member_request(DEMO_BOARD[0])['subject'])}"}
    plans = f"http://127.0.0.1:{port_base}/zones/springfield"
    members = httpx.get(f"{plans}/board-members", headers=chair).json()
    assert sorted((m["seat"], m["appointed_by"]) for m in members) == [(1, "district"), (2, "district"), (3, "district"),
                                                                      (4, "state"), (5, "state"), (6, "state"), (7, "state")]
    awaiting = httpx.get(f"{plans}/plans", params={"status": "submitted"}, headers=chair).json()
    assert len(awaiting) == 10 - DEMO_APPROVED_PLANS
    # The zone's policy names MCAS as its accountability assessment: version 2, adopted once however often `up` runs.
    policy = httpx.get(f"{plans}/policy", headers=chair).json()
    assert policy["version"] == 2
    assert policy["document"]["accountability_assessments"] == [
        {"assessment_identifier": None, "assessment_category": None, "subjects": None, "grades": None, **rule}
        for rule in DEMO_POLICY["accountability_assessments"]]


def demo_reviewed_keys() -> dict[str, set[tuple[str, str]]]:
    """School code → (subject, school year) of each MCAS figure on file for a demo school: what the demo reviews."""
    codes = {code.zfill(8) for code in DEMO_SCHOOL_SPANS}
    keys: dict[str, set[tuple[str, str]]] = {code: set() for code in codes}
    for path in all_students_files(default_data_dir() / "mcas"):
        reader = McasReader(subgroup=Subgroup.ALL_STUDENTS)
        reader.feed(path.read_bytes())
        reader.close()
        for row in reader.rows:
            if row.school_code in codes and row.proficiency_rate is not None:
                keys[row.school_code].add((row.subject.value, row.school_year))
    return keys


def member_auth(home: Path, member: dict) -> dict[str, str]:
    subject = board_member_request(member)["subject"]
    return {"Authorization": f"Bearer {mint_token(home / 'keys', role='board', zone='springfield', subject=subject)}"}


def assert_history_floods_no_one(home: Path, port_base: int) -> None:
    """Five years of MCAS history are reviewed and on the board page, but none of it is current (the zone policy's
    `alert_school_years`): each member has the plans awaiting their vote and no review or tier alert, and few emails."""
    expected = demo_reviewed_keys()
    overview_url = f"http://127.0.0.1:{port_base + 3}/zones/springfield/board/overview"
    # A deadline against a hang, not a measure: on a busy 2-core machine the statewide comparisons of five years take
    # minutes.
    deadline = time.monotonic() + 600
    chair = member_auth(home, DEMO_BOARD[0])
    while True:  # every review has reached the notifications service (its alerts are raised in the same transaction)
        shown = {school["code"]: {(subject["subject"], point["school_year"]) for subject in school["subjects"]
                                  for point in subject["trend"] if point["proficiency_rate"] is not None}
                 for school in httpx.get(overview_url, headers=chair, timeout=10).json()["schools"]}
        if all(keys <= shown.get(code, set()) for code, keys in expected.items()):
            break
        assert time.monotonic() < deadline, f"the board page never showed every year reviewed: {shown}"
        time.sleep(0.5)
    mails = mailbox.mbox(home / "mail" / "ezone.mbox")
    for member in DEMO_BOARD:
        subject, token = board_member_request(member)["subject"], member_auth(home, member)
        alerts_url = f"http://127.0.0.1:{port_base + 3}/zones/springfield/alerts"
        active = httpx.get(alerts_url, headers=token, params={"limit": 500}).json()["items"]
        every = httpx.get(alerts_url, headers=token, params={"limit": 500, "state": "all"}).json()["items"]
        assert len(active) <= 5, [a["title"] for a in active]
        assert not [a["title"] for a in every if a["source_type"] in ("review.completed", "school.tier_changed")]
        assert len([m for m in mails if subject in (m["To"] or "")]) <= 5


def test_ezone_up_serves_four_ready_services_with_the_demo_zone_and_ctrl_c_leaves_nothing_running():
    with up_home() as home:
        serves_the_demo_zone_and_recovers(home)


def serves_the_demo_zone_and_recovers(home: Path) -> None:
    port_base, broker_port = four_free_ports(), free_port()
    ports = [port_base + i for i in range(len(SERVICES))] + [broker_port]

    process, log = start_up(home, port_base, broker_port)
    try:
        wait_for_output(process, log, "Ctrl-C stops everything", timeout_s=60)
        children = descendants(process)
        for i, entry in enumerate(SERVICES):
            ready = httpx.get(f"http://127.0.0.1:{port_base + i}/readyz", timeout=5)
            assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}, entry.name

        board = {"Authorization": f"Bearer {mint_token(home / 'keys', role='board', zone='springfield')}"}
        schools = httpx.get(f"http://127.0.0.1:{port_base}/zones/springfield/schools", headers=board).json()
        assert sorted(s["code"] for s in schools) == sorted(code.zfill(8) for code in DEMO_SCHOOL_SPANS)
        assert_demo_governance(home, port_base)
        catalog = httpx.get(f"http://127.0.0.1:{port_base + 2}/zones/springfield/services", headers=board).json()
        assert sorted(s["id"] for s in catalog) == sorted(
            s["id"] for s in [*DEMO_DISTRICT_SERVICES, *(s for p in demo_partners(date.today()) for s in p["services"])])
        deadline = time.monotonic() + 30
        while len(httpx.get(f"http://127.0.0.1:{port_base + 1}/zones/springfield/schools", headers=board).json()) < 10:
            assert time.monotonic() < deadline, "the results service never projected the demo schools"
            time.sleep(0.2)
        # The state's MCAS files were loaded: every demo school has reviews (the latest year's), and the board's
        # page charts each school's history from them.
        while len(httpx.get(f"http://127.0.0.1:{port_base + 1}/zones/springfield/reviews/latest", headers=board).json()) < 10:
            assert time.monotonic() < deadline, "the demo schools were never reviewed against the MCAS files"
            time.sleep(0.2)
        assert "results of 2016-17, 2017-18, 2018-19, 2020-21, 2021-22" in log.read_text()
        assert_history_floods_no_one(home, port_base)
        assert "MCAS described as Ed-Fi assessments (14" in log.read_text()
        assert f"http://127.0.0.1:{port_base + 3}/board/sign-in?token=" in log.read_text()
        assert_readme_shows_what_up_printed(log.read_text())
        # The token and the link are printed whole, a line each, and kept for scripts in .ezone/sign-in.txt.
        token, link = (home / "sign-in.txt").read_text().splitlines()
        assert f"\n{token}\n" in log.read_text() and f"\n{link}\n" in log.read_text()
        assert link == f"http://127.0.0.1:{port_base + 3}/board/sign-in?token={token}"
        # A service killed comes back by itself, and so does PostgreSQL; the zone keeps running.
        notifications = next(c for c in descendants(process) if "ezone_notifications" in " ".join(c.cmdline()))
        notifications.kill()
        wait_for_output(process, log, "the notifications service started again", timeout_s=30)
        wait_until_ready(port_base + 3)
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)
        wait_for_output(process, log, "PostgreSQL is back", timeout_s=30)
        deadline = time.monotonic() + 30
        while httpx.get(f"http://127.0.0.1:{port_base}/zones/springfield/schools", headers=board).status_code != 200:
            assert time.monotonic() < deadline, "plans did not answer again after PostgreSQL came back"
            time.sleep(0.2)
        # So does the broker, which comes back empty: its topics first, then the events it lost; new ones flow.
        next(c for c in descendants(process) if "tansu" in " ".join(c.cmdline())).kill()
        wait_for_output(process, log, "The broker is back", timeout_s=30)
        probe = {"Authorization": f"Bearer {mint_token(home / 'keys', role='admin', zone='probe')}"}
        assert httpx.post(f"http://127.0.0.1:{port_base}/zones", json={"id": "probe", "name": "P", "district": "D"},
                          headers=probe).status_code == 201
        assert httpx.post(f"http://127.0.0.1:{port_base}/zones/probe/schools", headers=probe,
                          json={"code": "99999901", "name": "Probe", "grade_span": "6-8"}).status_code == 201
        # Generous: the consumers rejoin their groups and each relay checks the new broker first.
        deadline = time.monotonic() + 90
        while len(httpx.get(f"http://127.0.0.1:{port_base + 1}/zones/probe/schools", headers=probe).json()) != 1:
            assert time.monotonic() < deadline, "results never heard of the school registered after the broker came back"
            time.sleep(0.2)
        # Its administrators rename the zone; the next start still finds it by its id.
        admin = {"Authorization": f"Bearer {mint_token(home / 'keys', role='admin', zone='springfield')}"}
        renamed = httpx.patch(f"http://127.0.0.1:{port_base}/zones/springfield", headers=admin,
                              json={"name": "Springfield Empowerment Zone (renamed by its board)"})
        assert renamed.status_code == 200, renamed.text
    finally:
        if process.poll() is None:
            stop_with_ctrl_c(process, log, home)
    assert leftover_processes(home, ports) == []
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

    # A second run reuses the data; each relay finds the new, empty broker short of what it acknowledged and
    # publishes those events again.
    relay_logs = {name: (home / "logs" / f"{name}.log").stat().st_size for name in ("plans", "results")}
    process, log = start_up(home, port_base, broker_port)
    try:
        wait_for_output(process, log, "Ctrl-C stops everything", timeout_s=60)
        output = log.read_text()
        assert "10 schools (0 new)" in output
        assert_demo_governance(home, port_base)
        for name, size in relay_logs.items():
            wait_for_output(process, home / "logs" / f"{name}.log", "no longer holds what it acknowledged",
                            timeout_s=60, after=size)
    finally:
        if process.poll() is None:
            stop_with_ctrl_c(process, log, home)
    assert leftover_processes(home, ports) == []
