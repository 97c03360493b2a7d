"""`ezone import ...`: loading results from files, through the results service's API."""

import typer

from .import_csv import csv_command
from .import_mcas import mcas_command

import_app = typer.Typer(help="Load results from files through the results service.", no_args_is_help=True)
import_app.command("csv")(csv_command)
import_app.command("mcas")(mcas_command)
