"""The review worker's cooldown: a key reviewed a moment ago waits out the interval; others, and it afterwards, go."""

from __future__ import annotations

import uuid

from ezone_results.review.worker import Cooldown

SCHOOL = uuid.uuid4()
MATH, ELA = (SCHOOL, "2025-26", "MATH"), (SCHOOL, "2025-26", "ELA")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_reviewed_within_the_interval_is_held_back_until_it_has_passed():
    clock = Clock()
    cooldown = Cooldown(0.25, clock)
    cooldown.reviewed([MATH])
    clock.now += 0.1
    assert cooldown.cooling() == [MATH]
    assert abs(cooldown.seconds_until_next() - 0.15) < 1e-9
    clock.now += 0.15
    assert cooldown.cooling() == []
    assert cooldown.seconds_until_next() is None


def test_only_the_keys_reviewed_are_held_back_each_from_its_own_review():
    clock = Clock()
    cooldown = Cooldown(0.25, clock)
    cooldown.reviewed([MATH])
    clock.now += 0.2
    cooldown.reviewed([ELA])
    assert sorted(cooldown.cooling()) == sorted([MATH, ELA])
    clock.now += 0.1
    assert cooldown.cooling() == [ELA]


def test_no_interval_holds_nothing_back():
    cooldown = Cooldown(0.0)
    cooldown.reviewed([MATH])
    assert cooldown.cooling() == []
