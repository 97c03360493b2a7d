"""Results: what each benchmark measured, as a Rich table and as bench/out/<name>.json."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
from rich.table import Table

OUT_DIR = Path(__file__).parent / "out"


@dataclass(frozen=True)
class Figure:
    key: str  # stable, for machines reading the JSON
    label: str  # for people reading the table
    value: int | float  # an int is shown without decimals
    unit: str


@dataclass
class BenchResult:
    name: str
    figures: list[Figure]
    parameters: dict[str, object]
    notes: list[str] = field(default_factory=list)


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def latency_figures(prefix: str, label: str, samples_s: Sequence[float], points: Sequence[int | str]) -> list[Figure]:
    """Figures `<prefix>_p50_ms`, ... for the given percentiles, `"max"` included."""
    figures = []
    for point in points:
        value_s = max(samples_s) if point == "max" else percentile(samples_s, float(point))
        name = "max" if point == "max" else f"p{point}"
        figures.append(Figure(f"{prefix}_{name}_ms", f"{label} {name}", round(value_s * 1000, 1), "ms"))
    return figures


def reference_loop_s() -> float:
    """Seconds this machine takes for a fixed pure-Python loop (5 million multiply-adds), best of three: a shared
    machine's speed moves by half or more over an hour, and a latency figure means little without it."""
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(5_000_000):
            total += i * i
        best = min(best, time.perf_counter() - started)
    return round(best, 2)


def machine_info() -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), platform.processor())
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "load_average_1m_at_start": os.getloadavg()[0],
    }


def write_json(result: BenchResult, mode: str, machine: dict[str, object]) -> Path:
    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / f"{result.name}.json"
    document = {
        "name": result.name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "machine": machine,
        "parameters": result.parameters,
        "figures": {figure.key: {"value": figure.value, "unit": figure.unit, "label": figure.label} for figure in result.figures},
        "notes": result.notes,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def results_table(results: Sequence[BenchResult], title: str) -> Table:
    table = Table(title=title)
    table.add_column("benchmark", style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for result in results:
        for index, figure in enumerate(result.figures):
            value = f"{figure.value:,}" if isinstance(figure.value, int) else f"{figure.value:,.1f}"
            table.add_row(result.name if index == 0 else "", figure.label, value, figure.unit)
        table.add_section()
    return table

