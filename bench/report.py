"""The run's table on stdout and its JSON record (bench/results.json)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from django.db import connection

from bench.metrics import Row


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def table(rows: list[Row]) -> str:
    header = ["metric", "value", "baseline", "ratio", "target", "result"]
    lines = []
    for row in rows:
        ratio = (
            "—" if row.ratio is None else f"{_number(row.ratio)}{(' ' + row.ratio_label) if row.ratio_label else ''}"
        )
        result = {True: "PASS", False: "FAIL", None: "info"}[row.passed]
        baseline = "—" if row.baseline is None else f"{_number(row.baseline)} ({row.baseline_label})"
        lines.append([row.metric, f"{_number(row.value)} {row.unit}", baseline, ratio, row.target or "—", result])
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    widths[2] = min(widths[2], 48)

    def fmt(line: list[str]) -> str:
        return "  ".join(str(cell)[: widths[i]].ljust(widths[i]) for i, cell in enumerate(line)).rstrip()

    out = [fmt(header), fmt(["-" * w for w in widths])]
    out += [fmt(line) for line in lines]
    notes = [f"  {row.key}: {row.note}" for row in rows if row.note]
    return "\n".join([*out, "", "notes:", *notes])


def _scalar(sql: str) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def environment() -> dict[str, Any]:
    """The machine, the database server and the code measured."""
    import django

    settings = {}
    for name in ("shared_buffers", "work_mem", "effective_cache_size", "max_parallel_workers_per_gather", "jit"):
        settings[name] = _scalar(f"SHOW {name}")
    memory_kib = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        memory_kib = int(meminfo.read_text().split("\n", 1)[0].split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": _scalar("SHOW server_version"),
        "postgis": _scalar("SELECT postgis_lib_version()"),
        "geos": _scalar("SELECT postgis_geos_version()"),
        "postgresql_settings": settings,
        "database_bytes": _scalar("SELECT pg_database_size(current_database())"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain")),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False, timeout=10).stdout.strip()  # noqa: S603,S607
    except OSError:
        return ""


def write_json(path: Path, *, run: dict[str, Any], generation: dict[str, Any], rows: list[Row]) -> None:
    document = {"run": run, "generation": generation, "metrics": [dataclasses.asdict(row) for row in rows]}
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
