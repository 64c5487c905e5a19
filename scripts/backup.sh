#!/usr/bin/env bash
# make backup: a consistent dump of the database (pg_dump, custom format) plus the photo
# and upload store (MEDIA_ROOT), with a manifest of row counts and file checksums.
# Usage: scripts/backup.sh [OUTPUT_DIR]   (default: backups/)  -> prints the backup folder
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_ROOT=${1:-backups}
STAMP=$(date +%Y%m%d-%H%M%S)
DEST="$OUT_ROOT/gridmgmt-$STAMP"
mkdir -p "$DEST"
PG_URL=${DATABASE_URL/#postgis:/postgresql:}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PG_BIN=${PG_BIN:-$(dirname "$(command -v pg_dump)")}
MEDIA=${MEDIA_ROOT:-.local/media}

"$PG_BIN/pg_dump" --format=custom --no-owner --dbname="$PG_URL" --file="$DEST/database.dump"
mkdir -p "$MEDIA"
tar -C "$MEDIA" -czf "$DEST/media.tar.gz" .
python -m gridmgmt.backup_manifest --database-url "$PG_URL" --media "$MEDIA" > "$DEST/manifest.json"
echo "$DEST"
