# syntax=docker/dockerfile:1.7
# Omnistock: a small image of the service. Build stage: the wheel (with lua/ inside it as
# app/lua) and every dependency as wheels. Runtime stage: those wheels installed offline,
# a non-root user, configured only by OMNISTOCK_* environment variables.
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lua ./lua
COPY app ./app
RUN pip wheel --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/omnistock \
        --shell /usr/sbin/nologin omnistock \
    && mkdir -p /data /secrets \
    && chown omnistock:omnistock /data /secrets
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/omnistock-*.whl

USER 10001:10001
WORKDIR /home/omnistock
# Listen on every interface of the container: the service then requires API keys
# (OMNISTOCK_API_KEYS_FILE, see `omnistock keys new`) and refuses to start without them.
# OMNISTOCK_REDIS_URL unset: an embedded store with its append-only file under /data.
ENV OMNISTOCK_HOST=0.0.0.0 \
    OMNISTOCK_PORT=8080 \
    OMNISTOCK_DATA_DIR=/data \
    OMNISTOCK_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('OMNISTOCK_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["omnistock"]
CMD ["serve"]
