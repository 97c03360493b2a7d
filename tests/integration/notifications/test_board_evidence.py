"""The board sees partners' evidence of impact on its page: every partner's verdict with its n and reasons, and one
partner's evidence measure by measure and school by school, read from the catalog with the page's own session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from markupsafe import escape

from tests.integration.catalog.support import catalog_zone
from tests.integration.catalog.test_evidence import ENGAGED, engage, math_history
from tests.stack import Stack, served

from .test_board_pages import session


@pytest.fixture
async def board_page(zone_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The notifications service on a port, its page's backend calling the catalog on another."""
    async with served(zone_stack, "services-catalog") as catalog, \
            served(zone_stack, "notifications", ezone_catalog_url=catalog) as base, \
            httpx.AsyncClient(base_url=base, timeout=30) as client:
        yield client


async def test_the_board_sees_each_partners_verdict_n_and_reasons_and_one_partners_evidence_school_by_school(
        zone_stack, zone_id, board_page):
    zone = await catalog_zone(zone_stack, zone_id, schools=6)
    for school_id in zone.school_ids[:2]:
        await zone.approve_plan("100000.00", school_id, year=ENGAGED)
    partner_id = await zone.add_partner()
    await zone.add_partner("Common Ground Collaborative", vetting=None)  # nobody has used it
    coaching = await zone.partner_service(partner_id)
    await engage(zone, coaching["id"], zone.school_ids[0], "confirm")
    await engage(zone, coaching["id"], zone.school_ids[1], "confirm", "fulfil")
    await math_history(zone, {0: (20.0, 30.0, 40.0, 55.0), 1: (30.0, 36.0, 45.0, 50.0), 2: (25.0, 26.0, None, None),
                              3: (22.0, 21.0, None, None), 4: (40.0, 42.0, None, None)})
    evidence = (await zone.request("GET", "/evidence", zone.staff("board"))).json()
    assert len(evidence) == 2
    board = session(zone_stack, zone_id, "board-seat-1@example.org")

    listed = await board_page.get("/board/evidence", headers=board)
    assert listed.status_code == 200, listed.text
    for partner in evidence:
        assert escape(partner["partner_name"]) in listed.text and escape(partner["sentence"]) in listed.text
        row = listed.text.split(f'data-partner-id="{partner["partner_id"]}"')[1].split("</tr>")[0]
        assert f'/board/partners/{partner["partner_id"]}/evidence"' in row  # linked to its own page
        assert f'chip-{partner["verdict"]}' in row and f'<td>{partner["verdict_schools"]}</td>' in row
    # The board page links to it.
    assert 'href="/board/evidence"' in (await board_page.get("/board", headers=board)).text

    opened = await board_page.get(f"/board/partners/{partner_id}/evidence", headers=board)
    assert opened.status_code == 200, opened.text
    mine = next(partner for partner in evidence if partner["partner_id"] == partner_id)
    assert escape(mine["sentence"]) in opened.text
    for measure in mine["measures"]:
        assert escape(measure["sentence"]) in opened.text
    math = next(m for m in mine["measures"] if (m["subject"], m["measure"]) == ("MATH", "proficiency_rate"))
    outcomes = opened.text.split('id="outcomes"')[1]
    for outcome in math["outcomes"]:
        assert outcome["school_name"] in outcomes
        assert all(c["school_name"] in outcomes for c in outcome["comparison_schools"])

    # Another zone's board member: the catalog finds no such partner in their zone, and the page says only that.
    elsewhere = await board_page.get(f"/board/partners/{partner_id}/evidence",
                                     headers=session(zone_stack, f"{zone_id}-other", "board-seat-1@example.org"))
    assert elsewhere.status_code == 404 and 'data-status="404"' in elsewhere.text
    assert mine["partner_name"] not in elsewhere.text
