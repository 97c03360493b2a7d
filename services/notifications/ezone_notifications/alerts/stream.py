"""Live alerts for open pages: one LISTEN connection per process fans NOTIFYs out to the streams open in it.

The `alerts` table's trigger NOTIFYs at commit with the alert's id, zone and recipient, and the alert itself when it
fits in a NOTIFY; each open stream has a queue and receives only its own member's notices. The listener connects when the first stream opens and closes
with the last, so a process that serves no page holds no extra connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from ezone_kit.db import asyncpg_dsn

_log = logging.getLogger("ezone.notifications.stream")
CHANNEL = "ezone_notifications_alerts"


@dataclass(frozen=True)
class AlertNotice:
    alert_id: str
    op: str  # insert | update
    alert: dict[str, Any] | None  # the alert as committed (the inbox API's fields); None: too long for a NOTIFY


class AlertHub:
    def __init__(self, database_url: str) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._subscribers: dict[tuple[str, str], set[asyncio.Queue[AlertNotice | None]]] = {}
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        message = orjson.loads(payload)
        queues = self._subscribers.get((message["zone"], message["recipient"]))
        if queues:
            notice = AlertNotice(message["id"], message["op"], message.get("alert"))
            for queue in queues:
                queue.put_nowait(notice)

    def _on_lost(self, _connection: object) -> None:
        # Wake every stream so it ends; the browser's EventSource reconnects and catches up by Last-Event-ID.
        for queues in self._subscribers.values():
            for queue in queues:
                queue.put_nowait(None)
        self._connection = None

    @contextlib.asynccontextmanager
    async def subscribe(self, zone_id: str, recipient: str) -> AsyncIterator[asyncio.Queue[AlertNotice | None]]:
        queue: asyncio.Queue[AlertNotice | None] = asyncio.Queue()
        async with self._lock:
            if self._connection is None or self._connection.is_closed():
                self._connection = await asyncpg.connect(self._dsn)
                self._connection.add_termination_listener(self._on_lost)
                await self._connection.add_listener(CHANNEL, self._on_notify)
            self._subscribers.setdefault((zone_id, recipient), set()).add(queue)
        try:
            yield queue
        finally:
            async with self._lock:
                queues = self._subscribers.get((zone_id, recipient), set())
                queues.discard(queue)
                if not queues:
                    self._subscribers.pop((zone_id, recipient), None)
                if not self._subscribers and self._connection is not None:
                    connection, self._connection = self._connection, None
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
