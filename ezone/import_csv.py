"""`ezone import csv`: stream a student-results CSV file to the results service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from ezone_kit.devkeys import JWKS_FILE, mint_token
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from .local import home_dir, service_url

CHUNK_BYTES = 1 << 20
LISTED_ERRORS = 20


def csv_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help=(
        "UTF-8 CSV: a header line naming the columns (the fields of a result row; subgroups separated by `;`), "
        "then one row per line."))],
    zone: Annotated[str, typer.Option(help="The zone the results belong to, e.g. springfield.")],
    url: Annotated[str | None, typer.Option(help="The results service; default: the running `ezone up`'s.")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token; default: a dev admin token from .ezone/keys.")] = None,
) -> None:
    """Upload a CSV file of student results, streamed: any size, with progress. Invalid rows are listed, the others
    stored; the exit code is 1 when any row was rejected, so a script can tell a partial load."""
    console = Console()
    url = url or service_url("results")
    bearer = token or _dev_token(zone)
    endpoint = f"{url.rstrip('/')}/zones/{zone}/results/csv"
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task(f"Uploading {file.name}", total=file.stat().st_size)

        def chunks() -> Iterator[bytes]:
            with file.open("rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    yield chunk
                    progress.advance(task, len(chunk))
            progress.update(task, description="Sent; the service is storing the rows")

        try:
            # No read timeout: the service answers once every row is stored, which for millions of rows takes a while.
            response = httpx.post(endpoint, content=chunks(), timeout=httpx.Timeout(30.0, read=None),
                                  headers={"Authorization": f"Bearer {bearer}", "Content-Type": "text/csv"})
        except httpx.TransportError as exc:
            _fail(console, f"cannot reach the results service at {url} ({exc}). Is `ezone up` running? Otherwise pass --url.")
    if response.status_code >= 400:
        _fail(console, _problem(response, zone))
    summary = response.json()
    _print_summary(console, summary, zone)
    if summary["rejected"]:
        _fail(console, f"{summary['rejected']:,} row(s) rejected (listed above); the others are stored. Fix those rows "
                       "and send them again.")


def _dev_token(zone: str) -> str:
    keys = home_dir() / "keys"
    if not (keys / JWKS_FILE).exists():
        raise typer.BadParameter(f"no development keys in {keys}; start the zone with `ezone up` first, or pass a token",
                                 param_hint="--token")
    return mint_token(keys, role="admin", zone=zone, subject="ezone-import-csv")


def _problem(response: httpx.Response, zone: str) -> str:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        return f"the service answered {response.status_code}: {response.text[:500]}"
    detail = body.get("detail", response.reason_phrase)
    hints = {
        401: "Pass --token with a valid token (locally: `ezone token --role sis --zone ... --school ...`).",
        403: "Use a token whose role may post results (sis, district, admin) and that acts for the rows' schools.",
        404: f"Check the zone id ({zone!r}) and that the token is for that zone.",
    }
    lines = [f"{response.status_code} {detail}", *_error_lines(body.get("errors") or [])]
    if response.status_code in hints:
        lines.append(hints[response.status_code])
    return "\n".join(lines)


def _error_lines(errors: list[dict[str, Any]]) -> list[str]:
    lines = []
    for error in errors[:LISTED_ERRORS]:
        where = f"line {error['row']}" if error.get("row") is not None else "file"
        lines.append(f"  {where}{': ' + error['field'] if error.get('field') else ''}: {error['reason']}")
    if len(errors) > LISTED_ERRORS:
        lines.append(f"  ... and {len(errors) - LISTED_ERRORS} more")
    return lines


def _print_summary(console: Console, summary: dict[str, Any], zone: str) -> None:
    table = Table(title=f"Batch {summary['batch_id']}", show_header=False)
    for label in ("rows_received", "inserted", "updated", "unchanged", "rejected"):
        table.add_row(label.replace("_", " "), f"{summary[label]:,}")
    console.print(table)
    console.print(summary["message"])
    if summary["errors"]:
        console.print("Rejected rows:", *_error_lines(summary["errors"]), sep="\n", markup=False, highlight=False)
        console.print(f"All listed errors: GET /zones/{zone}/batches/{summary['batch_id']}", markup=False)


def _fail(console: Console, message: str) -> NoReturn:
    console.print(f"ezone import csv: {message}", markup=False, highlight=False, style="red")
    raise typer.Exit(1)
