"""The board acts from its pages, in Debian's Chromium against `ezone up --port-base 9001` (one run for the module).

A member signs in from the link `ezone up` prints, votes on a plan, follows an alert to its review, changes their
alert preferences and exports the zone's statuses, opens an alert's page with its trace id and reads partners'
evidence; a school leader sees their school and nothing of another's.
axe-core checks the pages for serious or critical accessibility violations, and every link ezone emitted (alerts,
emails, the pages) points at ports 9001-9004 and opens a page.
"""

from __future__ import annotations

import csv
import io
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from ezone.demo import (
    DEMO_BOARD,
    DEMO_SCHOOL_YEAR,
    board_member_request,
    default_data_dir,
    demo_schools,
    file_parameters,
    leadership_team,
    newest_all_students_file,
)
from ezone.stack import free_port, port_open
from tests.browser.axe import serious_violations
from tests.browser.test_board_page import (
    CHROMIUM,
    GOAL_GAIN,
    ZONE,
    DemoZone,
    playwright_api,
    post_results,
    result_rows,
    wait_until,
)
from tests.integration.test_ezone_up import start_up, stop_with_ctrl_c, wait_for_output

pytestmark = pytest.mark.slow

PORT_BASE = 9001
PORTS = range(PORT_BASE, PORT_BASE + 4)
DOCS = Path(__file__).resolve().parents[2] / "docs"
ALERT_TIMEOUT_MS = 60_000
LINK = re.compile(r"https?://[^\s<>\"')\]]+")


@dataclass
class UpZone(DemoZone):
    log: Path

    def printed_sign_in_link(self) -> str:
        found = re.search(r"(http://\S+/board/sign-in\?token=\S+)", self.log.read_text(errors="replace"))
        assert found, "ezone up printed no sign-in link"
        return found.group(1)

    def sign_in_link(self, token: str) -> str:
        return f"{self.url('notifications')}/board/sign-in?token={token}"

    def auth(self, role: str, subject: str | None = None, schools: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, subject, schools)}"}

    def emails(self) -> list:
        path = self.home / "mail" / "ezone.mbox"
        if not path.exists():
            return []
        return [BytesParser(policy=policy.default).parsebytes(message.as_bytes()) for message in mailbox.mbox(path)]


def seat(number: int) -> str:
    return board_member_request(DEMO_BOARD[number - 1])["subject"]


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpZone]:
    busy = [port for port in PORTS if port_open(port)]
    if busy:
        pytest.fail(f"ports {busy} are taken: this module runs `ezone up --port-base {PORT_BASE}`; free them and retry")
    home = tmp_path_factory.mktemp("board-acts") / "ezone-home"
    process, log = start_up(home, PORT_BASE, free_port())
    try:
        wait_for_output(process, log, "Ctrl-C stops everything", timeout_s=180)
        up = UpZone(home, PORT_BASE, log)
        # The demo's MCAS history is reviewed in the background after the start; new results wait behind it.
        newest = file_parameters(newest_all_students_file(default_data_dir() / "mcas"))["school_year"]
        wait_until(lambda: len({r["school_id"] for r in httpx.get(
            f"{up.url('results')}/zones/{ZONE}/reviews/latest", headers=up.auth("admin")).json()
            if r["school_year"] == newest}) == 10, 600, f"every demo school reviewed for {newest}")
        yield up
    finally:
        if process.poll() is None:
            stop_with_ctrl_c(process, log, home)


@pytest.fixture(scope="module")
def browser(zone: UpZone) -> Iterator[object]:
    sync_api = playwright_api()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser):  # noqa: ANN001, ANN201 - Playwright objects
    """A fresh browser context (its own cookies) per person; script errors and CSP violations are collected."""
    contexts, errors = [], []

    def open_page():  # noqa: ANN202
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-US",
                                      timezone_id="America/New_York", accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert errors == []


def schools_by_code(zone: UpZone) -> dict[str, dict]:
    return {school["code"]: school for school in
            httpx.get(f"{zone.url('plans')}/zones/{ZONE}/schools", headers=zone.auth("admin")).json()}


def put_off_track(zone: UpZone, school_index: int, subject: str = "MATH") -> dict:
    """The demo school's results for the current year, 15 points under its plan goal: a critical alert to the board."""
    demo = demo_schools()[school_index]
    school = schools_by_code(zone)[demo.code]
    sis = zone.auth("sis", "sis@springfield.example", [school["id"]])
    post_results(zone, sis, result_rows(school["id"], DEMO_SCHOOL_YEAR, subject,
                                        demo.proficiency[subject] + GOAL_GAIN - 15))
    return school


def assert_accessible(page, what: str) -> None:  # noqa: ANN001
    violations = serious_violations(page)
    assert violations == [], f"{what}: {violations}"


def test_a_member_signs_in_from_the_printed_link_votes_to_approve_and_the_page_shows_the_plan_approved(zone, new_page):
    expect = playwright_api().expect
    link = zone.printed_sign_in_link()
    assert urlsplit(link).port == PORT_BASE + 3
    overview = httpx.get(f"{zone.url('notifications')}/zones/{ZONE}/board/overview",
                         headers=zone.auth("board", seat(1)))
    plan = overview.json()["plans_awaiting_vote"][0]
    votes = f"{zone.url('plans')}/zones/{ZONE}/schools/{plan['school_id']}/plans/{plan['school_year']}/votes"
    # Three members approve through the API; the policy's quorum and majority (4 of 7 seats) wait for a fourth.
    for number in (2, 3, 4):
        vote = httpx.post(votes, json={"decision": "approve"}, headers=zone.auth("board", seat(number)))
        assert vote.status_code in (200, 201) and vote.json()["status"] == "submitted", vote.text

    page = new_page()
    page.goto(link)
    page.wait_for_url(f"{zone.url('notifications')}/board")
    expect(page.locator("#member-name")).to_have_text("Maria Alvarez (seat 1)")
    expect(page.locator("#schools tbody tr")).to_have_count(10)
    assert_accessible(page, "the board page")

    page.locator(f"#plans li[data-plan-id='{plan['plan_id']}'] a").click()
    page.wait_for_url(f"**/board/schools/{plan['school_id']}/plans/{plan['school_year']}")
    expect(page.locator("#plan-status")).to_have_text("Submitted for a vote")
    expect(page.locator("main")).to_contain_text("Levers")
    expect(page.locator("main")).to_contain_text("Budget:")
    expect(page.locator(".votes-list").first).to_contain_text("James Whitfield")  # earlier votes and comments
    assert_accessible(page, "the plan page")

    page.check("input[name=decision][value=approve]")
    page.fill("#comment-curriculum", "The literacy block is well argued.")
    page.click(".vote-form button[type=submit]")
    expect(page.locator("#plan-status")).to_have_text("Approved")
    expect(page.locator("[role=status]")).to_have_text("Your vote to approve was recorded.")
    expect(page.locator(".votes-list").first).to_contain_text("The literacy block is well argued.")
    assert page.locator(".vote-form").count() == 0  # decided: nothing left to vote on

    # The decision went through the plans service and its events: the board page no longer lists the plan.
    wait_until(lambda: all(p["plan_id"] != plan["plan_id"] for p in httpx.get(
        f"{zone.url('notifications')}/zones/{ZONE}/board/overview",
        headers=zone.auth("board", seat(1))).json()["plans_awaiting_vote"]), 30, "plan.approved reaching the board")
    page.goto(f"{zone.url('notifications')}/board")
    expect(page.locator("#plans li")).not_to_have_count(0)
    expect(page.locator(f"#plans li[data-plan-id='{plan['plan_id']}']")).to_have_count(0)


def test_an_alert_click_opens_the_review_page_with_its_reasons(zone, new_page):
    expect = playwright_api().expect
    page = new_page()
    page.goto(zone.sign_in_link(zone.token("board", seat(1))))
    expect(page.locator("#live")).to_have_text("Live")
    school = put_off_track(zone, 2)

    alert = page.locator("#alerts li.sev-critical").filter(has_text=school["name"]).filter(has_text=DEMO_SCHOOL_YEAR)
    expect(alert.first).to_be_visible(timeout=ALERT_TIMEOUT_MS)
    alert.first.get_by_role("link", name="Review").click()
    page.wait_for_url(f"**/board/schools/{school['id']}/reviews/{DEMO_SCHOOL_YEAR}/MATH")
    expect(page.locator("h1")).to_have_text(f"Math review, {DEMO_SCHOOL_YEAR}")
    expect(page.locator("#review-status")).to_have_text("Off track")
    review = httpx.get(f"{zone.url('results')}/zones/{ZONE}/schools/{school['id']}/reviews/latest",
                       params={"school_year": DEMO_SCHOOL_YEAR, "subject": "MATH"}, headers=zone.auth("admin")).json()
    everyone = next(m for m in review["metrics"] if m["subgroup"] == "all_students")
    reasons = page.locator("#reasons li")
    expect(reasons.first).to_contain_text(f"{everyone['proficiency_rate']:.0f}%")  # the numbers it decided on
    expect(page.locator("#trend tbody tr")).not_to_have_count(0)
    assert_accessible(page, "the review page")
    page.screenshot(path=str(DOCS / "board-review.png"), full_page=True)


def test_with_email_turned_off_on_the_preferences_page_the_next_alert_sends_the_member_no_email(zone, new_page):
    expect = playwright_api().expect
    page = new_page()
    page.goto(zone.sign_in_link(zone.token("board", seat(2))))
    page.click("text=Alert preferences")
    page.wait_for_url("**/board/preferences")
    assert_accessible(page, "the preferences page")
    for severity in ("critical", "warning", "info"):
        page.uncheck(f"#{severity}-email")
    page.click(".preferences-form button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text("Saved")
    assert not page.is_checked("#critical-email")
    stored = httpx.get(f"{zone.url('notifications')}/zones/{ZONE}/members/me/preferences",
                       headers=zone.auth("board", seat(2))).json()
    assert all("email" not in channels for channels in stored["channels"].values()), stored

    school = put_off_track(zone, 3)

    def alert_of(member: str) -> dict | None:
        items = httpx.get(f"{zone.url('notifications')}/zones/{ZONE}/alerts", params={"school_id": school["id"]},
                          headers=zone.auth("board", member)).json()["items"]
        return next((a for a in items if a["severity"] == "critical" and DEMO_SCHOOL_YEAR in a["title"]), None)

    silenced, heard = (wait_until(lambda m=m: alert_of(m), 30, f"the alert for {m}") for m in (seat(2), seat(3)))

    def deliveries(member: str, alert: dict) -> list[dict]:
        return httpx.get(f"{zone.url('notifications')}/zones/{ZONE}/alerts/{alert['id']}/deliveries",
                         headers=zone.auth("board", member)).json()

    assert [d for d in deliveries(seat(2), silenced) if d["channel"] == "email"] == []
    assert [d for d in deliveries(seat(3), heard) if d["channel"] == "email"]  # the others still get theirs
    wait_until(lambda: any(seat(3) in str(m["To"]) and heard["title"] in str(m["Subject"]) for m in zone.emails()),
               30, "the other member's email")
    assert not any(seat(2) in str(m["To"]) and silenced["title"] in str(m["Subject"]) for m in zone.emails())


def test_the_csv_export_downloads_with_the_same_statuses_as_the_results_api(zone, new_page):
    page = new_page()
    page.goto(zone.sign_in_link(zone.token("board", seat(1))))
    with page.expect_download() as download:
        page.click("#export")
    assert download.value.suggested_filename == f"{ZONE}-latest-reviews.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    exported = {(row["school_id"], row["subject"]): (row["school_year"], row["status"]) for row in rows}
    api = httpx.get(f"{zone.url('results')}/zones/{ZONE}/reviews/latest", headers=zone.auth("board", seat(1))).json()
    assert exported == {(r["school_id"], r["subject"]): (r["school_year"], r["status"]) for r in api}
    assert len({row["school_id"] for row in rows}) == 10
    assert all(row["reason"] for row in rows)
    assert {row["subgroup"] for row in rows} >= {"all_students"}


def test_a_school_leader_sees_their_school_and_gets_403_or_404_for_anothers(zone, new_page):
    expect = playwright_api().expect
    demo = demo_schools()
    by_code = schools_by_code(zone)
    mine, other = by_code[demo[0].code], by_code[demo[1].code]
    principal = leadership_team(0, demo[0].code)[0]["subject"]
    page = new_page()
    page.goto(zone.sign_in_link(zone.token("school", principal, [mine["id"]])))
    page.wait_for_url(f"{zone.url('notifications')}/board")
    expect(page.locator("h1")).to_have_text(mine["name"])
    this_year = page.locator(f"#school-plans tr[data-school-year='{DEMO_SCHOOL_YEAR}']")
    expect(this_year.locator(".plan-status")).to_have_text("Approved")
    expect(page.locator("#school-reviews .reason").first).not_to_be_empty()
    expect(page.locator("#budget")).to_contain_text("left")
    expect(page.locator("#alerts-heading")).to_be_visible()
    assert_accessible(page, "the school leader's page")
    page.screenshot(path=str(DOCS / "board-school.png"), full_page=True)

    this_year.locator("a").click()
    expect(page.locator("#plan-status")).to_have_text("Approved")
    assert page.locator(".vote-form").count() == 0  # school leaders do not vote

    for path in (f"/board/schools/{other['id']}", f"/board/schools/{other['id']}/plans/{DEMO_SCHOOL_YEAR}",
                 f"/board/schools/{other['id']}/reviews/{DEMO_SCHOOL_YEAR}/ELA"):
        # With the page's session cookie, as a click would send it; not navigated to, so that the expected 403
        # is not reported as a console error.
        response = page.request.get(zone.url("notifications") + path)
        assert response.status in (403, 404), (path, response.status)
        assert response.headers["content-type"].startswith("text/html") and "data-status" in response.text()
        assert other["name"] not in response.text()
    overview = page.request.get(f"{zone.url('notifications')}/zones/{ZONE}/board/overview")
    assert overview.status == 403


def test_an_alert_shows_its_trace_id_and_the_board_reads_partners_evidence_from_its_page(zone, new_page):
    expect = playwright_api().expect
    board = zone.auth("board", seat(5))
    [alert] = httpx.get(f"{zone.url('notifications')}/zones/{ZONE}/alerts", params={"limit": 1},
                        headers=board).json()["items"]  # the newest active one: first on the page
    assert alert["trace_id"], alert
    page = new_page()
    page.goto(zone.sign_in_link(zone.token("board", seat(5))))
    page.wait_for_url(f"{zone.url('notifications')}/board")
    shown = page.locator(f"#alerts li[data-alert-id='{alert['id']}']")
    expect(shown.locator(".trace code")).to_have_text(alert["trace_id"])
    shown.get_by_role("link", name=re.compile(r"^Details")).click()
    page.wait_for_url(f"**/board/alerts/{alert['id']}")
    expect(page.locator("#trace-id")).to_have_text(alert["trace_id"])
    assert_accessible(page, "the alert page")

    page.get_by_role("link", name="Partners' evidence").click()
    page.wait_for_url("**/board/evidence")
    evidence = httpx.get(f"{zone.url('services-catalog')}/zones/{ZONE}/evidence", headers=board).json()
    assert evidence
    expect(page.locator("#evidence tbody tr")).to_have_count(len(evidence))
    assert_accessible(page, "the partners' evidence page")
    partner = evidence[0]
    page.locator(f"#evidence tr[data-partner-id='{partner['partner_id']}'] a").click()
    page.wait_for_url(f"**/board/partners/{partner['partner_id']}/evidence")
    expect(page.locator("h1")).to_have_text(partner["partner_name"])
    expect(page.locator("#verdict")).to_have_text(re.compile(partner["verdict"].replace("_", " "), re.IGNORECASE))
    expect(page.locator("#verdict-sentence")).to_have_text(partner["sentence"])
    assert_accessible(page, "a partner's evidence page")


def test_every_link_in_alerts_emails_and_pages_points_at_the_port_base_and_opens_a_page(zone, new_page):
    school = put_off_track(zone, 4)  # a critical alert, emailed at once
    wait_until(lambda: any(seat(1) in str(m["To"]) and school["name"] in str(m["Subject"]) for m in zone.emails()),
               60, "the critical alert's email")
    page = new_page()
    page.goto(zone.printed_sign_in_link())
    page.wait_for_url(f"{zone.url('notifications')}/board")
    playwright_api().expect(page.locator("#alerts li").first).to_be_visible()

    urls: set[str] = set()
    alerts = httpx.get(f"{zone.url('notifications')}/zones/{ZONE}/alerts", params={"state": "all", "limit": 500},
                       headers=zone.auth("board", seat(1))).json()["items"]
    assert alerts
    urls |= {url for alert in alerts for url in alert["links"].values()}
    emails = zone.emails()
    assert emails
    for message in emails:
        for part in ("plain", "html"):
            urls |= set(LINK.findall(message.get_body((part,)).get_content()))
    page_links = "els => els.map(a => a.href).filter(href => href.startsWith('http'))"
    urls |= set(page.eval_on_selector_all("a[href]", page_links))
    for url in [u for u in sorted(urls) if "/schools/" in u][:3]:  # the pages behind the links have links too
        page.goto(url)
        urls |= set(page.eval_on_selector_all("a[href]", page_links))

    assert {urlsplit(url).hostname for url in urls} == {"127.0.0.1"}, sorted(urls)
    assert {urlsplit(url).port for url in urls} <= set(PORTS), sorted(urls)
    for url in sorted(urls):
        response = page.request.get(url)
        kind = response.headers.get("content-type", "")
        assert response.status == 200, (url, response.status)
        assert kind.startswith("text/html") or kind.startswith("text/csv"), (url, kind)
