"""The group writer of Ed-Fi POSTs (ezone_results.edfi.group_commit): each item gets its own outcome, groups hold at
most `max_group` items, a failed group fails only its own items, and an item that finds no write in flight is
written at once. (What groups mean for the API, through HTTP, is in tests/integration/results/test_edfi.py.)"""

from __future__ import annotations

import asyncio

from ezone_results.edfi.group_commit import GroupCommit


async def test_the_group_writer_answers_each_item_with_its_own_outcome_and_takes_at_most_max_group():
    written: list[list[int]] = []

    async def write(group):  # noqa: ANN001, ANN202
        written.append(list(group))
        return [ValueError(f"{item} is bad") if item == 3 else item * 10 for item in group]

    writer = GroupCommit(write, max_group=4)
    outcomes = await asyncio.gather(*(writer.submit(item) for item in range(6)), return_exceptions=True)

    assert [str(o) if isinstance(o, ValueError) else o for o in outcomes] == [0, 10, 20, "3 is bad", 40, 50]
    assert written == [[0, 1, 2, 3], [4, 5]]


async def test_a_writer_that_fails_as_a_whole_fails_every_item_of_that_group_and_the_next_group_is_written():
    calls = 0

    async def write(group):  # noqa: ANN001, ANN202
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database went away")
        return list(group)

    writer = GroupCommit(write, max_group=10)
    first = await asyncio.gather(*(writer.submit(item) for item in range(3)), return_exceptions=True)
    second = await asyncio.gather(*(writer.submit(item) for item in range(3)))

    assert [type(o) for o in first] == [RuntimeError] * 3
    assert second == [0, 1, 2]


async def test_items_that_find_no_write_in_flight_are_written_without_lingering():
    async def write(group):  # noqa: ANN001, ANN202
        return list(group)

    writer = GroupCommit(write, max_group=10, linger_s=3600)  # a linger this test would never outlast

    assert await asyncio.wait_for(writer.submit(1), timeout=30) == 1
    assert await asyncio.wait_for(asyncio.gather(writer.submit(2), writer.submit(3)), timeout=30) == [2, 3]
