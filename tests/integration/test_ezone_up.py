"""`ezone up` as a newcomer runs it: a real process tree on this machine."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import psutil
import pytest
from ezone_kit.devkeys import mint_token

from ezone.demo import (
    DEMO_BOARD,
    DEMO_DISTRICT_SERVICES,
    DEMO_POLICY,
    DEMO_SCHOOL_SPANS,
    board_member_request,
    demo_partners,
)
from ezone.local import DEMO_APPROVED_PLANS
from ezone.services import SERVICES
from ezone.stack import free_port, port_open

pytestmark = pytest.mark.slow


def four_free_ports() -> int:
    for _ in range(50):
        base = random.randint(20_000, 40_000)
        if not any(port_open(base + i) for i in range(len(SERVICES))):
            return base
    raise RuntimeError("no four consecutive free ports")


def start_up(home: Path, port_base: int, broker_port: int) -> tuple[subprocess.Popen, Path]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env |= {"EZONE_HOME": str(home), "EZONE_BROKER_PORT": str(broker_port), "COLUMNS": "200"}
    log = home.parent / f"up-{time.monotonic_ns()}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "ezone.cli", "up", "--port-base", str(port_base)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    return process, log


def wait_until_ready(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"the service on port {port} was not ready again within {timeout_s}s"
        time.sleep(0.2)


def wait_for_output(process: subprocess.Popen, log: Path, text: str, timeout_s: float) -> None:
    """Waits for the text (a deadline against a hang, not a measure: `make bench` times the start)."""
    started = time.monotonic()
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, f"ezone up exited early:\n{log.read_text()}"
        assert time.monotonic() - started < timeout_s, f"no {text!r} after {timeout_s}s:\n{log.read_text()}"
        time.sleep(0.2)


def descendants(process: subprocess.Popen) -> list[psutil.Process]:
    return psutil.Process(process.pid).children(recursive=True)


def stop_with_ctrl_c(process: subprocess.Popen, log: Path, home: Path) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0, log.read_text()
    assert "Stopped: services, broker and database." in log.read_text()


def leftover_processes(home: Path, ports: list[int], grace_s: float = 20.0) -> list[str]:
    """What still runs after `grace_s`: a postmaster removes its pid file (ending pg_ctl's wait) just before it exits."""
    deadline = time.monotonic() + grace_s
    while (found := _matching_processes(home, ports)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def _matching_processes(home: Path, ports: list[int]) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(home) in cmdline or any(f"--port {p}" in cmdline or f":{p}" in cmdline for p in ports):
            found.append(cmdline)
    return found


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


def test_ezone_up_serves_four_ready_services_with_the_demo_zone_and_ctrl_c_leaves_nothing_running(tmp_path):
    home = tmp_path / "ezone-home"
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
        assert "MCAS described as Ed-Fi assessments (14" in log.read_text()
        assert f"http://127.0.0.1:{port_base + 3}/board/sign-in?token=" in log.read_text()
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
        deadline = time.monotonic() + 30
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

    # A second run reuses the data and re-publishes what the memory-only broker lost.
    process, log = start_up(home, port_base, broker_port)
    try:
        wait_for_output(process, log, "Ctrl-C stops everything", timeout_s=60)
        output = log.read_text()
        assert "10 schools (0 new)" in output
        assert_demo_governance(home, port_base)
        assert "Re-publishing" in output
    finally:
        if process.poll() is None:
            stop_with_ctrl_c(process, log, home)
    assert leftover_processes(home, ports) == []
