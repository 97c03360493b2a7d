"""Bootstrap: one function turns a service definition into a running FastAPI app.

Every ezone service is the same shape: a `ServiceDefinition` (its schema, routers, consumers,
migrations) and `create_app(definition)`. The app's lifespan starts the database pool, the
outbox relay and the consumers; an API call never waits for Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncSession

from .api_docs import serve_api_docs
from .auth import JwksVerifier
from .body_limit import RequestBodyLimit
from .bus import Publisher
from .consumer import ConsumerSpec, ConsumerWorker
from .idempotency import IdempotencyKeys
from .db import create_engine, session_factory
from .hot_path import HotRoute, ServiceApp
from .metrics import PlatformMetrics, setup_metrics
from .openapi import document_problems
from .problems import Problem, install_problem_handlers
from .relay import OutboxRelay
from .settings import KitSettings
from .telemetry import instrument_engine, setup_tracing
from .uow import AuditLog, Outbox, UnitOfWork

_log = logging.getLogger("ezone.service")


@dataclass(frozen=True)
class ServiceDefinition:
    name: str  # e.g. "plans"; the consumer groups are ezone.<name>.<consumer>
    title: str
    description: str
    package: str  # the Python package, whose `migrations` folder holds its Alembic scripts
    metadata: MetaData  # from ezone_kit.db.service_metadata(schema)
    routers: Sequence[APIRouter] = ()
    consumers: Sequence[ConsumerSpec] = ()
    # Long-running workers of the service (e.g. the review engine); they run where the consumers run.
    workers: Sequence[Callable[[Kit], Awaitable[None]]] = ()
    settings_class: type[KitSettings] = KitSettings
    # Routes answered before FastAPI's layers (hot_path.py): one-record requests that come by the ten thousand.
    hot_routes: Sequence[HotRoute] = ()

    @property
    def schema(self) -> str:
        assert self.metadata.schema
        return self.metadata.schema

    @property
    def source(self) -> str:
        return f"/ezone/{self.name}"

    def dead_letter_topics(self) -> list[str]:
        return [topic for spec in self.consumers for topic in spec.dead_letter_topics(self.name)]


@dataclass
class Kit:
    """The running parts of one service, shared by its requests, relay and consumers."""

    definition: ServiceDefinition
    settings: KitSettings
    verifier: JwksVerifier = field(init=False)
    tasks: list[asyncio.Task] = field(default_factory=list)
    workers: list[ConsumerWorker] = field(default_factory=list)
    relay: OutboxRelay | None = None

    def __post_init__(self) -> None:
        self.engine = create_engine(self.settings)
        self.sessions = session_factory(self.engine)
        self.outbox = Outbox(self.definition.metadata, self.definition.source)
        self.audit = AuditLog(self.definition.metadata)
        self.idempotency = IdempotencyKeys(self.definition.metadata)
        self.publisher = Publisher(self.settings)
        self.metrics = PlatformMetrics(self.definition.name)
        self.verifier = JwksVerifier(
            self.settings.ezone_jwks_url, self.settings.ezone_jwt_audience, self.settings.ezone_jwt_issuer
        )

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.outbox, self.audit, self.idempotency)

    async def start(self) -> None:
        instrument_engine(self.engine)
        name = self.definition.name
        if self.settings.ezone_run_relay:
            self.relay = OutboxRelay(self.engine, self.definition.schema, self.publisher, self.settings, self.metrics)
            self.metrics.watch_relay(self.relay)
            self.tasks.append(asyncio.create_task(self.relay.run(), name=f"{name}-relay"))
        if self.settings.ezone_run_consumers:
            for spec in self.definition.consumers:
                worker = ConsumerWorker(name, spec, self.sessions, self.outbox, self.publisher, self.settings, self.metrics)
                self.metrics.watch_worker(worker)
                self.workers.append(worker)
                self.tasks.append(asyncio.create_task(worker.run(), name=f"{name}-{spec.name}-consumer"))
            for run_worker in self.definition.workers:
                self.tasks.append(asyncio.create_task(run_worker(self), name=f"{name}-{run_worker.__name__}"))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(worker.stop() for worker in self.workers), return_exceptions=True)
        await self.publisher.stop()
        await self.engine.dispose()
        self.metrics.close()
        self.tasks.clear()
        self.workers.clear()

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            async with self.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 2.0)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"unavailable: {type(exc).__name__}"
        if not self.publisher.connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.publisher.start(), 3.0)
        checks["broker"] = "ok" if await self.publisher.ping() else "unavailable"
        return checks


async def get_kit(request: Request) -> Kit:
    # Async: FastAPI runs a plain function dependency in a worker thread, a thread hop per request.
    return request.app.state.kit


KitDep = Annotated[Kit, Depends(get_kit)]


async def unit_of_work(kit: KitDep) -> AsyncIterator[UnitOfWork]:
    async with kit.unit_of_work() as uow:
        yield uow


async def read_session(kit: KitDep) -> AsyncIterator[AsyncSession]:
    async with kit.sessions() as session:
        yield session


UnitOfWorkDep = Annotated[UnitOfWork, Depends(unit_of_work)]
SessionDep = Annotated[AsyncSession, Depends(read_session)]


def _probe(scope: dict) -> bool:
    """Health and readiness probes: no span each (orchestrators call them every few seconds)."""
    return scope.get("path") in ("/healthz", "/readyz")


def create_app(definition: ServiceDefinition, settings: KitSettings | None = None) -> ServiceApp:
    settings = settings or definition.settings_class()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    setup_tracing(f"ezone-{definition.name}", settings)
    setup_metrics(f"ezone-{definition.name}", settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kit = Kit(definition, settings)
        app.state.kit = kit
        await kit.start()
        # What start-up made (modules, models, compiled statements) lives as long as the process: kept out of the
        # collector's view, a full collection walks only what requests made (alert benchmark: 100-200 ms pauses → < 25 ms).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await kit.stop()

    app = ServiceApp(
        title=definition.title,
        description=definition.description,
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,  # served from the service's own files by serve_api_docs, not a CDN
        redoc_url=None,
        # FastAPI's own OpenTelemetry server span per request (trace context from `traceparent`, the route as its
        # name) and request metrics. OpenTelemetry's FastAPI instrumentation did the same for ~20 % of a small
        # request's CPU (Ed-Fi upserts, profiled): it matched the path against every route again to name the span.
        telemetry={"operation_spans": False, "exclude": _probe},
    )
    install_problem_handlers(app)
    serve_api_docs(app)
    if definition.hot_routes:
        app.serve_hot(list(definition.hot_routes), settings.ezone_max_request_body_bytes)
    # Outermost of the app's own middleware: an oversized body is refused before routing, authentication or a read.
    app.add_middleware(RequestBodyLimit, max_bytes=settings.ezone_max_request_body_bytes)

    @app.get("/healthz", tags=["health"], summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": definition.name}

    @app.get("/readyz", tags=["health"], summary="Readiness: the database and the broker answer")
    async def readyz(kit: KitDep) -> dict[str, object]:
        checks = await kit.readiness()
        if any(value != "ok" for value in checks.values()):
            raise Problem(503, "Not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok"), checks=checks)
        return {"status": "ready", "service": definition.name, "checks": checks}

    for router in definition.routers:
        app.include_router(router)
    document_problems(app, database=get_kit)

    return app
