"""Idempotency-Key: a retried write answers as the first one did, and has no second effect.

The key is claimed inside the request's own transaction: if the request fails, the claim goes with
the rollback; a concurrent duplicate waits on the claim and then finds what the first one made.
The same key with a different request body is refused, because it means a client bug.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
from sqlalchemy import MetaData, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from .problems import Problem

MAX_KEY_LENGTH = 255


def request_digest(body: object) -> str:
    """A stable fingerprint of a request body (any JSON-able value, e.g. model_dump(mode="json"))."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Replay:
    """The earlier request with this key: what it created (None while it recorded nothing)."""

    resource_id: str | None


class IdempotencyKeys:
    def __init__(self, metadata: MetaData) -> None:
        self.table = metadata.tables[f"{metadata.schema}.idempotency_keys"]

    async def claim(self, session: AsyncSession, scope: str, key: str, digest: str) -> Replay | None:
        """None: this request is the first with the key and goes ahead. A Replay: answer as before."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise Problem(400, f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.")
        claimed = await session.execute(
            pg_insert(self.table).values(scope=scope, key=key, request_digest=digest)
            .on_conflict_do_nothing(index_elements=[self.table.c.scope, self.table.c.key])
            .returning(self.table.c.key)
        )
        if claimed.first() is not None:
            return None
        earlier = (
            await session.execute(select(self.table).where(self.table.c.scope == scope, self.table.c.key == key))
        ).one()
        if earlier.request_digest != digest:
            raise Problem(
                422,
                f"Idempotency-Key {key!r} was already used for a different request; use a new key for a new request.",
                type="https://ezone.dev/problems/idempotency-key-reused",
            )
        return Replay(earlier.resource_id)

    async def record(self, session: AsyncSession, scope: str, key: str, resource_id: str) -> None:
        await session.execute(
            update(self.table).where(self.table.c.scope == scope, self.table.c.key == key).values(resource_id=resource_id)
        )
