"""Which deliveries an alert gets, and what they carry: planning and content without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from email import message_from_bytes, policy

import orjson
import pytest
from ezone_notifications.alerts.records import RaisedAlert
from ezone_notifications.config import Settings
from ezone_notifications.deliveries.content import AlertContent, alert_email, webhook_body
from ezone_notifications.deliveries.planning import Endpoint, plan
from ezone_notifications.preferences.rules import Preferences, default_preferences

SETTINGS = Settings(ezone_default_timezone="America/New_York", ezone_email_from="ezone alerts <alerts@zone.example>")
DEFAULTS = default_preferences(SETTINGS)
NOON_NY = datetime(2026, 11, 11, 17, 0, tzinfo=UTC)
ZONE = "springfield"
EVENT = uuid.UUID(int=1)


def alert(recipient: str, severity: str, *, event: uuid.UUID = EVENT, at: datetime = NOON_NY) -> RaisedAlert:
    return RaisedAlert(
        id=uuid.uuid5(event, recipient), zone_id=ZONE, recipient=recipient, audience="board", severity=severity,
        title="Duggan: math off track", body="Proficiency 31% against a goal of 45%.", school_id=uuid.UUID(int=7),
        source_event_id=event, source_type="review.completed", trace_id=None, created_at=at,
        links={"review": "http://results/reviews/1"})


def endpoint(owner: str | None, *severities: str, n: int = 1) -> Endpoint:
    return Endpoint(uuid.UUID(int=100 + n), ZONE, owner, f"https://hooks.example.org/{n}",
                    frozenset(severities or ("critical", "warning", "info")))


def summary(planned) -> set[tuple]:  # noqa: ANN001
    return {(p.recipient, p.channel, p.address, p.status, p.next_attempt_at) for p in planned}


def test_by_default_critical_and_warning_go_out_at_once_and_info_waits_for_the_digest() -> None:
    member = "seat-1@springfield.example"
    hook = endpoint(member)
    planned = plan([alert(member, "critical"), alert(member, "info", event=uuid.UUID(int=2))], {}, DEFAULTS, [hook])
    assert summary(planned) == {
        (member, "email", member, "pending", None),
        (member, "webhook", hook.url, "pending", None),
        (member, "email", member, "held_for_digest", None),  # info: no webhook by default
    }


def test_no_email_without_an_address_and_the_preferences_address_wins() -> None:
    assert plan([alert("principal-0281", "warning")], {}, DEFAULTS, []) == []
    chosen = Preferences(**{**DEFAULTS.__dict__, "email": "me@home.example"})
    planned = plan([alert("principal-0281", "warning")], {(ZONE, "principal-0281"): chosen}, DEFAULTS, [])
    assert [(p.channel, p.address) for p in planned] == [("email", "me@home.example")]


def test_quiet_hours_defer_warning_and_info_pushes_to_their_end_but_not_critical() -> None:
    member = "seat-2@springfield.example"
    quiet = Preferences(**{**DEFAULTS.__dict__, "quiet_hours": (time(11, 0), time(14, 0)), "digest": False,
                           "channels": {s: frozenset({"email", "webhook"}) for s in ("critical", "warning", "info")}})
    hook = endpoint(member)
    raised = [alert(member, severity, event=uuid.UUID(int=n)) for n, severity in enumerate(("critical", "warning", "info"))]
    planned = plan(raised, {(ZONE, member): quiet}, DEFAULTS, [hook])
    end = datetime(2026, 11, 11, 19, 0, tzinfo=UTC)  # 14:00 in New York
    assert sorted((a.severity, p.channel, p.next_attempt_at) for a in raised for p in planned if p.alert_id == a.id) == [
        ("critical", "email", None), ("critical", "webhook", None),
        ("info", "email", end), ("info", "webhook", end),
        ("warning", "email", end), ("warning", "webhook", end),
    ]


def test_a_members_endpoint_gets_only_the_severities_it_takes_and_only_channels_the_member_wants() -> None:
    member = "seat-3@springfield.example"
    critical_only = endpoint(member, "critical", n=1)
    everything = endpoint(member, n=2)
    planned = plan([alert(member, "warning")], {}, DEFAULTS, [critical_only, everything])
    assert {p.endpoint_id for p in planned if p.channel == "webhook"} == {everything.id}
    no_webhooks = Preferences(**{**DEFAULTS.__dict__, "channels": {"critical": frozenset({"email"}),
                                                                  "warning": frozenset(), "info": frozenset()}})
    assert plan([alert(member, "warning")], {(ZONE, member): no_webhooks}, DEFAULTS, [everything]) == []


def test_a_zone_endpoint_gets_one_delivery_per_event_with_its_most_urgent_alert() -> None:
    zone_hook, warnings_only = endpoint(None, n=1), endpoint(None, "warning", n=2)
    raised = [alert(f"seat-{n}@springfield.example", "warning") for n in range(1, 8)] + [alert("principal-1", "critical")]
    planned = [p for p in plan(raised, {}, DEFAULTS, [zone_hook, warnings_only]) if p.recipient is None]
    assert len(planned) == 2
    by_endpoint = {p.endpoint_id: p for p in planned}
    assert by_endpoint[zone_hook.id].alert_id == raised[-1].id  # the critical one
    assert by_endpoint[warnings_only.id].alert_id in {a.id for a in raised[:-1]}
    assert all(p.next_attempt_at is None for p in planned)  # a zone has no quiet hours


def test_planning_again_gives_the_same_ids_whatever_the_batch() -> None:
    raised = [alert(f"seat-{n}@springfield.example", "warning") for n in range(1, 4)]
    endpoints = [endpoint(None), endpoint("seat-1@springfield.example", n=2)]
    first = {p.id for p in plan(raised, {}, DEFAULTS, endpoints)}
    again = {p.id for part in (raised[:1], raised[1:]) for p in plan(part, {}, DEFAULTS, endpoints)}
    assert first == again and len(first) == 3 + 1 + 1


def content() -> AlertContent:
    raised = alert("seat-1@springfield.example", "critical")
    return AlertContent(id=raised.id, zone_id=ZONE, recipient=raised.recipient, audience="board", severity="critical",
                        title="<Duggan> & math", body="Participation 88% < 95%.", links={"review": "http://r/1?a=1&b=2"},
                        school_id=raised.school_id, school_name="John J Duggan Academy", source_event_id=EVENT,
                        source_type="review.completed", raised_at=NOON_NY)


def test_an_alert_email_has_text_and_escaped_html_parts_and_a_message_id_from_the_delivery() -> None:
    delivery = uuid.UUID(int=42)
    # As the receiving mail client reads it.
    message = message_from_bytes(bytes(alert_email(SETTINGS, delivery, "seat-1@springfield.example", content())),
                                 policy=policy.default)
    assert message["Message-ID"] == f"<{delivery}@zone.example>"
    assert message["Subject"] == "[ezone] Critical: <Duggan> & math"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "<Duggan> & math" in text and "Participation 88% < 95%." in text and "http://r/1?a=1&b=2" in text
    assert "&lt;Duggan&gt; &amp; math" in html and "<Duggan>" not in html
    assert 'href="http://r/1?a=1&amp;b=2"' in html
    assert f"{SETTINGS.ezone_notifications_url}/board/preferences" in text


def test_a_non_ascii_sender_name_and_subject_are_encoded_and_read_back_as_written() -> None:
    settings = SETTINGS.model_copy(update={"ezone_email_from": "Zoné Board <alerts@zone.example>"})
    email = alert_email(settings, uuid.UUID(int=42), "seat-1@springfield.example", content())
    assert bytes(email).isascii() and email.sender == "alerts@zone.example"
    message = message_from_bytes(bytes(email), policy=policy.default)
    assert message["From"] == "Zoné Board <alerts@zone.example>" and not message.defects


def test_an_address_with_a_line_break_is_refused_rather_than_written_into_the_headers() -> None:
    with pytest.raises(ValueError, match="not an email address"):
        alert_email(SETTINGS, uuid.UUID(int=42), "seat-1@springfield.example\r\nBcc: someone@else.example", content())


def test_a_zone_endpoints_body_names_no_recipient() -> None:
    member = orjson.loads(webhook_body(uuid.UUID(int=42), content(), zone_wide=False))
    zone = orjson.loads(webhook_body(uuid.UUID(int=43), content(), zone_wide=True))
    assert member["alert"]["recipient"] == "seat-1@springfield.example" and member["scope"] == "member"
    assert "recipient" not in zone["alert"] and "id" not in zone["alert"] and zone["scope"] == "zone"
    assert zone["delivery_id"] == str(uuid.UUID(int=43)) and zone["type"] == "alert.raised"
    assert zone["source_event"] == {"id": str(EVENT), "type": "review.completed"}
