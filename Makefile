# branchlink: `make run` and `make test` are all a newcomer needs (Python 3.11 + pip + make).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-fast test-pgbouncer lint format openapi openapi-check client-check migrations-check bench bench-scale clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

## Serve the API on 127.0.0.1:8000 with the embedded PostgreSQL (or DATABASE_URL) and demo data.
run: $(STAMP)
	$(PY) -m app dev

## The whole suite on a throwaway embedded PostgreSQL (or a scratch database on DATABASE_URL).
test: $(STAMP)
	@$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	exit $$rc

## The same without the tests marked slow (schemathesis fuzzing, the PostgreSQL restart).
test-fast: $(STAMP)
	@$(PY) -m pytest -q -p no:cacheprovider -m "not slow"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	exit $$rc

## Logins, check-ins, transitions and the outbox worker through a real PgBouncer in
## transaction mode (Debian's pgbouncer package); says so and stops when it is absent.
PGBOUNCER_SLICE := tests/api/test_pgbouncer.py tests/api/test_auth_login.py \
	tests/api/test_sessions.py tests/api/test_study_batching.py \
	tests/api/test_order_transitions.py tests/api/test_worker.py tests/api/test_worker_concurrency.py
test-pgbouncer: $(STAMP)
	@if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then \
		echo "pgbouncer is not installed: the PgBouncer slice is SKIPPED"; exit 0; fi; \
	$(PY) -m pytest -q -p no:cacheprovider --via-pgbouncer $(PGBOUNCER_SLICE)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

openapi: $(STAMP)
	$(PY) -m scripts.openapi

openapi-check: $(STAMP)
	$(PY) -m scripts.openapi --check

## Redocly lint (recommended rules) of openapi/openapi.json, then a TypeScript client generated
## from it and an example program compiled with tsc --strict (npm, pinned in ci/ts-client).
client-check:
	cd ci/ts-client && npm ci --no-audit --no-fund --loglevel=error
	cd ci/ts-client && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		npx --no-install redocly lint --config redocly.yaml ../../openapi/openapi.json
	cd ci/ts-client && npx --no-install openapi-typescript ../../openapi/openapi.json -o generated/api.d.ts
	cd ci/ts-client && npx --no-install tsc -p . --strict

migrations-check: $(STAMP)
	$(PY) -m scripts.check_migrations

bench: $(STAMP)
	$(PY) -m bench

## Both scales side by side (seeds scale 10 once: ~1 GB of COPY, kept under /tmp/branchlink-bench).
bench-scale: $(STAMP)
	$(PY) -m bench.scale --scales 1,10

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
