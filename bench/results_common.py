"""Shared by the results benchmarks: a zone with N schools in the results directory, the results
service in-process (httpx.ASGITransport) or as a real uvicorn subprocess, a token, load sampling."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
from asgi_lifespan import LifespanManager
from ezone_kit.bus import ensure_topics
from ezone_kit.devkeys import mint_token
from ezone_kit.service import create_app
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ezone.services import SERVICES, all_topics
from tests.stack import stack_settings

from .environment import QUICK, BenchEnvironment

RESULTS = next(entry for entry in SERVICES if entry.name == "results").definition
ROOT = Path(__file__).resolve().parent.parent


def is_quick(env: BenchEnvironment) -> bool:
    return env.sizes is QUICK


def school_ids(zone_id: str, count: int) -> list[uuid.UUID]:
    return [uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{zone_id}/school/{n}") for n in range(count)]


def school_code(n: int) -> str:
    return f"{10_000_000 + n:08d}"


async def register_schools(engine: AsyncEngine, zone_id: str, count: int) -> list[uuid.UUID]:
    """The zone's schools in the results service's directory projection, as SchoolRegistered would leave them."""
    ids = school_ids(zone_id, count)
    async with engine.begin() as conn:
        await conn.execute(
            text(f"INSERT INTO {RESULTS.schema}.schools (id, zone_id, code, name, grade_span, enrollment)"
                 " SELECT id, :zone, code, 'School ' || code, '6-8', 500 FROM unnest(CAST(:ids AS uuid[]), CAST(:codes AS text[])) AS s(id, code)"),
            {"zone": zone_id, "ids": ids, "codes": [school_code(n) for n in range(count)]})
    return ids


def auth(env: BenchEnvironment, zone_id: str, role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(env.key_dir, role=role, zone=zone_id)}"}


@contextlib.asynccontextmanager
async def results_app(env: BenchEnvironment, database_url: str, **overrides: object) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    """The results service's app in this process (relay, consumers and review worker per `overrides`), and a client."""
    settings = RESULTS.settings_class(**stack_settings(database_url, env.broker.bootstrap_servers, env.key_dir, **overrides))
    await ensure_topics(settings, all_topics())
    app = create_app(RESULTS, settings)
    async with LifespanManager(app) as manager, httpx.AsyncClient(
        transport=httpx.ASGITransport(app=manager.app), base_url="http://results", timeout=None
    ) as client:
        yield client, app.state.kit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def results_server(env: BenchEnvironment, database_url: str, **overrides: object) -> Iterator[tuple[str, psutil.Process]]:
    """`uvicorn ezone_results.main:app` on 127.0.0.1 as a subprocess, configured from the environment like a deployment."""
    port = free_port()
    settings = stack_settings(database_url, env.broker.bootstrap_servers, env.key_dir, **overrides)
    environ = {**os.environ, **{name.upper(): str(value).lower() if isinstance(value, bool) else str(value)
                                for name, value in settings.items()},
               "OTEL_TRACES_EXPORTER": "none"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ezone_results.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=environ)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the results service did not become ready in 60 s")
            time.sleep(0.2)
        yield base, psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RssSampler:
    """Resident memory of one process, sampled from a thread every `interval_s` (the event loop may be busy)."""

    def __init__(self, process: psutil.Process, interval_s: float = 0.02) -> None:
        self.process = process
        self.interval_s = interval_s
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.samples.append(self.process.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)
