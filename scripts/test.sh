#!/usr/bin/env bash
# The whole test suite: lint, format, migrations check, type check, pytest (with browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export GRIDMGMT_MODE=test
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
step "ruff check"
ruff check .
step "ruff format --check"
ruff format --check .
step "makemigrations --check"
python manage.py makemigrations --check --dry-run >/dev/null || { python manage.py makemigrations --check --dry-run; exit 1; }
step "mypy (services and selectors)"
mypy $(ls */services.py */selectors.py 2>/dev/null) geodata/importing geodata/exporting.py geodata/admin_import.py
step "pytest"
python -m pytest --create-db "$@"
