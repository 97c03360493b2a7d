"""A connection taken from the pool only if a read needs one: most Ed-Fi requests are checked from caches
alone, and a connection held (or opened past the pool's size) for each of them cost more than the checks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Executable
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class LazyConnection:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def execute(self, statement: Executable, parameters: dict[str, Any] | None = None) -> Result[Any]:
        if self._connection is None:
            self._connection = await self._engine.connect()
        return await self._connection.execute(statement, parameters)

    async def __aenter__(self) -> LazyConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


# Where the checks read: a transaction's connection, or one taken only when needed.
Reader = AsyncConnection | LazyConnection
