# Production image: migrate, then serve with several workers against a managed PostgreSQL.
# docker build -t branchlink . && docker run -e DATABASE_URL=postgresql://... -e APP_ENV=prod ... branchlink
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY app ./app
RUN python -m venv /venv \
 && /venv/bin/pip install -c constraints.txt .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /srv branchlink
COPY --from=build /venv /venv
WORKDIR /srv
COPY alembic.ini ./
COPY alembic ./alembic
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    APP_ENV=prod \
    APP_HOST=0.0.0.0 \
    APP_PORT=8000 \
    APP_WORKERS=4 \
    APP_DATA_DIR=/tmp/branchlink \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
USER branchlink
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
# Fresh metric files per start: /metrics aggregates the workers of this container.
CMD ["sh", "-c", "rm -rf \"$PROMETHEUS_MULTIPROC_DIR\" && mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && python -m app migrate && exec python -m app serve"]
