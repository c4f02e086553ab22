# syntax=docker/dockerfile:1
# gameserver container: `docker build -t gameserver .` then
# `docker run -p 8000:8000 gameserver` (the arena demo at http://localhost:8000/).
# Every option is also an environment variable (GAMESERVER_PORT, GAMESERVER_TICK_RATE, ...;
# `docker run gameserver gameserver --print-config` shows the result), or mount a TOML file
# and set GAMESERVER_CONFIG=/etc/gameserver.toml.

# ---- builder: build the wheels (ours and the dependencies') once -------------------------
FROM python:3.12-slim AS builder
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY gameserver ./gameserver
COPY clients ./clients
COPY examples ./examples
RUN pip wheel . --wheel-dir /wheels

# ---- runtime: only the installed wheels, a non-root user ---------------------------------
FROM python:3.12-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# The wheels are bind-mounted from the builder (BuildKit, the default builder since Docker
# 23), so they never become a layer of the runtime image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels gameserver \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gameserver
USER gameserver
WORKDIR /tmp
EXPOSE 8000
# Liveness on /healthz with python's urllib (slim has no curl); honours GAMESERVER_PORT.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-m", "gameserver.probe"]
# SIGTERM (docker stop) closes every player with 1001 and exits 0; give it
# --drain-seconds S (GAMESERVER_DRAIN_SECONDS) to fail /readyz first.
STOPSIGNAL SIGTERM
CMD ["gameserver", "--host", "0.0.0.0"]
