"""How the board's pages are rendered: the templates, the headers every page carries, and words for statuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))

# Everything the page uses is served from here; nothing runs inline, so injected markup could not run either.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",  # the dev sign-in link carries a token in its URL
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

STATUS_WORDS = {"meeting": "Meeting", "approaching": "Approaching", "off_track": "Off track",
                "insufficient_data": "Insufficient data", "draft": "Draft", "submitted": "Submitted for a vote",
                "returned": "Returned", "approved": "Approved"}
SUBJECT_WORDS = {"ELA": "ELA", "MATH": "Math", "SCI": "Science"}
SUBGROUP_WORDS = {"el": "English learners", "swd": "Students with disabilities",
                  "afr_american_black": "African American/Black", "hispanic_latino": "Hispanic/Latino"}


def words(key: Any) -> str:
    text = str(key)
    known = STATUS_WORDS.get(text) or SUBJECT_WORDS.get(text) or SUBGROUP_WORDS.get(text)
    return known or text[:1].upper() + text[1:].replace("_", " ")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def figure(value: float | None, metric: str) -> str:
    """A goal's figure: a rate as a percentage, anything else (a growth percentile, a scaled score) as a number."""
    if value is None:
        return "—"
    return percent(value) if metric.endswith("_rate") else f"{value:g}"


def points(value: float | None) -> str:
    """A change in points, signed: "+5.3", "-7.5"."""
    return "—" if value is None else f"{value:+.1f}"


templates.filters["words"] = words
templates.filters["percent"] = percent
templates.filters["figure"] = figure
templates.filters["points"] = points


def render(template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(template).render(**context), status_code=status_code,
                        headers=PAGE_HEADERS)


def _sentence(reason: Any) -> str | None:
    if isinstance(reason, str):
        return reason
    if isinstance(reason, dict):
        return reason.get("sentence") or reason.get("text") or reason.get("summary")
    return None


def review_reasons(review: dict[str, Any]) -> list[str]:
    """The sentences that say why a review has its status: those the review carries, else its status and figures."""
    carried = review.get("reasons") or ([review["reason"]] if review.get("reason") else [])
    sentences = [s for s in map(_sentence, carried) if s]
    sentences += [s for goal in review.get("goals") or [] if (s := _sentence(goal.get("reason")))]
    if sentences:
        return list(dict.fromkeys(sentences))
    everyone = next((m for m in review.get("metrics") or [] if m.get("subgroup") == "all_students"), None)
    figures = []
    if everyone and not everyone.get("suppressed"):
        figures.append(f"{percent(everyone.get('proficiency_rate'))} proficient")
        if everyone.get("participation_rate") is not None:
            figures.append(f"participation {percent(everyone['participation_rate'])}")
    elif everyone:
        figures.append(f"{everyone.get('n_tested')} students tested, too few to report")
    for goal in review.get("goals") or []:
        metric = goal["metric"]
        figures.append(f"{words(goal['subgroup'])} {words(metric)}: {figure(goal.get('actual'), metric)} "
                       f"against a target of {figure(goal.get('target'), metric)} ({words(goal['status'])})")
    return [f"{words(review['status'])}: " + "; ".join(figures) + "." if figures else f"{words(review['status'])}."]
