"""`ezone up`: the whole zone on one machine — embedded PostgreSQL and broker (unless DATABASE_URL /
KAFKA_BOOTSTRAP_SERVERS point elsewhere), topics, migrations, the four services, the demo zone."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from ezone_kit.bus import ensure_topics
from ezone_kit.devkeys import ensure_dev_keys, mint_token
from ezone_kit.migrations import upgrade
from ezone_kit.settings import KitSettings
from ezone_results.edfi import mcas
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .demo import (
    DEMO_BOARD,
    DEMO_DISTRICT_SERVICES,
    DEMO_POLICY,
    DEMO_SCHOOL_YEAR,
    DEMO_ZONE,
    all_students_files,
    board_member_request,
    default_data_dir,
    demo_partners,
    demo_schools,
    file_parameters,
    leadership_team,
    plan_request,
)

DEMO_APPROVED_PLANS = 6
from .services import SERVICES, ServiceEntry, all_topics
from .stack import EmbeddedBroker, EmbeddedPostgres, SmtpSink, StackError, die_with_parent, free_port, port_open

STATE_FILE = "state.json"
SIGN_IN_FILE = "sign-in.txt"  # the board token and sign-in link `ezone up` printed, for scripts
DATABASE_NAME = "ezone"
DEFAULT_SMTP_PORT = 1025
# Each service's URL setting: the notifications service calls the others at theirs, and its own is the public base
# of every link ezone emits (docs/deploy.md).
PUBLIC_URL_SETTINGS = {"plans": "ezone_plans_url", "results": "ezone_results_url",
                       "services-catalog": "ezone_catalog_url", "notifications": "ezone_notifications_url"}


def home_dir() -> Path:
    return Path(os.environ.get("EZONE_HOME", Path.cwd() / ".ezone")).resolve()


def read_state(home: Path) -> dict:
    path = home / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def service_url(name: str, home: Path | None = None) -> str:
    """A service's URL for CLI commands: the running `ezone up`'s (its ports may be others than the defaults), else the
    default port of `ezone up`."""
    recorded = read_state(home or home_dir()).get("services", {})
    return recorded.get(name) or f"http://127.0.0.1:{8001 + [entry.name for entry in SERVICES].index(name)}"


def cli_settings(home: Path | None = None) -> KitSettings:
    """Settings for CLI commands: the environment first, then what a running `ezone up` recorded."""
    state = read_state(home or home_dir())
    recorded = {k: v for k, v in state.get("settings", {}).items() if k.upper() not in os.environ}
    return KitSettings(**recorded)


@dataclass
class LocalZone:
    home: Path
    port_base: int = 8001
    load_demo: bool = True
    console: Console = field(default_factory=Console)
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    smtp_sink: SmtpSink | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _spawned_at: dict[str, float] = field(default_factory=dict)
    _settings: KitSettings | None = None
    _demo_leader: dict[str, str] | None = None  # the first demo school's principal: `up` prints their sign-in link

    def service_port(self, entry: ServiceEntry) -> int:
        return self.port_base + SERVICES.index(entry)

    async def run(self) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        try:
            started = time.monotonic()
            settings = await self._start_infrastructure()
            await self._start_services(settings)
            self.console.print(f"[green]Four services ready in {time.monotonic() - started:.1f}s.[/green]")
            if self.load_demo:
                await self._load_demo()
            self._print_summary()
            return await self._supervise(stop)
        finally:
            self._shutdown()

    async def _start_infrastructure(self) -> KitSettings:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        jwks = ensure_dev_keys(self.home / "keys")
        overrides: dict[str, object] = {"ezone_jwks_url": str(jwks)}

        with self.console.status("Starting PostgreSQL…"):
            if "DATABASE_URL" in os.environ:
                self.console.print("PostgreSQL: DATABASE_URL from the environment")
            else:
                self.postgres = EmbeddedPostgres(self.home / "pgdata")
                self.postgres.start()
                await self.postgres.ensure_database(DATABASE_NAME)
                overrides["database_url"] = self.postgres.url(DATABASE_NAME)
                self.console.print(f"PostgreSQL 18 (embedded): data in {self.home / 'pgdata'}")

        with self.console.status("Starting the Kafka-protocol broker…"):
            if "KAFKA_BOOTSTRAP_SERVERS" in os.environ:
                self.console.print(f"Kafka: {os.environ['KAFKA_BOOTSTRAP_SERVERS']} from the environment")
            else:
                port = int(os.environ.get("EZONE_BROKER_PORT", "19092"))
                self.broker = EmbeddedBroker(port, log_path=self.home / "logs" / "tansu.log")
                self.broker.start()
                overrides |= {
                    "kafka_bootstrap_servers": self.broker.bootstrap_servers,
                    "kafka_enable_idempotence": False,  # Tansu rejects the idempotent producer
                    "kafka_session_timeout_ms": 3_000,  # a group join on Tansu takes half of it
                    "kafka_heartbeat_interval_ms": 500,
                    # Tansu answers a waiting fetch within about half this, not when data arrives: it is each hop's
                    # latency (alert benchmark at 20 batches/s: a hop's median 11-12 ms at 20, 22-26 ms at 50, for the
                    # same CPU a batch; idle, the broker polls more).
                    "kafka_fetch_max_wait_ms": 20,
                    # One instance of each service consumes; Tansu's fetch work grows with the partitions fetched.
                    "kafka_topic_partitions": 1,
                }
                self.console.print(f"Tansu broker (embedded, memory only): {self.broker.bootstrap_servers}")
        overrides |= self._start_smtp_sink()
        overrides |= self._service_urls()
        settings = KitSettings(**{k: v for k, v in overrides.items()})

        with self.console.status("Creating topics and running migrations…"):
            created = await ensure_topics(settings, all_topics())
            for entry in SERVICES:
                await upgrade(entry.package, settings.database_url, entry.definition.schema)
        self.console.print(f"Topics: {len(all_topics())} ({len(created)} created); migrations applied")
        # A memory-only broker started empty: each service's relay finds its partitions shorter than what was
        # acknowledged before and publishes those events again (ezone_kit.relay), as after any broker loss.

        self._settings = settings
        state = {
            "settings": {k: v for k, v in overrides.items() if k != "ezone_jwks_url"} | {"ezone_jwks_url": str(jwks)},
            "services": {e.name: f"http://127.0.0.1:{self.service_port(e)}" for e in SERVICES},
            "pid": os.getpid(),
        }
        (self.home / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        self._service_env = {**os.environ, **{k.upper(): str(v).lower() if isinstance(v, bool) else str(v) for k, v in overrides.items()}}
        return settings

    async def _restart_broker(self) -> None:
        assert self.broker is not None
        self.broker.start()
        # Every topic at once, the dead-letter ones too (a relay creates the topics it publishes to when it finds them
        # missing); the relays notice what the broker lost and publish it again.
        await ensure_topics(self._settings, all_topics())
        self.console.print("[green]The broker is back, with its topics; the services publish again what it lost"
                           "[/green]")

    def _service_urls(self) -> dict[str, object]:
        """Each service's URL on this machine, by --port-base: where the board page's backend calls the others, and
        the notifications service's is the public base of every link in alerts, emails and the printed sign-in link.
        A URL set in the environment (e.g. behind a proxy) is kept."""
        urls = {PUBLIC_URL_SETTINGS[entry.name]: f"http://127.0.0.1:{self.service_port(entry)}" for entry in SERVICES}
        return {name: url for name, url in urls.items() if name.upper() not in os.environ}

    def _start_smtp_sink(self) -> dict[str, object]:
        """Where alert emails go: EZONE_SMTP_HOST's server, else a local sink that keeps them in an mbox file."""
        if "EZONE_SMTP_HOST" in os.environ:
            self.console.print(f"SMTP: {os.environ['EZONE_SMTP_HOST']} from the environment")
            return {}
        port = int(os.environ.get("EZONE_SMTP_PORT", DEFAULT_SMTP_PORT))
        if "EZONE_SMTP_PORT" not in os.environ and port_open(port):
            port = free_port()  # the default port is taken (another sink?): any free one will do
        self.smtp_sink = SmtpSink(self.home / "mail", port)
        self.smtp_sink.start()
        self.console.print(f"Mail sink (keeps every alert email): SMTP on {self.smtp_sink.host}:{port}")
        return {"ezone_smtp_host": self.smtp_sink.host, "ezone_smtp_port": port}

    async def _start_services(self, settings: KitSettings) -> None:
        busy = [self.service_port(e) for e in SERVICES if port_open(self.service_port(e))]
        if busy:
            raise StackError(
                f"port(s) {', '.join(map(str, busy))} are in use (another `ezone up`?). Stop it, or choose other ports: ezone up --port-base 9001"
            )
        for entry in SERVICES:
            self._spawn(entry)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=self.console) as progress:
            task = progress.add_task("Waiting for the services to be ready", total=len(SERVICES))
            pending = set(self.processes)
            deadline = time.monotonic() + 60
            async with httpx.AsyncClient(timeout=2) as client:
                while pending:
                    for name in sorted(pending):
                        if self.processes[name].poll() is not None:
                            raise StackError(f"the {name} service exited at start; see {self.home / 'logs' / (name + '.log')}")
                        entry = next(e for e in SERVICES if e.name == name)
                        try:
                            ready = (await client.get(f"http://127.0.0.1:{self.service_port(entry)}/readyz")).status_code == 200
                        except httpx.TransportError:
                            ready = False
                        if ready:
                            pending.discard(name)
                            progress.advance(task)
                            progress.update(task, description=f"{len(SERVICES) - len(pending)}/{len(SERVICES)} ready ({name})")
                    if time.monotonic() > deadline:
                        raise StackError(f"not ready after 60s: {', '.join(sorted(pending))}; see the logs in {self.home / 'logs'}")
                    await asyncio.sleep(0.2)

    async def _load_demo(self) -> None:
        """Through the public API, as a zone administrator would; every step is idempotent."""
        schools = demo_schools()
        token = mint_token(self.home / "keys", role="admin", zone=DEMO_ZONE["id"], subject="ezone-up-demo-loader")
        plans = f"http://127.0.0.1:{self.service_port(SERVICES[0])}"
        zone = DEMO_ZONE["id"]
        created = 0
        steps = 1 + len(DEMO_BOARD) + len(schools) * 3
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), console=self.console) as progress:
            task = progress.add_task("Loading the Springfield demo zone", total=steps)
            async with httpx.AsyncClient(base_url=plans, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
                # Found by its id: a zone its administrators renamed is still the demo zone.
                if (await client.get(f"/zones/{zone}")).status_code == 404:
                    await _ok(client.post("/zones", json=DEMO_ZONE))
                # The zone names its accountability assessments (MCAS); adopting the same policy again changes nothing.
                policy = await _ok(client.get(f"/zones/{zone}/policy"))
                await _ok(client.put(f"/zones/{zone}/policy", json={**policy.json()["document"], **DEMO_POLICY},
                                     headers={"If-Match": policy.headers["etag"]}))
                progress.advance(task)
                for member in DEMO_BOARD:
                    await _ok(client.post(f"/zones/{zone}/board-members", json=board_member_request(member)))
                    progress.advance(task)
                for index, school in enumerate(schools):
                    response = await _ok(client.post(f"/zones/{zone}/schools", json=school.as_request()))
                    created += response.json()["created"]
                    progress.advance(task)
                    school_id = response.json()["id"]
                    for leader in leadership_team(index, school.code):
                        await _ok(client.post(f"/zones/{zone}/schools/{school_id}/leadership", json=leader))
                    if index == 0:
                        principal = leadership_team(index, school.code)[0]
                        self._demo_leader = {"name": principal["name"], "subject": principal["subject"],
                                             "school": school.name, "school_id": school_id}
                    progress.advance(task)
                    await self._demo_plan(client, school, school_id, decide=index < DEMO_APPROVED_PLANS)
                    progress.advance(task)
        self.console.print(
            f"Demo zone {DEMO_ZONE['name']!r}: {len(schools)} schools ({created} new), a board of {len(DEMO_BOARD)}, "
            f"leadership teams, {DEMO_SCHOOL_YEAR} plans ({DEMO_APPROVED_PLANS} approved, the rest awaiting votes)"
        )
        await self._demo_catalog()
        await self._demo_results()

    async def _demo_results(self) -> None:
        """The state's published MCAS results of every year on file: the zone's schools are reviewed against them,
        so the board page has real history to chart. Loading a file again changes nothing."""
        keys = self.home / "keys"
        token = mint_token(keys, role="admin", zone=DEMO_ZONE["id"], subject="ezone-up-demo-loader")
        # The state's files are the deployment's to load, not a zone's.
        state = {"Authorization": f"Bearer {mint_token(keys, role='state', zone=DEMO_ZONE['id'], subject='ezone-up-state')}"}
        results = f"http://127.0.0.1:{self.service_port(SERVICES[1])}"
        files = all_students_files(default_data_dir() / "mcas")
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      console=self.console) as progress:
            task = progress.add_task("Loading MCAS results (all schools in the state)", total=len(files))
            async with httpx.AsyncClient(base_url=results, headers={"Authorization": f"Bearer {token}"},
                                         timeout=120) as client:
                # What the state's vendor posts first: the assessments, whose scales check every result of theirs.
                for resource, documents in (("performanceLevelDescriptors", mcas.level_descriptors()),
                                            ("assessments", mcas.assessments())):
                    for document in documents:
                        await _ok(client.post(f"/ed-fi/data/v3/ed-fi/{resource}", json=document))
                for path in files:
                    await _ok(client.post("/state-aggregates/mcas", params=file_parameters(path), content=path.read_bytes(),
                                          headers={**state, "Content-Type": "text/csv"}))
                    progress.advance(task)
        years = ", ".join(file_parameters(path)["school_year"] for path in files)
        self.console.print(f"MCAS described as Ed-Fi assessments ({len(mcas.assessments())}, with their scales and "
                           f"achievement levels); results of {years}: the zone's schools are reviewed as they arrive")

    async def _demo_catalog(self) -> None:
        """District services and partners, through the catalog's API as district staff; every step is idempotent."""
        token = mint_token(self.home / "keys", role="district", zone=DEMO_ZONE["id"], subject="ezone-up-demo-loader")
        catalog = f"http://127.0.0.1:{self.service_port(SERVICES[2])}/zones/{DEMO_ZONE['id']}"
        partners = demo_partners(datetime.now(UTC).date())
        services = [*DEMO_DISTRICT_SERVICES, *(s for p in partners for s in p["services"])]
        with self.console.status("Loading the demo catalog…"):
            async with httpx.AsyncClient(base_url=catalog, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
                for entry in partners:
                    await _ok(client.post("/partners", json=entry["partner"]))
                    if entry["vetting"] is not None:
                        await _ok(client.post(f"/partners/{entry['partner']['id']}/vettings", json=entry["vetting"]))
                for service in services:
                    await _ok(client.post("/services", json=service))
                    await _ok(client.post(f"/services/{service['id']}/publish"))
        self.console.print(
            f"Demo catalog: {len(DEMO_DISTRICT_SERVICES)} district services "
            f"({sum(s['non_optional'] for s in DEMO_DISTRICT_SERVICES)} non-optional), {len(partners)} partners "
            f"({sum(1 for p in partners if p['vetting'] and p['vetting']['status'] == 'vetted')} vetted)"
        )

    async def _demo_plan(self, client: httpx.AsyncClient, school, school_id: str, decide: bool) -> None:  # noqa: ANN001
        """The school team writes and submits its plan; for some schools four board members approve it.
        Seat 1 (whose token `up` prints) never votes here, so plans wait for that member."""
        keys = self.home / "keys"
        base = f"/zones/{DEMO_ZONE['id']}/schools/{school_id}/plans"
        team = {"Authorization": f"Bearer {mint_token(keys, role='school', zone=DEMO_ZONE['id'], schools=[school_id], subject=f'principal-{school.code}@springfield.example')}"}
        created = await _ok(client.post(base, json=plan_request(school), headers={**team, "Idempotency-Key": f"demo-plan-{school.code}-{DEMO_SCHOOL_YEAR}"}))
        if created.json()["status"] == "draft":
            await _ok(client.post(f"{base}/{DEMO_SCHOOL_YEAR}/submit", headers={**team, "If-Match": created.headers["ETag"]}))
        if not decide:
            return
        for member in DEMO_BOARD[1:5]:
            plan = (await _ok(client.get(f"{base}/{DEMO_SCHOOL_YEAR}", headers=team))).json()
            if plan["status"] != "submitted":
                return
            voter = mint_token(keys, role="board", zone=DEMO_ZONE["id"], subject=board_member_request(member)["subject"])
            await _ok(client.post(f"{base}/{DEMO_SCHOOL_YEAR}/votes", json={"decision": "approve"},
                                  headers={"Authorization": f"Bearer {voter}"}))

    def _print_summary(self) -> None:
        table = Table(title="ezone is running", show_lines=False)
        table.add_column("service")
        table.add_column("API docs")
        for entry in SERVICES:
            table.add_row(entry.name, f"http://127.0.0.1:{self.service_port(entry)}/docs")
        self.console.print(table)
        chair = board_member_request(DEMO_BOARD[0])
        board = mint_token(self.home / "keys", role="board", zone=DEMO_ZONE["id"], subject=chair["subject"])
        page = self._service_env["EZONE_NOTIFICATIONS_URL"].rstrip("/")
        sign_in = f"{page}/board/sign-in?token={board}"
        # Not folded at the terminal's width: a token or link copied from the terminal must not carry line breaks.
        self.console.print(f"A board token for {chair['name']} (seat 1) of the demo zone (8 h):\n[dim]{board}[/dim]",
                           soft_wrap=True)
        self.console.print(f"The board's page, signed in as {chair['name']}:\n[bold]{sign_in}[/bold]", soft_wrap=True)
        (self.home / SIGN_IN_FILE).write_text(f"{board}\n{sign_in}\n")
        self.console.print(f"The token and the link, one a line: {self.home / SIGN_IN_FILE}", soft_wrap=True)
        if self._demo_leader is not None:
            leader = self._demo_leader
            token = mint_token(self.home / "keys", role="school", zone=DEMO_ZONE["id"], schools=[leader["school_id"]],
                               subject=leader["subject"])
            # A school leader's page: their school's plan, reviews, alerts, orders and budget; nothing of another's.
            self.console.print(f"A school leader's page: {leader['name']}, principal of {leader['school']}:\n"
                               f"[bold]{page}/board/sign-in?token={token}[/bold]", soft_wrap=True)
        self.console.print("More tokens: [bold].venv/bin/ezone token --role admin --zone springfield[/bold]")
        if self.smtp_sink is not None:
            self.console.print(f"Alert emails: {self.smtp_sink.mbox_path}")
        self.console.print(f"Logs: {self.home / 'logs'}.  [bold]Ctrl-C stops everything.[/bold]")

    def _spawn(self, entry: ServiceEntry) -> None:
        self._spawned_at[entry.name] = time.monotonic()
        log = open(self.home / "logs" / f"{entry.name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes[entry.name] = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", entry.asgi_app, "--host", "127.0.0.1",
             "--port", str(self.service_port(entry)), "--log-level", "warning"],
            env={**self._service_env, "OTEL_SERVICE_NAME": f"ezone-{entry.name}"},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )

    async def _supervise(self, stop: asyncio.Event) -> int:
        """Whatever dies comes back, and says so: the broker (its topics first, then what it lost is published
        again), PostgreSQL (crash recovery, on the same socket; the services answer 503 meanwhile and reconnect by
        themselves) and each service, after a pause that doubles while it keeps
        dying (1 s up to 30 s). One process dying never stops the zone."""
        pauses: dict[str, float] = {}
        next_start: dict[str, float] = {}
        postgres_down = False
        while not stop.is_set():
            now = time.monotonic()
            if self.broker is not None and not self.broker.running:
                self.console.print("[yellow]The broker stopped, and lost what it held (memory only); starting it "
                                   "again[/yellow]")
                try:
                    await self._restart_broker()
                except Exception as exc:  # noqa: BLE001 - tried again at the next turn
                    self.console.print(f"[red]The broker did not start ({exc}); trying again[/red]")
            if self.postgres is not None and not self.postgres.running:
                if not postgres_down:
                    self.console.print("[yellow]PostgreSQL stopped; starting it again (crash recovery)[/yellow]")
                    postgres_down = True
                try:
                    # A no-op while the killed postmaster is still a process (not yet reaped): the next turn retries.
                    self.postgres.start()
                except Exception as exc:  # noqa: BLE001 - tried again at the next turn
                    self.console.print(f"[red]PostgreSQL did not start ({exc}); trying again[/red]")
                if self.postgres.running:
                    postgres_down = False
                    self.console.print("[green]PostgreSQL is back[/green]")
            for entry in SERVICES:
                process = self.processes[entry.name]
                if process.poll() is None:
                    continue
                if entry.name not in next_start:
                    if now - self._spawned_at[entry.name] > 60:
                        pauses.pop(entry.name, None)  # it had been running a while: not dying in a loop
                    pause = pauses[entry.name] = min(2 * pauses.get(entry.name, 0.5), 30.0)
                    next_start[entry.name] = now + pause
                    self.console.print(
                        f"[yellow]the {entry.name} service exited (code {process.returncode}); starting it again in "
                        f"{pause:g}s. See {self.home / 'logs' / (entry.name + '.log')}[/yellow]")
                elif now >= next_start[entry.name]:
                    del next_start[entry.name]
                    self._spawn(entry)
                    self.console.print(f"[green]the {entry.name} service started again[/green]")
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
        return 0

    def _shutdown(self) -> None:
        """Stop children, broker and database in that order; never let a dead terminal (a broken
        pipe on print) leave one running."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        try:
            if self.smtp_sink is not None:
                self.smtp_sink.stop()
            if self.broker is not None:
                self.broker.stop()
        finally:
            if self.postgres is not None:
                self.postgres.stop()
        with contextlib.suppress(Exception):
            self.console.print("Stopped: services, broker and database.")


async def _ok(request) -> httpx.Response:  # noqa: ANN001 - an awaitable httpx request
    """Await a demo-loading request; a refusal says which call failed and why, not a traceback."""
    response = await request
    if response.status_code >= 400:
        raise StackError(f"loading the demo zone: {response.request.method} {response.request.url.path} answered "
                         f"{response.status_code}: {response.text[:500]}")
    return response
