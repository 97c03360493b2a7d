"""Group commit: concurrent requests hand their item to one writer, which writes every item waiting in one go.

An item that finds no write in flight is written at once (the writer only lets the event loop take one
turn, so that requests ready at that moment join it). While a write is in flight, the items that arrive
wait for it and go together in the next one, which waits up to `linger_s` more for others: items queued
during a write mean requests are streaming in. So a busy service writes in groups about as large as its
concurrency, and an idle one item by item without waiting. Each request gets its own outcome: the writer
answers per item, never one error for the group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

# Writes one group; answers one outcome (or the exception for that item alone) per item, in order.
GroupWriter = Callable[[Sequence[Item]], Awaitable[Sequence[Outcome | BaseException]]]


class GroupCommit(Generic[Item, Outcome]):
    """One writer of groups of at most `max_group` items, for the requests of one event loop."""

    def __init__(self, write: GroupWriter, max_group: int, linger_s: float = 0.0) -> None:
        self._write = write
        self._max_group = max_group
        self._linger_s = linger_s
        self._waiting: list[tuple[Item, asyncio.Future[Outcome]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Outcome:
        """The item's outcome once the group it went in has been written (committed)."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            # A task of its own: a request that gives up (client gone) must not cancel the others' write.
            self._writer = asyncio.create_task(self._write_while_waiting(), name="edfi-group-commit")
        return await future

    async def _write_while_waiting(self) -> None:
        group: list[tuple[Item, asyncio.Future[Outcome]]] = []
        try:
            queued = False  # the first group goes at once: a lone request waits for nothing
            while self._waiting:
                if queued and len(self._waiting) < self._max_group:
                    # Items queued up during the last write: requests are streaming in, so a few more join this
                    # group if they arrive within linger_s (fewer, larger groups cost less per item).
                    await asyncio.sleep(self._linger_s)
                else:
                    # One turn of the event loop: requests that are ready to hand in an item at this moment (those
                    # just answered, those just arrived) join this group rather than wait for the next one.
                    await asyncio.sleep(0)
                group, self._waiting = self._waiting[:self._max_group], self._waiting[self._max_group:]
                try:
                    outcomes = await self._write([item for item, _ in group])
                except Exception as exc:  # noqa: BLE001 - the writer failed as a whole: every request of the group hears why
                    outcomes = [exc] * len(group)
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    if future.done():  # its request was cancelled
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
                queued = bool(self._waiting)
        finally:
            self._writer = None
            # Only when cancelled (the app stopping) is anything left unanswered.
            unanswered, self._waiting = group + self._waiting, []
            for _, future in unanswered:
                if not future.done():
                    future.cancel()
