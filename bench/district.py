"""Benchmark: the district at design scale (issue 7, DESIGN.md §6), measured as ratios side by side.

    make bench ARGS="district"                    # scale 1: 5 000 grids, 3.6 M cases, ≈ 30 M history rows
    make bench ARGS="district --scale 0.1"        # a quick run
    make bench ARGS="district --only tiles,lookups --scale 0.05"

Data go into their own database (default gridmgmt_bench, on the project's PostGIS server),
generated once per scale and seed and reused by later runs (--regenerate to start again,
--drop to remove the database at the end). The HTTP measurements run the production
server (gunicorn, GRIDMGMT_MODE=production, DEBUG off) on 127.0.0.1 against that database.
Output: a table on stdout, bench/results.json; docs/performance.md explains every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bench import database

ROOT = Path(__file__).resolve().parent.parent


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench district", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1 = DESIGN.md §6 (default); 0.1 for a quick run")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--db", default=database.DEFAULT_NAME, help="benchmark database name (created if missing)")
    parser.add_argument("--regenerate", action="store_true", help="drop and generate the data again")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark database at the end")
    parser.add_argument("--generate-only", action="store_true", help="generate (or check) the data, measure nothing")
    parser.add_argument(
        "--only", help="comma-separated: ingest,assign,import,dashboard,tiles,lookups,indicators,memory"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of each throughput run (default 15)")
    parser.add_argument("--rate-duration", type=float, default=30.0, help="seconds of the 7 reports/s run")
    parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 3)))
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def _meta() -> dict | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        cursor.execute("SELECT value FROM bench_meta WHERE key = 'generation'")
        row = cursor.fetchone()
    if row is None:
        return None
    return row[0] if isinstance(row[0], dict) else json.loads(row[0])


def _save_meta(generation: dict) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_meta VALUES ('generation', %s::jsonb)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [json.dumps(generation, default=str)],
        )


_SOURCE_MAP = re.compile(rb"[#@] sourceMappingURL=([^\s*]+)")


def _source_map_stubs(stubs: Path) -> list[str]:
    """Empty source maps for vendored files that name a map which is not vendored (see bench.collect_settings)."""
    made = []
    static = ROOT / "static"
    for path in [*static.rglob("*.js"), *static.rglob("*.css")]:
        for name in _SOURCE_MAP.findall(path.read_bytes()[-4096:]):
            target = path.parent / name.decode()
            if not name.startswith(b"data:") and not target.exists():
                stub = stubs / target.relative_to(static)
                stub.parent.mkdir(parents=True, exist_ok=True)
                stub.write_text('{"version": 3, "sources": [], "names": [], "mappings": ""}\n')
                made.append(str(target.relative_to(ROOT)))
    return made


def _collect_static(url: str) -> Path:
    """Static files for the production-mode server (the dashboard page needs the manifest)."""
    target = ROOT / ".local" / "bench" / "static"
    if not (target / "staticfiles.json").exists():
        print("==> collecting static files for the production server (once)", flush=True)
        missing = _source_map_stubs(ROOT / ".local" / "bench" / "static-stubs")
        if missing:
            print(f"    source maps named but not vendored (stubbed for the bench): {', '.join(missing)}", flush=True)
        env = {**os.environ, "DATABASE_URL": url, "GRIDMGMT_MODE": "production", "STATIC_ROOT": str(target)}
        env["DJANGO_SETTINGS_MODULE"] = "bench.collect_settings"
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
        )
    return target


def main(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    progress = not args.quiet
    url = database.bench_url(os.environ["DATABASE_URL"], args.db)
    if args.regenerate:  # before migrating: migrations on the old data can take longer than generating anew
        print(f"==> dropping database {args.db} (--regenerate)", flush=True)
        database.drop_database(url)
    database.ensure_database(url)
    database.use_database(url)
    import django

    django.setup()
    from django.db import connections

    from bench import generate, metrics, report

    database.migrate()
    meta = _meta()
    wanted = {"scale": args.scale, "seed": args.seed}
    if args.regenerate or meta is None or {k: meta.get(k) for k in wanted} != wanted:
        if meta is not None or generate.register_has_rows():
            print(f"==> recreating database {args.db} for scale {args.scale:g}", flush=True)
            connections.close_all()
            database.drop_database(url)
            database.ensure_database(url)
            database.migrate()
            _meta()
        counts = generate.counts_at(args.scale)
        print(
            f"==> generating the district at scale {args.scale:g}: {counts['grids']:,} grids, "
            f"{counts['cases']:,} cases over {generate.YEARS} years ...",
            flush=True,
        )
        result = generate.generate(scale=args.scale, seed=args.seed, progress=progress)
        meta = {**dataclasses.asdict(result), "anchor": result.anchor.isoformat()}
        _save_meta(meta)
        print(f"    generated in {result.seconds:.0f} s: {result.counts}", flush=True)
    else:
        print(f"==> reusing database {args.db}: scale {meta['scale']:g}, generated {meta['anchor']}", flush=True)
    if args.generate_only:
        return 0
    static_root = _collect_static(url)
    settings = metrics.Settings(
        clients=args.clients, duration=args.duration, rate_duration=args.rate_duration, web_workers=args.web_workers
    )
    ctx = metrics.Context(
        scale=meta["scale"],
        anchor=dt.date.fromisoformat(meta["anchor"]),
        counts=meta["counts"],
        settings=settings,
        database_url=url,
        server_mode="production",
        static_root=static_root,
        work_dir=ROOT / ".local" / "bench",
        progress=progress,
        seed=args.seed,
    )
    environment_before = report.environment()
    started = time.perf_counter()
    rows = metrics.run(ctx, only=[m.strip() for m in args.only.split(",")] if args.only else None)
    run = {
        **environment_before,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "database": args.db,
        "scale": meta["scale"],
        "measured_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "measure_seconds": round(time.perf_counter() - started, 1),
        "settings": dataclasses.asdict(settings),
        "server": f"gunicorn, {settings.web_workers} sync workers, GRIDMGMT_MODE=production, DEBUG=0",
    }
    print()
    print(
        f"District benchmark at scale {meta['scale']:g} ({meta['counts']['grids']:,} grids, "
        f"{meta['counts']['cases']:,} cases, {meta['counts'].get('history', 0):,} history rows; generated in "
        f"{meta['seconds']:.0f} s) — {run['cores']} cores, PostgreSQL {run['postgresql']}, PostGIS {run['postgis']},"
        f" load average {run['load_average'][0]:.2f}"
    )
    print(report.table(rows))
    report.write_json(args.results, run=run, generation=meta, rows=rows)
    print(f"\nwritten: {args.results}")
    if args.drop:
        connections.close_all()
        database.drop_database(url)
        print(f"dropped database {args.db}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
