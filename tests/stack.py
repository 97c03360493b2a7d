"""A whole zone in one test process: the four services' apps, relays and consumers, in-process,
on a real PostgreSQL database and a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from asgi_lifespan import LifespanManager
from ezone_kit.bus import ensure_topics
from ezone_kit.devkeys import mint_token
from ezone_kit.migrations import upgrade
from ezone_kit.service import Kit, create_app
from ezone_kit.settings import KitSettings

from ezone.services import SERVICES, all_topics
from ezone.stack import EmbeddedPostgres, free_port


def stack_settings(database_url: str, bootstrap_servers: str, key_dir: Path, **overrides: object) -> dict[str, object]:
    return {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap_servers,
        "kafka_enable_idempotence": False,  # Tansu rejects the idempotent producer
        "kafka_session_timeout_ms": 2_000,  # a group join on Tansu takes half of it
        "kafka_heartbeat_interval_ms": 300,
        "kafka_fetch_max_wait_ms": 20,  # as `ezone up` sets it for the embedded broker
        "kafka_topic_partitions": 1,  # as `ezone up` makes them on the embedded broker
        "ezone_jwks_url": str(key_dir / "jwks.json"),
        "ezone_relay_poll_interval_s": 0.5,
        "ezone_consumer_retry_backoff_s": 0.02,
        "ezone_consumer_max_attempts": 3,
        **overrides,
    }


async def new_database(postgres: EmbeddedPostgres) -> str:
    name = f"ezone_{uuid.uuid4().hex[:10]}"
    await postgres.ensure_database(name)
    database_url = postgres.url(name)
    for entry in SERVICES:
        await upgrade(entry.package, database_url, entry.definition.schema)
    return database_url


@dataclass
class Stack:
    database_url: str
    bootstrap_servers: str
    key_dir: Path
    overrides: dict[str, object] = field(default_factory=dict)
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    kits: dict[str, Kit] = field(default_factory=dict)
    _exit: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    def settings(self, **overrides: object) -> KitSettings:
        return KitSettings(**stack_settings(self.database_url, self.bootstrap_servers, self.key_dir, **self.overrides, **overrides))

    async def start(self, only: tuple[str, ...] | None = None) -> Stack:
        await ensure_topics(self.settings(), all_topics())
        for entry in SERVICES:
            if only is not None and entry.name not in only:
                continue
            definition = entry.definition
            app = create_app(definition, definition.settings_class(**stack_settings(
                self.database_url, self.bootstrap_servers, self.key_dir, **self.overrides)))
            manager = await self._exit.enter_async_context(LifespanManager(app))
            self.kits[entry.name] = app.state.kit
            self.clients[entry.name] = await self._exit.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url=f"http://{entry.name}")
            )
        return self

    async def stop(self) -> None:
        await self._exit.aclose()
        self.clients.clear()
        self.kits.clear()

    def token(self, role: str, zone: str, schools: list[str] | None = None, **claims: object) -> str:
        return mint_token(self.key_dir, role=role, zone=zone, schools=schools, **claims)

    def auth(self, role: str, zone: str, schools: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, zone, schools)}"}


@contextlib.asynccontextmanager
async def running_stack(database_url: str, bootstrap_servers: str, key_dir: Path, **overrides: object) -> AsyncIterator[Stack]:
    stack = Stack(database_url, bootstrap_servers, key_dir, overrides)
    try:
        yield await stack.start()
    finally:
        await stack.stop()


@contextlib.asynccontextmanager
async def served(stack: Stack, service: str, **overrides: object) -> AsyncIterator[str]:
    """One service's API on a real port (for streams and browsers); its relay and consumers stay in `stack`,
    so the shared consumer groups keep one member each. Yields the base URL."""
    definition = next(entry.definition for entry in SERVICES if entry.name == service)
    settings = definition.settings_class(**stack_settings(
        stack.database_url, stack.bootstrap_servers, stack.key_dir,
        **{**stack.overrides, "ezone_run_consumers": False, "ezone_run_relay": False, **overrides}))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(definition, settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # raises why it could not start
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
