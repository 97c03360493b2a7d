"""Every URL ezone puts in an alert, an email or the board page: a page of the board, under the public base URL.

A person follows these links in a browser signed in to the board, so none of them is another service's API: the
board page reads plans, reviews and orders on the person's behalf (see `backend`). The base is
`EZONE_NOTIFICATIONS_URL`, the notifications service as browsers reach it (docs/deploy.md).
"""

from __future__ import annotations

from urllib.parse import quote

from ..config import Settings

PAGE = "/board"


def _page(settings: Settings, path: str = "") -> str:
    return f"{settings.ezone_notifications_url.rstrip('/')}{PAGE}{path}"


def board_page(settings: Settings) -> str:
    return _page(settings)


def plan_page(settings: Settings, school_id: object, school_year: str) -> str:
    return _page(settings, f"/schools/{school_id}/plans/{quote(school_year)}")


def review_page(settings: Settings, school_id: object, school_year: str, subject: str) -> str:
    return _page(settings, f"/schools/{school_id}/reviews/{quote(school_year)}/{quote(subject)}")


def school_page(settings: Settings, school_id: object) -> str:
    return _page(settings, f"/schools/{school_id}")


def orders_page(settings: Settings, school_id: object) -> str:
    return school_page(settings, school_id) + "#orders"


def preferences_page(settings: Settings) -> str:
    return _page(settings, "/preferences")


def alert_page(settings: Settings, alert_id: object) -> str:
    return _page(settings, f"/alerts/{alert_id}")


def evidence_page(settings: Settings) -> str:
    return _page(settings, "/evidence")


def partner_evidence_page(settings: Settings, partner_id: object) -> str:
    return _page(settings, f"/partners/{partner_id}/evidence")
