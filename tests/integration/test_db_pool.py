"""The kit's pool checks a connection before use only when it sat idle, and replaces one that died meanwhile."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from ezone_kit import db
from ezone_kit.settings import KitSettings
from sqlalchemy import text

IDLE_S = 0.2


@pytest.fixture
async def engine(postgres, monkeypatch):
    await postgres.ensure_database("ezone_pool")
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", IDLE_S)
    engine = db.create_engine(KitSettings(database_url=postgres.url("ezone_pool"), database_pool_size=1))
    yield engine
    await engine.dispose()


@pytest.fixture
def pings(engine, monkeypatch) -> list[object]:
    pinged: list[object] = []
    ping = engine.dialect.do_ping

    def counting_ping(dbapi_connection: object) -> bool:
        pinged.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counting_ping)
    return pinged


async def backend_pid(engine) -> int:  # noqa: ANN001
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()


async def test_a_connection_used_a_moment_ago_is_not_pinged_and_an_idle_one_is(engine, pings):
    first = await backend_pid(engine)
    assert await backend_pid(engine) == first
    assert pings == []

    await asyncio.sleep(IDLE_S * 1.5)
    assert await backend_pid(engine) == first
    assert len(pings) == 1


async def test_a_connection_that_died_while_idle_is_replaced_before_use(engine, pings, postgres):
    dead = await backend_pid(engine)
    admin = await asyncpg.connect(user="postgres", host=postgres.socket_dir, database="postgres")
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", dead)
    finally:
        await admin.close()
    await asyncio.sleep(IDLE_S * 1.5)

    assert await backend_pid(engine) not in (dead, None)
    assert len(pings) == 1
