"""Small helpers the integration tests share."""

from __future__ import annotations

import itertools

from sqlalchemy import text

from ezone.stack import wait_for
from tests.stack import Stack

_school_codes = itertools.count(1)
DUGGAN_NAME = "John J Duggan Academy"


def school_code() -> str:
    """A state school code no other school of this test session has: a code belongs to one zone at a time, and the
    session's zones share one database. Eight digits from 9: no code in the state's files starts with 9."""
    return f"9{next(_school_codes):07d}"


def duggan() -> dict:
    """John J Duggan Academy's registration, under a code of its own (see school_code)."""
    return {"code": school_code(), "name": DUGGAN_NAME, "grade_span": "6-12", "enrollment": 980}


async def register_zone(stack: Stack, zone_id: str) -> None:
    response = await stack.clients["plans"].post(
        "/zones", json={"id": zone_id, "name": f"Zone {zone_id}", "district": "Springfield"}, headers=stack.auth("admin", zone_id)
    )
    assert response.status_code == 201, response.text


async def register_school(stack: Stack, zone_id: str, school: dict | None = None, **headers: str) -> dict:
    """Registers `school`, by default Duggan under a code of its own."""
    response = await stack.clients["plans"].post(
        f"/zones/{zone_id}/schools", json=school or duggan(), headers={**stack.auth("admin", zone_id), **headers}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


async def scalar(stack: Stack, sql: str, **params: object):
    async with stack.kits["plans"].engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def wait_for_count(stack: Stack, sql: str, expected: int, timeout_s: float = 20.0, **params: object) -> None:
    async def reached() -> bool:
        return await scalar(stack, sql, **params) == expected

    await wait_for(reached, timeout_s, what=f"{sql} == {expected}")
