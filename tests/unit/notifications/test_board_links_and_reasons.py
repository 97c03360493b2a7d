"""Where the board's links point, and the reason sentences its pages show: pure functions, no stack."""

from __future__ import annotations

import uuid

from ezone_notifications.board import links
from ezone_notifications.board.rendering import review_reasons
from ezone_notifications.config import Settings

SCHOOL = uuid.UUID("5876fee8-4a49-4939-991d-b0981a77486c")
BEHIND_A_GATEWAY = Settings(ezone_notifications_url="https://ezone.example.org/", ezone_plans_url="http://plans.svc")


def test_every_link_is_a_board_page_under_the_public_base_url_whatever_the_internal_service_urls():
    assert {
        links.board_page(BEHIND_A_GATEWAY),
        links.plan_page(BEHIND_A_GATEWAY, SCHOOL, "2025-26"),
        links.review_page(BEHIND_A_GATEWAY, SCHOOL, "2025-26", "ELA"),
        links.school_page(BEHIND_A_GATEWAY, SCHOOL),
        links.orders_page(BEHIND_A_GATEWAY, SCHOOL),
        links.preferences_page(BEHIND_A_GATEWAY),
    } == {
        "https://ezone.example.org/board",
        f"https://ezone.example.org/board/schools/{SCHOOL}/plans/2025-26",
        f"https://ezone.example.org/board/schools/{SCHOOL}/reviews/2025-26/ELA",
        f"https://ezone.example.org/board/schools/{SCHOOL}",
        f"https://ezone.example.org/board/schools/{SCHOOL}#orders",
        "https://ezone.example.org/board/preferences",
    }


def test_a_review_shows_the_sentence_it_carries():
    review = {"status": "off_track", "reason": {"rule": "drop", "sentence": "Off track: 15% proficient, 11 points "
                                                "below last year's 26%."}, "goals": [], "metrics": []}
    assert review_reasons(review) == ["Off track: 15% proficient, 11 points below last year's 26%."]


def test_a_review_without_reasons_shows_its_status_and_figures():
    goal = {"subgroup": "all_students", "metric": "proficiency_rate", "actual": 27.4, "target": 30.0,
            "status": "approaching"}
    everyone = {"subgroup": "all_students", "suppressed": False, "proficiency_rate": 27.4, "participation_rate": 98.0}
    review = {"status": "approaching", "goals": [goal], "metrics": [everyone]}
    assert review_reasons(review) == ["Approaching: 27% proficient; participation 98%; All students Proficiency rate: "
                                      "27% against a target of 30% (Approaching)."]
