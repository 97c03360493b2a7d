"""Each service's Alembic history builds exactly the schema its models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from ezone.services import SERVICES
from tests.stack import new_database


@pytest.fixture(scope="module")
async def migrated_database_url(postgres) -> str:
    return await new_database(postgres)


@pytest.mark.parametrize("entry", SERVICES, ids=lambda e: e.name)
async def test_migrations_leave_nothing_for_autogenerate_to_add(migrated_database_url, entry):
    definition = entry.definition
    engine = create_async_engine(migrated_database_url)

    def differences(connection):
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, parents: type_ != "schema" or name == definition.schema,
                "version_table_schema": definition.schema,
            },
        )
        return compare_metadata(context, definition.metadata)

    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(differences)
    finally:
        await engine.dispose()
    assert diff == [], f"{entry.name}: models and migrations differ; add a migration (alembic revision --autogenerate): {diff}"
