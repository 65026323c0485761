# secretbot's production image: `secretbot serve` on port 3978 (web tier and a job worker in one
# process), configured only by environment variables at run time (README, "Configuration"); nothing
# secret is baked in. The same image runs the two roles apart with a shared REDIS_URL:
# `secretbot serve --no-worker` (web tier) and `secretbot worker` (no port, no HEALTHCHECK needed:
# override it with `--no-healthcheck` or your orchestrator's own probe).
# The install is the README's `pip install .`, split in two stages so that the runtime image holds
# no build tools, no source tree and no pip cache.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY cards ./cards
# secretbot and every dependency as wheels; the runtime stage installs them without any index.
RUN python -m pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=3978 \
    HOST=0.0.0.0
RUN groupadd --system --gid 10001 secretbot \
 && useradd --system --uid 10001 --gid secretbot --no-create-home --shell /usr/sbin/nologin secretbot
COPY --from=build /wheels /tmp/wheels
RUN python -m pip install --no-cache-dir --disable-pip-version-check --no-index --find-links /tmp/wheels secretbot \
 && rm -rf /tmp/wheels
USER 10001:10001
EXPOSE 3978
# /healthz says the process answers; /readyz (Redis and Graph) is for the orchestrator's readiness probe.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3978'), timeout=2)"]
CMD ["secretbot", "serve"]
