"""`python -m bench [--quick] [--only NAME ...] [--traces]`: start the embedded stack, run the benchmarks,
print a table and write bench/out/<name>.json for each."""

from __future__ import annotations

import argparse
import dataclasses
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable

from ezone_kit.settings import KitSettings
from ezone_kit.telemetry import setup_tracing
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress

from . import alerts, consumer, latency, relay
from . import csv_memory, edfi_upserts, results_ingest, state_rereview
from .environment import FULL, QUICK, BenchEnvironment, embedded_environment
from .progress import new_progress
from .report import OUT_DIR, BenchResult, machine_info, results_table, write_json
from .traces import TRACED_SUFFIX

Runner = Callable[[BenchEnvironment, Progress], Awaitable[list[BenchResult]]]

# Benchmark name -> the runner that produces it; `memory` is sampled while relay_throughput runs.
BENCHMARKS: dict[str, Runner] = {
    "relay_throughput": relay.run,
    "memory": relay.run,
    "consumer_throughput": consumer.run,
    "end_to_end_latency": latency.run,
    "results_ingest": results_ingest.run,
    "edfi_upserts": edfi_upserts.run,
    "state_rereview": state_rereview.run,
    "csv_memory": csv_memory.run,
    "alert_latency": alerts.run_latency,
    "alert_fanout": alerts.run_fanout,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of about 30 s")
    parser.add_argument(
        "--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME", help=f"run only these: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--alert-rate", type=float, metavar="N",
        help="alert_latency's second phase at N batches/s instead of the issue's 20, e.g. to see the headroom")
    parser.add_argument(
        "--traces", action="store_true",
        help="alert_latency's zone exports its spans by OTLP/HTTP to a receiver in this process, which counts them "
             f"(the result is alert_latency{TRACED_SUFFIX})")
    return parser.parse_args(argv)


async def run_benchmarks(env: BenchEnvironment, names: list[str], console: Console) -> list[BenchResult]:
    runners = list(dict.fromkeys(BENCHMARKS[name] for name in names))
    results: list[BenchResult] = []
    with new_progress(console) as progress:
        for runner in runners:
            started = time.monotonic()
            produced = [result for result in await runner(env, progress)
                        if result.name.removesuffix(TRACED_SUFFIX) in names]
            console.log(f"{', '.join(r.name for r in produced)}: done in {time.monotonic() - started:.0f} s")
            results += produced
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.only or list(BENCHMARKS)
    mode = "quick" if args.quick else "full"
    console = Console()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", handlers=[RichHandler(console=console)])
    # Spans are recorded as in a running service (SDK provider, nothing exported): the relay and consumers pay for them.
    setup_tracing("ezone-bench", KitSettings(otel_traces_exporter="none"))
    # SIGTERM unwinds like Ctrl-C, so the database and the broker are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    machine = machine_info()
    console.log(f"{mode} run of {', '.join(names)} on {machine['cpus']} x {machine['cpu_model']}")
    console.log("starting embedded PostgreSQL 18 and the Tansu broker")
    try:
        sizes = QUICK if args.quick else FULL
        if args.alert_rate is not None:
            sizes = dataclasses.replace(sizes, alert_batches_per_s=args.alert_rate)
        with embedded_environment(sizes) as env:
            env = dataclasses.replace(env, export_traces=args.traces)
            results = asyncio.run(run_benchmarks(env, names, console))
    except KeyboardInterrupt:
        console.log("interrupted; PostgreSQL and the broker are stopped")
        return 130
    console.print(results_table(results, f"ezone event platform ({mode} run)"))
    for result in results:
        write_json(result, mode, machine)
    console.log(f"results written to {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
