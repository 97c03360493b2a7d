"""Platform metrics, the same in every service: consumer throughput and lag, outbox depth and
publish rate, dead-lettered events. Exported by OTLP when OTEL_METRICS_EXPORTER=otlp.

Gauges read numbers the relay and consumers keep up to date, so a metric collection never
queries the database or the broker itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from .settings import KitSettings

if TYPE_CHECKING:
    from .consumer import ConsumerWorker
    from .relay import OutboxRelay


def setup_metrics(service_name: str, settings: KitSettings) -> None:
    """Install an SDK meter provider once per process (tests may have installed theirs first)."""
    if isinstance(metrics.get_meter_provider(), MeterProvider):
        return
    readers = []
    if settings.otel_metrics_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=settings.otel_metric_export_interval))
    resource = Resource.create({"service.name": settings.otel_service_name or service_name})
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


class _Instruments:
    """Created once per process: an instrument name registered twice keeps only its first callback,
    and tests run all four services in one process."""

    def __init__(self) -> None:
        self.services: list[PlatformMetrics] = []
        meter = metrics.get_meter("ezone.kit")
        self.consumed = meter.create_counter(
            "ezone.consumer.events", unit="{event}",
            description="Events a consumer group handled, by outcome: processed, duplicate, dead_lettered.",
        )
        self.published = meter.create_counter("ezone.outbox.published", unit="{event}", description="Outbox events the relay published.")
        meter.create_observable_gauge(
            "ezone.consumer.lag", callbacks=[self._observe(lambda m: ((w.lag, {"group": w.group}) for w in m.workers))],
            unit="{event}", description="Events on the group's assigned partitions not yet processed.",
        )
        meter.create_observable_gauge(
            "ezone.outbox.depth", callbacks=[self._observe(lambda m: ((r.depth, {}) for r in m.relays))],
            unit="{event}", description="Outbox events committed but not yet published.",
        )

    def _observe(self, values: Callable[[PlatformMetrics], Iterable[tuple[int, dict[str, str]]]]):
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(value, {"service": service.service, **attributes})
                for service in self.services
                for value, attributes in values(service)
            ]

        return callback


_instruments: _Instruments | None = None


class PlatformMetrics:
    """One per service; its relay and consumers register here."""

    def __init__(self, service: str) -> None:
        global _instruments
        if _instruments is None:
            _instruments = _Instruments()
        self._instruments = _instruments
        self.service = service
        self.relays: list[OutboxRelay] = []
        self.workers: list[ConsumerWorker] = []
        _instruments.services.append(self)

    def close(self) -> None:
        self._instruments.services.remove(self)

    def watch_relay(self, relay: OutboxRelay) -> None:
        self.relays.append(relay)

    def watch_worker(self, worker: ConsumerWorker) -> None:
        self.workers.append(worker)

    def count_consumed(self, group: str, outcome: str, count: int = 1) -> None:
        self._instruments.consumed.add(count, {"service": self.service, "group": group, "outcome": outcome})

    def count_published(self, count: int) -> None:
        self._instruments.published.add(count, {"service": self.service})
