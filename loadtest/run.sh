#!/usr/bin/env bash
# `make loadtest`: 10 x the design load of DESIGN.md §6 against a real server on loopback, for
# a bounded time (LOADTEST_DURATION, default 4m), then the checks: no 5xx, every report sent
# became exactly one case, p50/p95/p99 per endpoint (loadtest/verify.py, .local/loadtest/report.md).
#
# It uses its own database (gridmgmt_loadtest, on the same server as DATABASE_URL), loaded
# once with the demo district; the demo's and the tests' databases are never touched.
# Not part of `make test`: it keeps both cores busy for minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCUST_VERSION=2.47.0
DURATION=${LOADTEST_DURATION:-4m}
PORT=${LOADTEST_PORT:-8765}
DB=${LOADTEST_DB:-gridmgmt_loadtest}
export LOADTEST_STATE=${LOADTEST_STATE:-$PWD/.local/loadtest}
WEB_WORKERS=${LOADTEST_WEB_WORKERS:-3}
USERS=$(( ${LOADTEST_GPS_WEIGHT:-3000} + ${LOADTEST_REPORTER_WEIGHT:-20} + ${LOADTEST_DASHBOARD_WEIGHT:-500} ))
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if ! python -c 'import locust' 2>/dev/null; then
  step "Installing locust $LOCUST_VERSION into .venv (a load-test tool, not in requirements.txt)"
  python -m pip install -q "locust==$LOCUST_VERSION" 2> >(grep -v 'WARNING: Location' >&2)
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "ERROR: something listens on 127.0.0.1:$PORT already; set LOADTEST_PORT" >&2
  exit 1
fi

mkdir -p "$LOADTEST_STATE"
SERVER_URL=${DATABASE_URL%/*}
psql "${SERVER_URL/postgis:/postgresql:}/postgres" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 \
  || psql "${SERVER_URL/postgis:/postgresql:}/postgres" -qc "CREATE DATABASE \"$DB\""
export DATABASE_URL="$SERVER_URL/$DB" GRIDMGMT_MODE=production DEBUG=0

step "Preparing $DB (migrate, catalogue, demo district: the first run takes minutes)"
python manage.py migrate --noinput | grep -v '^  Applying' || true
python manage.py createcachetable
python manage.py load_case_categories >/dev/null
python manage.py load_demo
python -m loadtest.prepare

step "Serving on 127.0.0.1:$PORT (gunicorn, $WEB_WORKERS workers x 4 threads; log: $LOADTEST_STATE/gunicorn.log)"
gunicorn gridmgmt.wsgi:application -c gridmgmt/gunicorn_conf.py --bind "127.0.0.1:$PORT" \
  --workers "$WEB_WORKERS" --threads 4 \
  --worker-class gthread --timeout 60 --access-logfile /dev/null --error-logfile "$LOADTEST_STATE/gunicorn.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "ERROR: gunicorn did not start" >&2; exit 1; }
  sleep 0.2
done

step "Load: $USERS users for $DURATION (locust $(python -c 'import locust; print(locust.__version__)'))"
locust -f loadtest/locustfile.py --headless --users "$USERS" --spawn-rate 100 --run-time "$DURATION" \
  --host "http://127.0.0.1:$PORT" --csv "$LOADTEST_STATE/run" --only-summary --stop-timeout 30 \
  --exit-code-on-error 0 2>"$LOADTEST_STATE/locust.log" || true

step "Checks"
python -m loadtest.verify
