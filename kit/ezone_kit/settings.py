"""Runtime settings, read from the environment (12-factor) by pydantic-settings.

Names are the ones an operator sets; docker-compose.yml and deploy/ use exactly these,
and a test checks that every name they set is one this class reads.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KitSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    database_url: str = Field(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/ezone",
        description="SQLAlchemy URL of the PostgreSQL database; each service uses its own schema in it.",
    )
    database_pool_size: int = Field(10, ge=1)

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated host:port list.")
    kafka_enable_idempotence: bool = Field(
        True, description="Idempotent producer: on for Apache Kafka; the embedded Tansu broker needs it off."
    )
    kafka_session_timeout_ms: int = Field(10_000, ge=1_000)
    kafka_heartbeat_interval_ms: int = Field(1_000, ge=100)
    # Apache Kafka answers a waiting fetch as soon as data arrives: the wait costs no latency there, it only sets how
    # often an idle consumer asks (500 is Kafka's own default). The embedded Tansu broker answers within about half
    # the wait whether or not data arrived, so `make up` and the tests set 20 ms there (see ezone/local.py) for the
    # prompt consumers only: background ones keep 500, since each fetch that returns records costs Tansu more the more
    # records the topic holds, and nobody waits on their hop.
    kafka_fetch_max_wait_ms: int = Field(500, ge=0, description="How long a fetch waits for data: latency vs. load.")
    kafka_background_fetch_max_wait_ms: int = Field(
        500, ge=0, description="The same for background consumers, whose events nobody waits on as they happen.")
    kafka_linger_ms: int = Field(0, ge=0, description="Producer batching delay: latency vs. throughput.")
    kafka_topic_partitions: int = Field(4, ge=1)
    kafka_replication_factor: int = Field(1, ge=1)

    ezone_jwks_url: str = Field(
        ".ezone/keys/jwks.json", description="JWKS used to verify bearer tokens: a file path, file:// or https:// URL."
    )
    ezone_jwt_audience: str = "ezone"
    ezone_jwt_issuer: str | None = Field(None, description="When set, tokens must carry this `iss`.")

    ezone_run_relay: bool = Field(True, description="Run the outbox relay in this process.")
    ezone_run_consumers: bool = Field(True, description="Run this service's Kafka consumers in this process.")
    ezone_relay_batch_size: int = Field(500, ge=1)
    ezone_relay_poll_interval_s: float = Field(1.0, gt=0, description="Fallback poll when no NOTIFY arrives.")
    ezone_outbox_retention_hours: float = Field(168.0, ge=0, description="How long sent outbox rows are kept for replay.")
    ezone_idempotency_retention_hours: float = Field(24.0, ge=0, description="How long an Idempotency-Key is remembered.")
    ezone_parked_event_retention_days: float = Field(
        30.0, ge=0, description="How long an event naming a zone not known is kept for that zone's registration.")
    # A JSON batch of 10,000 student results is 3.9-4.2 MiB as compact JSON, 6.4 MiB indented by 4 (measured on
    # tests.results_data rows); with every optional field filled at length a 10,000-row batch stays under 16 MiB.
    ezone_max_request_body_bytes: int = Field(
        16 * 2**20, ge=1024,
        description="Largest request body a service reads (413 above it), except the streamed CSV upload.")
    ezone_consumer_max_attempts: int = Field(5, ge=1, description="Attempts before an event goes to the DLQ.")
    ezone_consumer_retry_backoff_s: float = Field(0.2, ge=0)
    ezone_consumer_batch_size: int = Field(500, ge=1)

    otel_service_name: str | None = None
    otel_traces_exporter: str = Field("none", description="`otlp` to export spans (OTEL_EXPORTER_OTLP_* configure it).")
    otel_metrics_exporter: str = Field("none", description="`otlp` to export metrics (consumer lag, outbox depth, DLQ, throughput).")
    otel_metric_export_interval: int = Field(15_000, ge=1_000, description="Milliseconds between metric exports.")
    otel_exporter_otlp_endpoint: str | None = None

    log_level: str = "INFO"


def load_settings() -> KitSettings:
    return KitSettings()
