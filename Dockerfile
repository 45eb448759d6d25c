# labq: the API (`labq serve`, the default command), a worker (`labq worker`) or any other labq
# command, from one image. See compose.yaml for PostgreSQL, the migration step, the API and two
# workers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Only what the package needs (.dockerignore keeps tests, databases and git out); alembic.ini and
# migrations/ stay beside it so `alembic upgrade head` works from /app.
COPY pyproject.toml README.md alembic.ini ./
COPY api/ api/
COPY models/ models/
COPY scheduler/ scheduler/
COPY migrations/ migrations/
RUN pip install . \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home labq \
    && mkdir /data && chown labq:labq /data

USER labq
# Without a LABQ_DATABASE_URL the image keeps a SQLite file in /data (mount a volume there).
ENV LABQ_DATABASE_URL=sqlite:////data/labq.db \
    LABQ_ENVIRONMENT=production
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["labq", "serve", "--host", "0.0.0.0", "--port", "8000"]
