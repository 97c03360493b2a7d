"""The board page in a real browser: Debian's headless Chromium, driven by Playwright, against `ezone up`.

A board member signs in, sees the demo zone, and when an SIS posts results that put a school off track, the alert
appears in the open page without a reload. The test leaves a screenshot of the page in docs/board.png.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from ezone_kit.devkeys import mint_token

from ezone.demo import DEMO_BOARD, DEMO_SCHOOL_YEAR, board_member_request, demo_schools
from ezone.services import SERVICES
from ezone.stack import free_port
from tests.integration.test_ezone_up import four_free_ports, start_up, stop_with_ctrl_c, wait_for_output
from tests.results_data import NAMESPACE, TEST_DAYS, student_id

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "board.png"
ZONE = "springfield"
SUBJECTS = ("ELA", "MATH")
PREVIOUS_YEARS = ("2023-24", "2024-25")
STUDENTS = 60
GOAL_GAIN = 6.0  # the demo plans' proficiency goals: the school's MCAS baseline + 6 points
# 2025-26 proficiency against the goal, per demo school: a zone with schools meeting, approaching and off track.
# The third (Forest Park Middle, whose plan is approved) gets its 2025-26 math results during the test.
GOAL_DELTAS = (3.0, -3.0, 2.0, 1.0, -2.0, -9.0, 0.0, 4.0, -14.0, 2.0)
TARGET = 2
FLAGGED = 4  # too few of its students tested in ELA: a low-participation flag on the page
ALERT_TIMEOUT_MS = 15_000


def playwright_api():  # noqa: ANN201 - the module, imported here so that its absence fails with a hint
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the board page is tested in Debian's Chromium (`apt-get install chromium`).")
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("The playwright package is missing: `make install` installs the development dependencies.")
    return sync_api


@dataclass
class DemoZone:
    home: Path
    port_base: int

    def url(self, service: str) -> str:
        index = next(i for i, entry in enumerate(SERVICES) if entry.name == service)
        return f"http://127.0.0.1:{self.port_base + index}"

    def token(self, role: str, subject: str | None = None, schools: list[str] | None = None) -> str:
        return mint_token(self.home / "keys", role=role, zone=ZONE, subject=subject, schools=schools)


@pytest.fixture
def demo_zone(tmp_path: Path) -> Iterator[DemoZone]:
    """`ezone up` with the demo zone, as real processes; Ctrl-C at the end."""
    home = tmp_path / "ezone-home"
    port_base = four_free_ports()
    process, log = start_up(home, port_base, free_port())
    try:
        wait_for_output(process, log, "Ctrl-C stops everything", timeout_s=90)
        yield DemoZone(home, port_base)
    finally:
        if process.poll() is None:
            stop_with_ctrl_c(process, log, home)


def result_rows(school_id: str, school_year: str, subject: str, proficiency: float, not_tested: int = 0) -> list[dict]:
    """One row per student as an SIS posts them: `proficiency` % of the tested students meet expectations."""
    month, day = TEST_DAYS[subject]
    tested = STUDENTS - not_tested
    proficient = round(tested * max(0.0, min(100.0, proficiency)) / 100)
    rows = []
    for index in range(STUDENTS):
        grade = ("6", "7", "8")[index % 3]
        row = {
            "student_id": student_id(school_id, index), "school_id": school_id, "assessment_namespace": NAMESPACE,
            "assessment_identifier": f"MCAS-G{grade}-{subject}", "subject": subject, "grade": grade,
            "school_year": school_year, "administration_date": date(int(school_year[:4]) + 1, month, day).isoformat(),
            "subgroups": ["high_needs", "low_income", ("hispanic_latino", "afr_american_black")[index % 2]],
        }
        if index >= tested:
            row["not_tested_reason"] = "absent"
        else:
            meets = index < proficient
            row |= {"scale_score": (500 if meets else 470) + index % 30, "proficient": meets,
                    "performance_level": "Meeting" if meets else "Partially Meeting"}
        rows.append(row)
    return rows


def wait_until(check: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s}s"
        time.sleep(0.3)
    return value


def post_results(zone: DemoZone, sis: dict[str, str], rows: list[dict]) -> None:
    response = httpx.post(f"{zone.url('results')}/zones/{ZONE}/results", json={"rows": rows}, headers=sis, timeout=60)
    assert response.status_code == 201, response.text


def test_a_board_member_signs_in_sees_the_zone_and_a_new_alert_arrives_without_reloading(demo_zone):
    sync_api = playwright_api()
    zone = demo_zone
    chair = board_member_request(DEMO_BOARD[0])["subject"]
    chair_token = zone.token("board", chair)
    as_chair = {"Authorization": f"Bearer {chair_token}"}
    baselines = {school.code: school.proficiency for school in demo_schools()}
    directory = httpx.get(f"{zone.url('plans')}/zones/{ZONE}/schools", headers=as_chair).json()
    by_code = {school["code"]: school for school in directory}
    schools = [by_code[code] for code in baselines]  # in the demo's order: the first six have approved plans
    target = schools[TARGET]
    sis = {"Authorization": f"Bearer {zone.token('sis', 'sis@springfield.example', [s['id'] for s in schools])}"}

    def overview() -> dict:
        response = httpx.get(f"{zone.url('notifications')}/zones/{ZONE}/board/overview", headers=as_chair)
        assert response.status_code == 200, response.text
        return response.json()

    def reviewed(school: dict, subject: str, year: str) -> Callable[[dict], bool]:
        return lambda body: any(entry["subject"] == subject and (entry["latest"] or {}).get("school_year") == year
                                for s in body["schools"] if s["id"] == school["id"] for entry in s["subjects"])

    # History, so that the page has trends to show: two earlier years near each school's MCAS baseline, and 2025-26
    # around its plan goal, all but the target school's math.
    wait_until(lambda: len(httpx.get(f"{zone.url('results')}/zones/{ZONE}/schools", headers=as_chair).json()) == 10,
               30, "the results service knowing the demo schools")
    for year_index, year in enumerate((*PREVIOUS_YEARS, DEMO_SCHOOL_YEAR)):
        rows = []
        for index, school in enumerate(schools):
            for subject in SUBJECTS:
                baseline = baselines[school["code"]][subject]
                if year == DEMO_SCHOOL_YEAR:
                    if school is target and subject == "MATH":
                        continue
                    proficiency = baseline + GOAL_GAIN + GOAL_DELTAS[index]
                else:
                    proficiency = baseline - (3.0 if index % 2 else -1.0) * (1 - year_index)
                not_tested = 8 if (index, subject, year) == (FLAGGED, "ELA", DEMO_SCHOOL_YEAR) else 0
                rows += result_rows(school["id"], year, subject, proficiency, not_tested)
        post_results(zone, sis, rows)
    wait_until(lambda: (body := overview()) and len(body["plans_awaiting_vote"]) == 4 and all(
        reviewed(school, subject, DEMO_SCHOOL_YEAR if not (school is target and subject == "MATH") else "2024-25")(body)
        for school in schools for subject in SUBJECTS), 90, "every review and the open plans on the board overview")

    board_url = zone.url("notifications")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="en-US",
                                    timezone_id="America/New_York")
            errors: list[str] = []  # script errors, CSP violations, failed requests
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{board_url}/board")
            page.fill("#token", chair_token)
            page.click("button[type=submit]")
            page.wait_for_url(f"{board_url}/board")

            expect = sync_api.expect
            table = page.locator("#schools tbody tr")
            expect(table).to_have_count(10)
            for school in schools:
                expect(page.locator("#schools tbody")).to_contain_text(school["name"])
            expect(page.locator("#member-name")).to_have_text("Maria Alvarez (seat 1)")
            expect(page.locator("#plans li")).to_have_count(4)
            flagged = page.locator(f"tr[data-school-id='{schools[FLAGGED]['id']}'] td[data-subject=ELA] .flags")
            expect(flagged).to_contain_text("Low participation")
            expect(page.locator("#live")).to_have_text("Live")  # the alert stream is open
            known_alerts = set(page.locator("#alerts li").evaluate_all("items => items.map(i => i.dataset.alertId)"))
            page.evaluate("window.sameDocument = true")  # gone if the page reloads

            goal = baselines[target["code"]]["MATH"] + GOAL_GAIN
            post_results(zone, sis, result_rows(target["id"], DEMO_SCHOOL_YEAR, "MATH", goal - 15))

            new_alert = page.locator("#alerts li.sev-critical").filter(has_text=target["name"]).filter(
                has_text=DEMO_SCHOOL_YEAR)
            expect(new_alert.first).to_be_visible(timeout=ALERT_TIMEOUT_MS)
            assert new_alert.first.get_attribute("data-alert-id") not in known_alerts
            assert page.evaluate("window.sameDocument") is True
            expect(page.locator("#unread")).to_be_visible()
            target_math = page.locator(f"tr[data-school-id='{target['id']}'] td[data-subject=MATH] .chip")
            expect(target_math).to_have_text("Off track")  # the table follows the new review too

            page.wait_for_timeout(2_500)  # let the new alert's highlight fade
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert errors == []
        finally:
            browser.close()
