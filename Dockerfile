# Production image: migrate, then serve with several uvicorn workers against a managed
# PostgreSQL (see README, "Operations").
#   docker build -t branchlink .
#   docker run --env-file .env.prod -p 127.0.0.1:8000:8000 branchlink
#   docker run --env-file .env.prod branchlink python -m app worker
#
# Base image: pin it by digest for reproducible builds. Look the digest up where you can
# pull (it names the multi-platform index of the tag at that moment):
#   docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
# and build with --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest>
# (or write it below). The default is the tag alone: this repository records no digest it
# could not check.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Every installed file is checked against requirements.lock's hashes (no extras: no
# embedded PostgreSQL, no test or lint tools, uvicorn without its reloader).
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /venv \
 && /venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock

FROM ${PYTHON_IMAGE}
# tini as PID 1: forwards SIGTERM to the app (graceful stop, access log written out)
# and reaps zombies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /srv branchlink
COPY --from=build /venv /venv
WORKDIR /srv
# The application runs from its source tree (python -m app), not as an installed package.
COPY alembic.ini ./
COPY alembic ./alembic
COPY app ./app
# No PYTHONUNBUFFERED: the app flushes its own log lines (access lines in batches,
# everything else at once, all of them when it stops).
ENV PATH=/venv/bin:$PATH \
    APP_ENV=prod \
    APP_HOST=0.0.0.0 \
    APP_PORT=8000 \
    APP_WORKERS=4 \
    APP_DATA_DIR=/tmp/branchlink \
    PROMETHEUS_MULTIPROC_DIR=/tmp/branchlink/prometheus
USER branchlink
# 8000: the API (APP_PORT). 9101: the worker's metrics (APP_WORKER_METRICS_PORT), when
# the container runs `python -m app worker`.
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import os, sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('APP_PORT', '8000'), timeout=2).status == 200 else 1)"
ENTRYPOINT ["tini", "-g", "--"]
# `serve` prepares the multiprocess metrics directory itself; migrations take a lock.
CMD ["sh", "-c", "python -m app migrate && exec python -m app serve"]
