"""`ezone import mcas`: load statewide MCAS school-level files into the results service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from ezone_kit.devkeys import JWKS_FILE, mint_token
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from .demo import file_parameters
from .local import home_dir, service_url

CHUNK_BYTES = 64 * 1024
LISTED_ERRORS = 20
def mcas_command(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True, help=(
        "MCAS school-level CSV files as DESE publishes them, e.g. grades_3-8_all_students_2022.csv (all schools, "
        "one student group)."))],
    url: Annotated[str | None, typer.Option(help="The results service; default: the running `ezone up`'s.")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token of the `state` role; default: a dev one from .ezone/keys.")] = None,
    zone: Annotated[str, typer.Option(help="The zone of the default dev token.")] = "springfield",
) -> None:
    """Load statewide school results (every school, one subgroup per file), streamed with progress. Zone schools
    whose figures change get their reviews re-run; loading a file again changes nothing."""
    console = Console()
    headers = {"Authorization": f"Bearer {token or _dev_token(zone)}", "Content-Type": "text/csv"}
    table = Table(title="MCAS files loaded")
    for column in ("file", "subgroup", "school year", "rows", "schools", "inserted", "updated", "unchanged", "zone schools changed"):
        table.add_column(column, justify="left" if column in ("file", "subgroup", "school year") else "right")
    with httpx.Client(base_url=url or service_url("results"), headers=headers, timeout=httpx.Timeout(30.0, read=None)) as client:
        for path in files:
            summary = _upload(client, console, path)
            table.add_row(path.name, summary["subgroup"], ", ".join(summary["school_years"]), f"{summary['rows_received']:,}",
                          f"{summary['schools']:,}", f"{summary['inserted']:,}", f"{summary['updated']:,}",
                          f"{summary['unchanged']:,}", f"{summary['zone_schools_changed']:,}")
    console.print(table)


def _upload(client: httpx.Client, console: Console, path: Path) -> dict[str, Any]:
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"Loading {path.name}", total=path.stat().st_size)

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    yield chunk
                    progress.advance(task, len(chunk))
            progress.update(task, description=f"{path.name}: sent; the service is storing it")

        try:
            response = client.post("/state-aggregates/mcas", params=file_parameters(path), content=chunks())
        except httpx.TransportError as exc:
            _fail(console, f"cannot reach the results service at {client.base_url} ({exc}). Is `ezone up` running? Otherwise pass --url.")
    if response.status_code >= 400:
        _fail(console, f"{path.name}: {_problem(response)}")
    return response.json()


def _dev_token(zone: str) -> str:
    keys = home_dir() / "keys"
    if not (keys / JWKS_FILE).exists():
        raise typer.BadParameter(f"no development keys in {keys}; start the zone with `ezone up` first, or pass a token",
                                 param_hint="--token")
    return mint_token(keys, role="state", zone=zone, subject="ezone-import-mcas")


def _problem(response: httpx.Response) -> str:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        return f"the service answered {response.status_code}: {response.text[:500]}"
    lines = [f"{response.status_code} {body.get('detail', response.reason_phrase)}"]
    errors = body.get("errors") or []
    for error in errors[:LISTED_ERRORS]:
        where = f"line {error['row']}" if error.get("row") is not None else "file"
        lines.append(f"  {where}{': ' + error['field'] if error.get('field') else ''}: {error.get('reason')}")
    if len(errors) > LISTED_ERRORS:
        lines.append(f"  ... and {len(errors) - LISTED_ERRORS} more")
    if response.status_code in (401, 403):
        lines.append("Pass --token with a token of the `state` role (locally: `ezone token --role state --zone springfield`).")
    return "\n".join(lines)


def _fail(console: Console, message: str) -> NoReturn:
    console.print(f"ezone import mcas: {message}", markup=False, highlight=False, style="red")
    raise typer.Exit(1)
