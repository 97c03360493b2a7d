"""Quiet hours, the daily digest and retry backoff, as pure functions of time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from ezone_notifications.deliveries.timing import quiet_hours_end, retry_delay, todays_digest

NEW_YORK = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


@pytest.mark.parametrize(("at", "expected"), [
    (ny(2026, 11, 10, 23, 30), ny(2026, 11, 11, 7, 0)),  # before midnight: ends tomorrow morning
    (ny(2026, 11, 11, 2, 0), ny(2026, 11, 11, 7, 0)),  # after midnight: ends this morning
    (ny(2026, 11, 10, 22, 0), ny(2026, 11, 11, 7, 0)),  # the start is quiet
    (ny(2026, 11, 11, 7, 0), None),  # the end is not
    (ny(2026, 11, 11, 12, 0), None),
])
def test_overnight_quiet_hours_end_the_next_morning(at: datetime, expected: datetime | None) -> None:
    assert quiet_hours_end(at, NEW_YORK, time(22, 0), time(7, 0)) == expected


@pytest.mark.parametrize(("at", "expected"), [
    (ny(2026, 11, 11, 12, 15), ny(2026, 11, 11, 13, 0)),
    (ny(2026, 11, 11, 11, 59), None),
    (ny(2026, 11, 11, 13, 0), None),
])
def test_quiet_hours_within_one_day(at: datetime, expected: datetime | None) -> None:
    assert quiet_hours_end(at, NEW_YORK, time(12, 0), time(13, 0)) == expected


def test_quiet_hours_are_read_in_the_members_time_zone_whatever_the_instants_zone() -> None:
    at = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # 23:00 the day before in New York, 04:00 in London
    assert quiet_hours_end(at, NEW_YORK, time(22, 0), time(7, 0)) == ny(2026, 11, 11, 7, 0)
    assert quiet_hours_end(at, ZoneInfo("Europe/London"), time(22, 0), time(7, 0)) == datetime(2026, 11, 11, 7, 0, tzinfo=UTC)
    assert quiet_hours_end(at, NEW_YORK, time(22, 0), time(7, 0)).tzinfo is UTC


def test_an_end_skipped_by_the_spring_forward_falls_just_after_the_gap() -> None:
    # 8 March 2026: New York's clocks go from 02:00 EST straight to 03:00 EDT; 02:30 never happens.
    end = quiet_hours_end(ny(2026, 3, 8, 1, 0), NEW_YORK, time(22, 0), time(2, 30))
    assert end == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert end.astimezone(NEW_YORK).hour == 3


def test_an_end_on_the_autumn_night_is_its_first_occurrence() -> None:
    # 1 November 2026: 01:00–02:00 happens twice in New York (EDT, then EST).
    end = quiet_hours_end(ny(2026, 11, 1, 0, 30), NEW_YORK, time(22, 0), time(1, 30))
    assert end == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_todays_digest_is_due_once_its_local_time_has_passed() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    before = datetime(2026, 11, 10, 21, 59, tzinfo=UTC)  # 06:59 on the 11th in Tokyo
    after = datetime(2026, 11, 10, 22, 0, tzinfo=UTC)  # 07:00
    assert todays_digest(before, tokyo, time(7, 0)) is None
    assert todays_digest(after, tokyo, time(7, 0)) == (date(2026, 11, 11), after)
    # Late at night it is still today's digest (covering what was held before 07:00), not tomorrow's.
    assert todays_digest(datetime(2026, 11, 11, 14, 0, tzinfo=UTC), tokyo, time(7, 0)) == (date(2026, 11, 11), after)


def test_retry_delay_doubles_up_to_its_cap() -> None:
    assert [retry_delay(n, 2.0, 3600.0) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert retry_delay(12, 2.0, 3600.0) == 3600.0
    assert retry_delay(10_000, 2.0, 3600.0) == 3600.0  # no overflow however often it failed
