# agent-service: the HTTP service with the example agents.
#   docker compose up            (Postgres + migrations + API, see docker-compose.yml)
#   docker build -t agent-service . && docker run -p 8000:8000 agent-service   (SQLite)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv

# Dependencies and the package first, so code-only changes reuse the cached layer.
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install .

COPY migrations ./migrations
COPY agents ./agents

RUN useradd --create-home --uid 10001 agent \
    && mkdir -p /srv/data \
    && chown agent:agent /srv/data
USER agent

# The installed package lives in site-packages: tell it where the migrations are.
ENV AGENT_SERVICE_MIGRATIONS_DIR=/srv/migrations \
    AGENT_SERVICE_AGENTS_DIR=/srv/agents \
    AGENT_SERVICE_PORT=8000

EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

CMD ["agent-service", "serve", "--host", "0.0.0.0"]
