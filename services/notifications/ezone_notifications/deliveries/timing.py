"""When a delivery may go out: quiet hours, the daily digest and retry backoff, as pure functions of time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time on a local date, as an instant (UTC). A time skipped by a DST change (02:30 on the
    spring-forward night) falls just after the gap; a repeated one (01:30 in autumn) is its first occurrence."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def quiet_hours_end(at: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the quiet hours that `at` falls in end, or None when `at` is outside them.

    `start` and `end` are local times in `zone`; a period whose end is earlier than its start runs overnight
    (22:00–07:00). The start is quiet, the end is not.
    """
    local = at.astimezone(zone)
    clock = local.time()
    if start <= end:
        quiet, end_day = start <= clock < end, local.date()
    else:
        quiet = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    return local_instant(end_day, end, zone) if quiet else None


def todays_digest(now: datetime, zone: ZoneInfo, digest_time: time) -> tuple[date, datetime] | None:
    """Today's digest in `zone` once its time has passed: the local date and the instant of the digest time,
    which is also the cutoff (alerts held before it are in today's digest, later ones in tomorrow's). None before."""
    today = now.astimezone(zone).date()
    cutoff = local_instant(today, digest_time, zone)
    return (today, cutoff) if now >= cutoff else None


def retry_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, …): base, 2×base, 4×base, … up to max."""
    return min(max_s, base_s * 2 ** min(attempt - 1, 62))
