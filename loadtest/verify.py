"""After the load: every report sent became exactly one case, no answer was a 5xx; the figures.

`python -m loadtest.verify` reads the keys the locustfile wrote and locust's CSV statistics
(run_stats.csv, run_failures.csv under LOADTEST_STATE), checks the database, prints a table
of rates and latencies (p50, p95, p99) and writes it to report.md. Exit status 1 when a 5xx
was answered, a report was lost or duplicated.
"""

from __future__ import annotations

import csv
import os
import re
import sys
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridmgmt.settings")
django.setup()

from events.models import Case  # noqa: E402
from patrol.models import PatrolPoint  # noqa: E402

STATE = Path(os.environ.get("LOADTEST_STATE", ".local/loadtest"))
SERVER_ERROR = re.compile(r"\b5\d\d\b")


def _stats() -> list[dict[str, str]]:
    with (STATE / "run_stats.csv").open() as handle:
        return list(csv.DictReader(handle))


def _failures() -> list[dict[str, str]]:
    path = STATE / "run_failures.csv"
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def main() -> int:
    keys = [line.split()[1] for line in (STATE / "keys.txt").read_text().splitlines() if line.strip()]
    found: dict[str, int] = {}
    for client_key in Case.objects.filter(client_key__isnull=False).values_list("client_key", flat=True).iterator():
        suffix = client_key.partition(":")[2]
        found[suffix] = found.get(suffix, 0) + 1
    lost = [key for key in keys if found.get(key, 0) == 0]
    doubled = [key for key in keys if found.get(key, 0) > 1]
    distinct = len(set(keys))

    rows = _stats()
    failures = _failures()
    server_errors = sum(int(f["Occurrences"]) for f in failures if SERVER_ERROR.search(f["Error"]))
    lines = [
        "| endpoint | requests | req/s | failures | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['Name'] if row['Name'] != 'Aggregated' else '**all**'} | {row['Request Count']} "
            f"| {float(row['Requests/s']):.1f} | {row['Failure Count']} | {row['50%']} | {row['95%']} "
            f"| {row['99%']} | {float(row['Max Response Time']):.0f} |"
        )
    gps, reporters, viewers = (
        int(os.environ.get(f"LOADTEST_{name}_WEIGHT", default))
        for name, default in (("GPS", "3000"), ("REPORTER", "20"), ("DASHBOARD", "500"))
    )
    offered = gps / 30 + reporters / float(os.environ.get("LOADTEST_REPORT_PACING", "28")) + viewers * (1 / 5 + 3 / 60)
    achieved = next((float(row["Requests/s"]) for row in rows if row["Name"] == "Aggregated"), 0.0)
    lines += [
        "",
        f"offered load: {offered:.0f} requests/s ({gps} GPS workers, {reporters} reporters, {viewers} dashboards); "
        f"served: {achieved:.0f} requests/s",
        f"reports sent (distinct Idempotency-Keys): {distinct}; cases found for them: {distinct - len(lost)}; "
        f"lost: {len(lost)}; duplicated: {len(doubled)}",
        f"GPS points stored in total: {PatrolPoint.objects.count()}",
        f"5xx answers: {server_errors}; other failures: {sum(int(f['Occurrences']) for f in failures) - server_errors}",
    ]
    for failure in failures:
        lines.append(f"  failure: {failure['Method']} {failure['Name']}: {failure['Error']} × {failure['Occurrences']}")
    report = "\n".join(lines)
    (STATE / "report.md").write_text(report + "\n")
    print(report)
    ok = server_errors == 0 and not lost and not doubled and distinct == len(keys)
    print("loadtest: OK" if ok else "loadtest: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
