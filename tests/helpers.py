"""Small helpers the integration tests share."""

from __future__ import annotations

from sqlalchemy import text

from ezone.stack import wait_for
from tests.stack import Stack

DUGGAN = {"code": "02810505", "name": "John J Duggan Academy", "grade_span": "6-12", "enrollment": 980}


async def register_zone(stack: Stack, zone_id: str) -> None:
    response = await stack.clients["plans"].post(
        "/zones", json={"id": zone_id, "name": f"Zone {zone_id}", "district": "Springfield"}, headers=stack.auth("admin", zone_id)
    )
    assert response.status_code == 201, response.text


async def register_school(stack: Stack, zone_id: str, school: dict | None = None, **headers: str) -> dict:
    response = await stack.clients["plans"].post(
        f"/zones/{zone_id}/schools", json=school or DUGGAN, headers={**stack.auth("admin", zone_id), **headers}
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
