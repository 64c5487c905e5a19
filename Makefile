# gridmgmt: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
WITH_ENV := scripts/with-env
.DEFAULT_GOAL := help

.PHONY: help setup demo test lint manage bench loadtest lock db-stop worker backup restore

help:
	@echo "make demo    set everything up, load the demo district and serve http://127.0.0.1:8000"
	@echo "make test    set everything up and run the whole test suite (lint, migrations check, pytest)"
	@echo "make manage ARGS=\"...\"   run a Django management command against the project database"
	@echo "make bench   district-scale benchmarks (slow; not part of make test)"
	@echo "make backup  dump the database and the photo store into backups/ (with a manifest)"
	@echo "make restore BACKUP=backups/gridmgmt-...   restore a backup and verify it"
	@echo "make db-stop stop the project-local PostGIS cluster"

setup:
	@scripts/bootstrap.sh

demo:
	@scripts/bootstrap.sh
	@$(WITH_ENV) scripts/demo.sh

test:
	@scripts/bootstrap.sh --with-browser
	@$(WITH_ENV) scripts/test.sh $(ARGS)

lint:
	@$(WITH_ENV) bash -c 'ruff check . && ruff format --check .'

manage:
	@scripts/bootstrap.sh >/dev/null
	@$(WITH_ENV) env GRIDMGMT_MODE=$${GRIDMGMT_MODE:-development} python manage.py $(ARGS)

worker:
	@$(WITH_ENV) env GRIDMGMT_MODE=$${GRIDMGMT_MODE:-development} python manage.py procrastinate worker --delete-jobs=successful

bench:
	@scripts/bootstrap.sh
	@$(WITH_ENV) env GRIDMGMT_MODE=development python -m bench $(ARGS)

loadtest:
	@scripts/bootstrap.sh >/dev/null
	@$(WITH_ENV) loadtest/run.sh

backup:
	@scripts/bootstrap.sh >/dev/null
	@$(WITH_ENV) scripts/backup.sh

restore:
	@scripts/bootstrap.sh >/dev/null
	@$(WITH_ENV) scripts/restore.sh $(BACKUP)

lock:
	@python3 -m venv /tmp/gridmgmt-lock && /tmp/gridmgmt-lock/bin/pip install -q -r requirements.in && \
	  /tmp/gridmgmt-lock/bin/pip freeze | grep -v '^-e' > requirements.txt && rm -rf /tmp/gridmgmt-lock

db-stop:
	@if [ -f .local/pgdata/PG_VERSION ]; then \
	  PG_BIN=$$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); \
	  if [ "$$(id -u)" = 0 ]; then runuser -u postgres -- $$PG_BIN/pg_ctl -D .local/pgdata stop; else $$PG_BIN/pg_ctl -D .local/pgdata stop; fi; fi
