# Production image: a builder stage installs the hash-locked runtime requirements into
# a virtualenv; the runtime stage gets only that venv and the app code, runs as a fixed
# non-root user and works on a read-only root filesystem (only /tmp is written).
# No BuildKit-only syntax (RUN mounts, COPY --chmod or --link, heredocs): the classic
# builder builds it too.
#
# Base image: the official python:3.12-slim, pinned by digest on the FROM line below,
# the form Dependabot's docker ecosystem keeps current. The build argument PYTHON_IMAGE
# names another base instead, a registry mirror or a local tag:
#   docker build --build-arg PYTHON_IMAGE=mirror.example.com/library/python:3.12-slim .
# BuildKit then never pulls the pinned image; the classic builder pulls every stage's
# base, so it still needs the pinned one. Keep the base's Python version (3.12) within
# what requirements/*.txt are resolved for (3.11 and up: see `make lock`).
ARG PYTHON_IMAGE=python-pinned

FROM python:3.12-slim@sha256:229a2c5bfa27522db7815ea81f9bed70af17ccb9de9fc7ad142b1877b5830d36 AS python-pinned

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# The venv gets no pip of its own: the base image's pip installs into it.
RUN python -m venv --without-pip /opt/venv
COPY requirements/runtime.txt /tmp/runtime.txt
RUN python -m pip --python /opt/venv/bin/python install --require-hashes --no-deps \
        -r /tmp/runtime.txt

FROM ${PYTHON_IMAGE} AS runtime
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
# Nothing is installed at run time, so the base image's pip (and setuptools and wheel,
# where it has them) goes; their files remain only in the base image's layers.
RUN python -m pip uninstall --yes --quiet --disable-pip-version-check --root-user-action=ignore \
        pip setuptools wheel \
    && groupadd --system --gid 10001 app \
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
