"""`ezone up` in a subprocess, as a newcomer runs it: what its tests share."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from ezone.services import SERVICES
from ezone.stack import port_open


@contextlib.contextmanager
def up_home() -> Iterator[Path]:
    """An EZONE_HOME (`.ezone`, as under `make up`) in a folder of its own, removed afterwards. Not under pytest's
    tmp_path: PostgreSQL runs as another user, who cannot enter it once another pytest session has tidied it."""
    folder = Path(tempfile.mkdtemp(prefix="ezone-up-"))
    try:
        yield folder / ".ezone"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def four_free_ports() -> int:
    for _ in range(50):
        base = random.randint(20_000, 40_000)
        if not any(port_open(base + i) for i in range(len(SERVICES))):
            return base
    raise RuntimeError("no four consecutive free ports")


def start_up(home: Path, port_base: int, broker_port: int, *options: str) -> tuple[subprocess.Popen, Path]:
    """`ezone up` with its own home, ports and embedded PostgreSQL, broker and mail sink; its output goes to the log."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    # A narrow terminal: what `up` prints must not fold there (a folded token or link cannot be copied).
    env |= {"EZONE_HOME": str(home), "EZONE_BROKER_PORT": str(broker_port), "COLUMNS": "80"}
    log = home.parent / f"up-{time.monotonic_ns()}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "ezone.cli", "up", "--port-base", str(port_base), *options],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    return process, log


def wait_until_ready(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"the service on port {port} was not ready again within {timeout_s}s"
        time.sleep(0.2)


def wait_for_output(process: subprocess.Popen, log: Path, text: str, timeout_s: float, after: int = 0) -> None:
    """Waits for the text in the log, past its first `after` bytes (a deadline against a hang, not a measure: `make
    bench` times the start)."""
    started = time.monotonic()
    while text not in log.read_bytes()[after:].decode(errors="replace"):
        assert process.poll() is None, f"ezone up exited early:\n{log.read_text()}"
        assert time.monotonic() - started < timeout_s, f"no {text!r} after {timeout_s}s:\n{log.read_text()}"
        time.sleep(0.2)


def descendants(process: subprocess.Popen) -> list[psutil.Process]:
    return psutil.Process(process.pid).children(recursive=True)


def stop_with_ctrl_c(process: subprocess.Popen, log: Path, home: Path) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0, log.read_text()
    assert "Stopped: services, broker and database." in log.read_text()


def leftover_processes(home: Path, ports: list[int], grace_s: float = 20.0) -> list[str]:
    """What still runs after `grace_s`: a postmaster removes its pid file (ending pg_ctl's wait) just before it
    exits."""
    deadline = time.monotonic() + grace_s
    while (found := _matching_processes(home, ports)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def _matching_processes(home: Path, ports: list[int]) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(home) in cmdline or any(f"--port {p}" in cmdline or f":{p}" in cmdline for p in ports):
            found.append(cmdline)
    return found
