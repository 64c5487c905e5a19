#!/usr/bin/env bash
# make restore BACKUP=backups/gridmgmt-...: restores the database dump and the media store
# into the database of DATABASE_URL (replacing its contents) and MEDIA_ROOT, then checks
# row counts and file checksums against the backup's manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:?usage: scripts/restore.sh BACKUP_FOLDER}
[ -f "$SRC/database.dump" ] && [ -f "$SRC/manifest.json" ] || { echo "ERROR: $SRC is not a gridmgmt backup folder (no database.dump / manifest.json)." >&2; exit 1; }
PG_URL=${DATABASE_URL/#postgis:/postgresql:}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PG_BIN=${PG_BIN:-$(dirname "$(command -v pg_restore)")}
MEDIA=${MEDIA_ROOT:-.local/media}

"$PG_BIN/psql" -q -v ON_ERROR_STOP=1 "$PG_URL" -c "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;"
"$PG_BIN/pg_restore" --no-owner --exit-on-error --dbname="$PG_URL" "$SRC/database.dump"
mkdir -p "$MEDIA"
find "$MEDIA" -mindepth 1 -delete
tar -C "$MEDIA" -xzf "$SRC/media.tar.gz"
python -m gridmgmt.backup_manifest --database-url "$PG_URL" --media "$MEDIA" --compare "$SRC/manifest.json"
echo "Restored $SRC: row counts and file checksums match the backup."
