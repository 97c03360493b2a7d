"""The `ezone` command line."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Annotated

import httpx
import typer
from ezone_kit.auth import ROLES
from ezone_kit.devkeys import mint_token
from ezone_kit.dlq import read_dead_letters, replay_dead_letters
from ezone_kit.relay import mark_for_replay
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy.ext.asyncio import create_async_engine

from .importing import import_app
from .local import LocalZone, cli_settings, home_dir, service_url
from .services import SERVICES, all_topics
from .stack import StackError

app = typer.Typer(
    help="ezone: the accountability loop of a school Empowerment Zone.", no_args_is_help=True, pretty_exceptions_show_locals=False
)
dlq_app = typer.Typer(help="Dead-letter topics: events a consumer gave up on.", no_args_is_help=True)
outbox_app = typer.Typer(help="The services' transactional outboxes.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(outbox_app, name="outbox")
app.add_typer(topics_app, name="topics")
app.add_typer(import_app, name="import")
console = Console()

SERVICE_NAMES = [entry.name for entry in SERVICES]


def _entries(service: str | None):
    if service is None:
        return list(SERVICES)
    matching = [e for e in SERVICES if e.name == service]
    if not matching:
        raise typer.BadParameter(f"unknown service {service!r}; use one of {', '.join(SERVICE_NAMES)}")
    return matching


@app.command()
def up(
    port_base: Annotated[int, typer.Option(help="Port of the first service; the others follow.")] = 8001,
    demo: Annotated[bool, typer.Option(help="Load the Springfield demo zone.")] = True,
) -> None:
    """Run the whole zone on this machine (embedded PostgreSQL and broker unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set)."""
    try:
        # soft_wrap: long lines (paths, tokens, links) are not folded at the terminal's width, so they copy whole.
        zone = LocalZone(home_dir(), port_base=port_base, load_demo=demo, console=Console(soft_wrap=True))
        code = asyncio.run(zone.run())
    except StackError as exc:
        console.print(f"[red]ezone up: {exc}[/red]")
        code = 1
    raise typer.Exit(code)


@app.command()
def token(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    zone: Annotated[str, typer.Option(help="The zone id the token is bound to, e.g. springfield.")],
    school: Annotated[list[str] | None, typer.Option(help=(
        "A school the token acts for: its id, or its state code, looked up in the running zone (repeat; required "
        "for school and sis)."))] = None,
    subject: Annotated[str | None, typer.Option(help="The `sub` claim (who this is).")] = None,
    hours: Annotated[float, typer.Option(help="Lifetime in hours.")] = 8.0,
    partner: Annotated[str | None, typer.Option(help="The partner organisation id a partner token acts for (required for partner).")] = None,
) -> None:
    """Mint a development token signed by the local key (.ezone/keys)."""
    if role not in ROLES:
        raise typer.BadParameter(f"unknown role {role!r}; use one of {', '.join(ROLES)}", param_hint="--role")
    if role in ("school", "sis") and not school:
        raise typer.BadParameter(f"a {role} token acts for specific schools: add --school <school id>", param_hint="--school")
    if (role == "partner") != (partner is not None):
        raise typer.BadParameter("a partner token, and only a partner token, needs --partner <partner id>", param_hint="--partner")
    schools = [_school_id(zone, value) for value in school] if school else None
    print(mint_token(home_dir() / "keys", role=role, zone=zone, schools=schools, subject=subject,
                     ttl_seconds=int(hours * 3600), partner_id=partner))


def _school_id(zone: str, value: str) -> str:
    """A school's id from its id or its state code (what people know): a token for an unknown id would see nothing."""
    with contextlib.suppress(ValueError):
        return str(uuid.UUID(value))
    plans = service_url("plans")
    admin = {"Authorization": f"Bearer {mint_token(home_dir() / 'keys', role='admin', zone=zone, ttl_seconds=60)}"}
    try:
        schools = httpx.get(f"{plans}/zones/{zone}/schools", headers=admin, timeout=10).json()
    except (httpx.HTTPError, ValueError):
        raise typer.BadParameter(f"{value!r} is not a school id, and the zone's schools could not be read from {plans} "
                                 "to find a school with that state code: start the zone (`ezone up`), or pass the "
                                 "school's id", param_hint="--school") from None
    found = [entry["id"] for entry in schools if isinstance(entry, dict)
             and entry.get("code", "").lstrip("0") == value.strip().lstrip("0")]
    if len(found) != 1:
        raise typer.BadParameter(f"zone {zone} has no school with id or state code {value!r}; its schools: "
                                 f"GET {plans}/zones/{zone}/schools", param_hint="--school")
    return found[0]


@app.command()
def migrate(service: Annotated[str | None, typer.Option(help="Only this service.")] = None) -> None:
    """Apply every service's database migrations (DATABASE_URL)."""
    from ezone_kit.migrations import upgrade

    settings = cli_settings()

    async def run() -> None:
        for entry in _entries(service):
            await upgrade(entry.package, settings.database_url, entry.definition.schema)
            console.print(f"{entry.name}: schema {entry.definition.schema} at head")

    asyncio.run(run())


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic ezone needs (KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC_PARTITIONS, KAFKA_REPLICATION_FACTOR)."""
    from ezone_kit.bus import ensure_topics

    wanted = all_topics()
    created = asyncio.run(ensure_topics(cli_settings(), wanted))
    console.print(f"{len(wanted)} topics; created {len(created)}: {', '.join(created) or 'none'}")


def _dlq_topics(group: str | None) -> list[str]:
    topics = [t for e in SERVICES for t in e.definition.dead_letter_topics()]
    if group is not None:
        groups = sorted({spec.group(e.definition.name) for e in SERVICES for spec in e.definition.consumers})
        if group not in groups:
            raise typer.BadParameter(f"no consumer group {group!r}; the groups are {', '.join(groups)}",
                                     param_hint="--group")
        topics = [t for t in topics if t.endswith(f".dlq.{group}")]
    return topics


@dlq_app.command("list")
def dlq_list(group: Annotated[str | None, typer.Option(help="Only this consumer group.")] = None) -> None:
    """List dead-lettered events with their errors."""
    letters = asyncio.run(read_dead_letters(cli_settings(), _dlq_topics(group)))
    if not letters:
        console.print("No dead-lettered events.")
        return
    table = Table(title=f"{len(letters)} dead-lettered event(s)")
    for column in ("event id", "type", "group", "key", "from", "attempts", "error"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        origin = f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}"
        table.add_row(letter.event_id, letter.ce_type, letter.group, letter.key or "", origin, str(letter.attempts), letter.error)
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(
    group: Annotated[str | None, typer.Option(help="Only this consumer group.")] = None,
    event_id: Annotated[list[str] | None, typer.Option("--id", help="Only this event id (repeat).")] = None,
) -> None:
    """Publish dead-lettered events back to their topics (after fixing the cause); consumers skip what they have."""
    count = asyncio.run(replay_dead_letters(cli_settings(), _dlq_topics(group), set(event_id) if event_id else None))
    console.print(f"Replayed {count} event(s).")


@outbox_app.command("replay")
def outbox_replay(
    since: Annotated[datetime, typer.Option(help="Re-publish events created at or after this time (ISO 8601; UTC if no zone).")],
    service: Annotated[str | None, typer.Option(help="Only this service's outbox.")] = None,
) -> None:
    """Re-publish retained outbox events, e.g. after the memory-only broker restarted. Consumers de-duplicate."""
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    settings = cli_settings()
    entries = _entries(service)

    async def run() -> int:
        engine = create_async_engine(settings.database_url)
        total = 0
        try:
            with Progress(console=console) as progress:
                task = progress.add_task("Queuing events for the relays", total=len(entries))
                for entry in entries:
                    count = await mark_for_replay(engine, entry.definition.schema, since)
                    total += count
                    progress.console.print(f"{entry.name}: {count} event(s)")
                    progress.advance(task)
        finally:
            await engine.dispose()
        return total

    total = asyncio.run(run())
    console.print(f"Queued {total} event(s); the running services' relays publish them within a second.")


if __name__ == "__main__":
    app()
