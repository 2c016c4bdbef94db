# syntax=docker/dockerfile:1
#
# Production image for the Rujukan service.
#
#   docker build -t rujukan .
#   # once per release: migrate as the role that owns the database, and grant the service's
#   docker run --rm \
#     -e RUJUKAN_MIGRATION_DATABASE_URL=postgresql+psycopg://rujukan_owner:pass@db:5432/rujukan \
#     -e RUJUKAN_DATABASE_URL=postgresql+psycopg://rujukan:pass@db:5432/rujukan \
#     -e RUJUKAN_SIGNING_KEY_FILE=/run/secrets/signing-keys.pem \
#     -e RUJUKAN_DATA_KEY_FILE=/run/secrets/data-keys.json \
#     rujukan rujukan migrate
#   # the servers: only the service role's URL, never the owner's
#   docker run -p 8000:8000 \
#     -e RUJUKAN_DATABASE_URL=postgresql+psycopg://rujukan:pass@db:5432/rujukan \
#     -e RUJUKAN_SIGNING_KEY_FILE=/run/secrets/signing-keys.pem \
#     -e RUJUKAN_DATA_KEY_FILE=/run/secrets/data-keys.json \
#     rujukan
#
# RUJUKAN_ENV=prod refuses to start without explicitly provisioned key files, and refuses a
# PostgreSQL role that could rewrite the audit trail (a superuser, the tables' owner).
# The container runs `rujukan migrate` (under a lock, so containers starting together are safe),
# then serves on $RUJUKAN_HOST:$RUJUKAN_PORT with $RUJUKAN_WORKERS worker processes:
# - with only the service role's URL, migrate finds nothing to do once the job has migrated;
# - with both URLs (a trial), it migrates as the owner, and the server runs without that URL;
# - with one URL and no roles (SQLite, or RUJUKAN_ENV=dev), it migrates and serves as it is.
# On SIGTERM (docker stop) in-flight requests get $RUJUKAN_GRACEFUL_TIMEOUT seconds to finish:
# give the container a longer stop timeout (docker stop -t 30, stop_grace_period: 30s).

# ---------------------------------------------------------------------------
# Builder: install the project and its dependencies into a self-contained venv.
# ---------------------------------------------------------------------------
# Both stages use the same pinned base so the venv's interpreter symlinks stay valid.
FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY service/ ./service/
RUN pip install --no-cache-dir .

# ---------------------------------------------------------------------------
# Runtime: the venv, the migration scripts, and an unprivileged user.
# ---------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="rujukan" \
      org.opencontainers.image.description="Referrals of vulnerable people between Kemensos, LPSK and KemenHAM" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"

ENV RUJUKAN_MIGRATIONS_DIR=/app/migrations \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RUJUKAN_ENV=prod \
    RUJUKAN_HOST=0.0.0.0 \
    RUJUKAN_PORT=8000 \
    RUJUKAN_WORKERS=2 \
    RUJUKAN_GRACEFUL_TIMEOUT=25

# Fixed ids so that mounted volumes and orchestrator security contexts
# (runAsUser: 10001) can rely on them.
RUN groupadd --system --gid 10001 rujukan \
    && useradd --system --uid 10001 --gid rujukan \
       --home-dir /app --no-create-home --shell /usr/sbin/nologin rujukan \
    && mkdir -p /app/var \
    && chown rujukan:rujukan /app/var

COPY --from=builder /opt/venv /opt/venv
COPY alembic.ini /app/alembic.ini
COPY migrations/ /app/migrations/

# Relative defaults (sqlite:///./var/rujukan.db, ./var/*-keys.*) resolve under /app/var,
# the only directory the service user may write to.
WORKDIR /app
USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RUJUKAN_PORT', '8000'), timeout=3)"]

STOPSIGNAL SIGTERM

# `exec`: the server replaces the shell, so it is the process that receives SIGTERM; `env -u`:
# it runs without the owner's URL, which only `rujukan migrate` needs.
CMD ["sh", "-c", "rujukan migrate && exec env -u RUJUKAN_MIGRATION_DATABASE_URL rujukan serve --host \"$RUJUKAN_HOST\" --port \"$RUJUKAN_PORT\""]
