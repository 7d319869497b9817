# Production image: a builder stage installs the hash-locked runtime requirements into
# a virtualenv; the runtime stage gets only that venv and the app code, runs as a fixed
# non-root user and works on a read-only root filesystem (only /tmp is written).
# Builds with BuildKit and with the classic builder alike (no BuildKit-only syntax).

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# The base image's pip installs into a venv that has none: pip is not shipped to run time.
RUN python -m venv --without-pip /opt/venv
COPY requirements/runtime.txt /tmp/runtime.txt
RUN python -m pip --python /opt/venv/bin/python install --require-hashes --no-deps \
        -r /tmp/runtime.txt

FROM python:${PYTHON_VERSION}-slim AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="fastapi-service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_VERSION=${VERSION}
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY alembic.ini gunicorn.conf.py ./
COPY migrations ./migrations
COPY app ./app
# Bytecode compiled now, because at run time the filesystem is read-only.
RUN python -m compileall -q app migrations gunicorn.conf.py
USER 10001:10001
# The API, and the metrics listener (METRICS_PORT: /metrics only).
EXPOSE 8000 9090
# Exec form: gunicorn is PID 1, receives SIGTERM itself and reaps its own workers.
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
