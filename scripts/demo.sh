#!/usr/bin/env bash
# `make demo`, after scripts/bootstrap.sh: migrate, load the demo district and its case history (idempotent),
# collect static files, start the job worker and serve the app with gunicorn + whitenoise
# on http://127.0.0.1:8000 (DEBUG off). Ctrl-C stops the server and the worker.
set -euo pipefail
cd "$(dirname "$0")/.."
export GRIDMGMT_MODE=${GRIDMGMT_MODE:-production}
export DEBUG=${DEBUG:-0}
HOST=${GRIDMGMT_DEMO_HOST:-127.0.0.1}
PORT=${GRIDMGMT_DEMO_PORT:-8000}
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
  echo "ERROR: something already listens on $HOST:$PORT. Stop it, or run: GRIDMGMT_DEMO_PORT=8001 make demo" >&2
  exit 1
fi

step "Migrating the database"
python manage.py migrate --noinput | grep -v '^  Applying' || true
python manage.py createcachetable
step "Loading the case category catalogue"
python manage.py load_case_categories
step "Loading the demo district (skipped if already loaded)"
python manage.py load_demo
step "Loading the demo case history (skipped if already loaded)"
python manage.py load_demo_cases
step "Collecting static files"
python manage.py collectstatic --noinput -v0

step "Starting the job worker (log: .local/worker.log)"
python manage.py procrastinate worker --delete-jobs=successful >.local/worker.log 2>&1 &
WORKER_PID=$!
trap 'kill $WORKER_PID 2>/dev/null || true' EXIT INT TERM

cat <<MSG

  gridmgmt demo is starting on http://$HOST:$PORT/
    指挥中心 / home     http://$HOST:$PORT/
    数据管理 / admin    http://$HOST:$PORT/admin/
    health check       http://$HOST:$PORT/healthz
  Demo logins: demo_admin, demo_operator, demo_dispatcher, demo_grid_worker, ... (password Demo-2026-grid; docs/demo.md)

MSG
step "Serving with gunicorn (Ctrl-C to stop)"
# gridmgmt/gunicorn_conf.py: the master imports the whole URLconf before forking, so no
# worker pays for it on its first request (or is killed by the timeout while it does).
gunicorn gridmgmt.wsgi:application -c gridmgmt/gunicorn_conf.py --bind "$HOST:$PORT" \
  --workers "${WEB_CONCURRENCY:-3}" --access-logfile - --graceful-timeout 10
