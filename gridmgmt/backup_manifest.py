"""Row counts and checksums for `make backup` / `make restore` (scripts/backup.sh).

Prints a JSON manifest: the row count and an order-independent checksum of every table
in the public schema, and the sha256 of every file in the media store. With --compare,
checks the current state against a saved manifest and exits 1 on any difference.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import psycopg
from psycopg import sql


def database_manifest(url: str) -> dict[str, dict[str, object]]:
    tables: dict[str, dict[str, object]] = {}
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys' ORDER BY 1"
        )
        for (table,) in cursor.fetchall():
            # md5 of each row's text form, summed as numbers: independent of physical order.
            cursor.execute(
                sql.SQL(
                    "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text "
                    "FROM {} t"
                ).format(sql.Identifier(table))
            )
            count, checksum = cursor.fetchone()
            tables[table] = {"rows": count, "checksum": checksum}
    return tables


def media_manifest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--media", required=True, type=Path)
    parser.add_argument("--compare", type=Path)
    args = parser.parse_args()
    manifest = {"tables": database_manifest(args.database_url), "media": media_manifest(args.media)}
    if args.compare is None:
        json.dump(manifest, sys.stdout, indent=1, sort_keys=True)
        return 0
    expected = json.loads(args.compare.read_text())
    problems = [
        f"table {name}: expected {expected['tables'].get(name)}, found {manifest['tables'].get(name)}"
        for name in sorted(set(expected["tables"]) | set(manifest["tables"]))
        if expected["tables"].get(name) != manifest["tables"].get(name)
    ] + [
        f"media file {name}: checksum differs or file missing"
        for name in sorted(set(expected["media"]) | set(manifest["media"]))
        if expected["media"].get(name) != manifest["media"].get(name)
    ]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
