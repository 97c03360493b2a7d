from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from ezone_kit.devkeys import ensure_dev_keys

from ezone.stack import EmbeddedBroker, EmbeddedPostgres, SmtpSink
from tests.stack import Stack, new_database, running_stack


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    ensure_dev_keys(directory)
    return directory


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    # Not under pytest's basetemp: pytest prunes old basetemps, which concurrent sessions would share.
    root = Path(tempfile.mkdtemp(prefix="ezone-test-pg-"))
    server = EmbeddedPostgres(root / "data")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    instance = EmbeddedBroker(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session", autouse=True)
def metric_reader() -> InMemoryMetricReader:
    """Installed before any service starts, whichever test runs first, so the kit keeps this provider and tests can
    read its metrics."""
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


@pytest.fixture(scope="session")
def smtp_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpSink]:
    """The mail server of every stack the tests start: it keeps what it receives, for tests to read."""
    sink = SmtpSink(tmp_path_factory.mktemp("mail"))
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
async def zone_stack(
    postgres: EmbeddedPostgres, broker: EmbeddedBroker, key_dir: Path, metric_reader: InMemoryMetricReader,
    smtp_sink: SmtpSink,
) -> AsyncIterator[Stack]:
    """The whole zone, shared by the tests that do not disturb it (each uses its own zone id)."""
    database_url = await new_database(postgres)
    async with running_stack(database_url, broker.bootstrap_servers, key_dir,
                             ezone_smtp_host=smtp_sink.host, ezone_smtp_port=smtp_sink.port) as stack:
        yield stack


@pytest.fixture
def zone_id() -> str:
    return f"z-{uuid.uuid4().hex[:12]}"
