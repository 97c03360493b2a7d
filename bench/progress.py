"""Bounded waits that show a progress bar while an in-memory counter climbs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# Reading a counter is free; 10 ms keeps the error on multi-second measurements under 1%.
POLL_INTERVAL_S = 0.01


def new_progress(console) -> Progress:  # noqa: ANN001 - a rich Console
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )


async def wait_for_count(progress: Progress, description: str, count: Callable[[], int], total: int, timeout_s: float) -> None:
    """Return once `count()` reaches `total`; raise TimeoutError after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    bar = progress.add_task(description, total=total)
    try:
        while (done := count()) < total:
            progress.update(bar, completed=done)
            if loop.time() > deadline:
                raise TimeoutError(f"{description}: {done} of {total} after {timeout_s:.0f}s")
            await asyncio.sleep(POLL_INTERVAL_S)
    finally:
        progress.remove_task(bar)
