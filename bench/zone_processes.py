"""The whole zone as `ezone up` runs it: each service a uvicorn process of its own, on the benchmark's
PostgreSQL and broker, with the CPU time each process (and PostgreSQL, and the broker) spent."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from ezone_kit.bus import ensure_topics
from ezone_kit.devkeys import mint_token
from ezone_kit.settings import KitSettings

from ezone.services import SERVICES, all_topics
from ezone.stack import free_port, wait_for
from tests.stack import stack_settings

from .environment import BenchEnvironment
from .traces import EXPORT_DELAY_MS

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ZoneProcesses:
    """Four service processes and an HTTP client for each; quacks like tests.stack.Stack for the test helpers."""

    database_url: str
    bootstrap_servers: str
    key_dir: Path
    overrides: dict[str, object]
    processes: dict[str, psutil.Popen] = field(default_factory=dict)
    bases: dict[str, str] = field(default_factory=dict)
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def settings(self) -> KitSettings:
        return KitSettings(**stack_settings(self.database_url, self.bootstrap_servers, self.key_dir, **self.overrides))

    def token(self, role: str, zone: str, schools: list[str] | None = None, **claims: object) -> str:
        return mint_token(self.key_dir, role=role, zone=zone, schools=schools, **claims)

    def auth(self, role: str, zone: str, schools: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, zone, schools)}"}


class CpuMeter:
    """CPU seconds (user + system) spent by each service process, by PostgreSQL (all its processes), by the broker,
    by this process and by `others` (name → pid), between `start()` and `stop()`."""

    def __init__(self, zone: ZoneProcesses, env: BenchEnvironment, others: dict[str, int] | None = None) -> None:
        self._services = zone.processes
        self._others = others or {}
        self._postgres_pid = env.postgres.pid
        self._broker_pid = env.broker.pid
        self._before: dict[str, float] = {}
        self.spent: dict[str, float] = {}
        self.window_ns = (0, 0)  # when it was metered (Unix ns, the clock of span start times)

    def _sample(self) -> dict[str, float]:
        sample = {name: _cpu(process) for name, process in self._services.items()}
        sample["postgresql"] = _tree_cpu(self._postgres_pid)
        sample["broker"] = _tree_cpu(self._broker_pid)
        sample["bench"] = _cpu(psutil.Process())
        sample |= {name: _tree_cpu(pid) for name, pid in self._others.items()}
        return sample

    def start(self) -> None:
        self._before = self._sample()
        self.window_ns = (time.time_ns(), 0)

    def stop(self) -> dict[str, float]:
        after = self._sample()
        self.window_ns = (self.window_ns[0], time.time_ns())
        self.spent = {name: after[name] - self._before.get(name, 0.0) for name in after}
        return self.spent


def _cpu(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return times.user + times.system
    return 0.0


def _tree_cpu(pid: int | None) -> float:
    """A process and its children: PostgreSQL's backends come and go, so what exited is not counted (rarely any
    while a pool holds its connections)."""
    if pid is None:
        return 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        return _cpu(root) + sum(_cpu(child) for child in root.children(recursive=True))
    return 0.0


@contextlib.asynccontextmanager
async def zone_processes(env: BenchEnvironment, database_url: str, traces_to: str | None = None,
                         **overrides: object) -> AsyncIterator[ZoneProcesses]:
    """Start the four services as `ezone up` does (uvicorn, one process each, configured by the environment),
    wait until each is ready and its consumers joined their groups; stop them all on the way out. `traces_to`: an
    OTLP/HTTP endpoint (a collector's) they export their spans to (else they export none)."""
    zone = ZoneProcesses(database_url, env.broker.bootstrap_servers, env.key_dir, overrides)
    await ensure_topics(zone.settings(), all_topics())
    tracing = {"OTEL_TRACES_EXPORTER": "none"} if traces_to is None else {
        "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": traces_to,
        "OTEL_BSP_SCHEDULE_DELAY": str(EXPORT_DELAY_MS)}
    environ = {**os.environ,
               **{name.upper(): str(value).lower() if isinstance(value, bool) else str(value)
                  for name, value in stack_settings(database_url, env.broker.bootstrap_servers, env.key_dir,
                                                    **overrides).items()},
               **tracing}
    try:
        for entry in SERVICES:
            port = free_port()
            zone.processes[entry.name] = psutil.Popen(
                [sys.executable, "-m", "uvicorn", entry.asgi_app, "--host", "127.0.0.1", "--port", str(port),
                 "--log-level", "warning", "--no-access-log"],
                cwd=ROOT, env={**environ, "OTEL_SERVICE_NAME": f"ezone-{entry.name}"})
            zone.bases[entry.name] = f"http://127.0.0.1:{port}"
        async with contextlib.AsyncExitStack() as clients:
            for name, base in zone.bases.items():
                zone.clients[name] = await clients.enter_async_context(httpx.AsyncClient(base_url=base, timeout=30))
            started = time.monotonic()
            for name, client in zone.clients.items():
                async def ready(name: str = name, client: httpx.AsyncClient = client) -> bool:
                    if zone.processes[name].poll() is not None:
                        raise RuntimeError(f"the {name} service exited at start with {zone.processes[name].returncode}")
                    with contextlib.suppress(httpx.TransportError):
                        return (await client.get("/readyz")).status_code == 200
                    return False
                await wait_for(ready, max(1.0, 60 - (time.monotonic() - started)), what=f"the {name} service ready")
            yield zone
    finally:
        for process in zone.processes.values():
            process.terminate()
        for process in zone.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
