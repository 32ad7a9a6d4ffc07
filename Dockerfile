# agent-service: the HTTP service with the example agents.
#   docker compose up --build    (Postgres + one-shot migration + API, see docker-compose.yml)
#   docker build -t agent-service . && docker run -p 8000:8000 -v agent-data:/srv/data \
#     -e GOOGLE_API_KEY -e GEMINI_API_KEY -e GOOGLE_GENAI_USE_VERTEXAI \
#     -e GOOGLE_CLOUD_PROJECT -e GOOGLE_CLOUD_LOCATION -e GOOGLE_APPLICATION_CREDENTIALS \
#     agent-service
#   (standalone: SQLite in /srv/data, migrated at start; `-e NAME` passes NAME through only
#   when it is set; without a key the example agents run on the offline demo model)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv

# Dependencies first, from the lock: this layer is rebuilt only when the lock changes
# (`make lock` regenerates it from pyproject.toml), never for a change under app/.
COPY requirements/runtime.txt /tmp/runtime.txt
RUN pip install --no-deps -r /tmp/runtime.txt

# Then the package alone (its wheel carries the migrations).
COPY pyproject.toml setup.py README.md /tmp/src/
COPY migrations /tmp/src/migrations
COPY app /tmp/src/app
RUN pip install --no-deps /tmp/src && rm -rf /tmp/src

COPY agents ./agents

RUN useradd --create-home --uid 10001 agent \
    && mkdir -p /srv/data \
    && chown agent:agent /srv/data
USER agent

# Standalone, the embedded SQLite file is migrated at start. With Postgres, compose runs the
# one-shot `agent-service migrate` service and sets AGENT_SERVICE_MIGRATE_ON_START=false.
ENV AGENT_SERVICE_DATABASE_URL=sqlite+aiosqlite:////srv/data/agent-service.db \
    AGENT_SERVICE_MIGRATE_ON_START=true \
    AGENT_SERVICE_AGENTS_DIR=/srv/agents \
    AGENT_SERVICE_PORT=8000

EXPOSE 8000

# Ready = the database answers and its schema is at head (a live process alone is not enough).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]

CMD ["agent-service", "serve", "--host", "0.0.0.0"]
