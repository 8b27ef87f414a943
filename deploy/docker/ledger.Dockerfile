# syntax=docker/dockerfile:1.7
# ArcFlare ledger (its read-only API and console on 8080 also answer the probes) — build from the repo root: docker build -f deploy/docker/ledger.Dockerfile .
# Bound to every address, it answers only signed reads of people listed in a federation, under
# the Host names in ARCFLARE_LEDGER_ALLOWED_HOSTS (set yours; loopback names always work).
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/app/.venv UV_PYTHON_DOWNLOADS=never
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY shared/ shared/
COPY services/ services/
RUN uv sync --frozen --no-dev --no-editable --package arcflare-ledger

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --user-group arcflare \
 && mkdir -p /data && chown arcflare:arcflare /data
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    ARCFLARE_DATA_DIR=/data \
    ARCFLARE_HEALTH_HOST=0.0.0.0 \
    ARCFLARE_HEALTH_PORT=8080 \
    ARCFLARE_LOG_FORMAT=json \
    ARCFLARE_LEDGER_HOST=0.0.0.0 \
    ARCFLARE_LEDGER_ALLOWED_HOSTS='["ledger"]' \
    ARCFLARE_LEDGER_PORT=8080
USER arcflare
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["python", "-m", "arcflare.ledger"]
