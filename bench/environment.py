"""The embedded stack the benchmarks run on: PostgreSQL 18 and the Tansu broker in a temp dir,
started here and stopped at the end, whatever happens in between."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ezone_kit.devkeys import ensure_dev_keys
from ezone_kit.settings import KitSettings

from ezone.stack import EmbeddedBroker, EmbeddedPostgres
from tests.stack import stack_settings


@dataclass(frozen=True)
class Sizes:
    relay_rows: int
    relay_keys: int
    consumer_events: int
    latency_rate_per_s: float
    latency_duration_s: float
    alert_batches_per_s: float
    alert_duration_s: float
    fanout_reviews: int


FULL = Sizes(relay_rows=50_000, relay_keys=1_000, consumer_events=50_000, latency_rate_per_s=20, latency_duration_s=30,
             alert_batches_per_s=20, alert_duration_s=60, fanout_reviews=1_800)
QUICK = Sizes(relay_rows=5_000, relay_keys=1_000, consumer_events=5_000, latency_rate_per_s=20, latency_duration_s=5,
              alert_batches_per_s=20, alert_duration_s=5, fanout_reviews=200)


@dataclass(frozen=True)
class BenchEnvironment:
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    key_dir: Path
    sizes: Sizes
    export_traces: bool = False  # `--traces`: alert_latency's zone exports its spans (bench/traces.py)

    def settings(self, database_url: str, **overrides: object) -> KitSettings:
        """The settings the integration tests run the zone with (see tests/stack.py)."""
        return KitSettings(**stack_settings(database_url, self.broker.bootstrap_servers, self.key_dir, **overrides))


@contextlib.contextmanager
def embedded_environment(sizes: Sizes) -> Iterator[BenchEnvironment]:
    root = Path(tempfile.mkdtemp(prefix="ezone-bench-"))
    try:
        with contextlib.ExitStack() as cleanup:
            key_dir = root / "keys"
            ensure_dev_keys(key_dir)
            postgres = EmbeddedPostgres(root / "pg" / "data")
            cleanup.callback(postgres.stop)
            postgres.start()
            broker = EmbeddedBroker(log_path=root / "tansu.log")
            cleanup.callback(broker.stop)
            broker.start()
            yield BenchEnvironment(postgres, broker, key_dir, sizes)
    finally:
        shutil.rmtree(root, ignore_errors=True)
