# octoqueue server image: `octoqueue serve` as a non-root user.
#
#   docker build -t octoqueue .
#   docker run -p 8080:8080 --env-file .env -v octoqueue-data:/data octoqueue
#
# Configuration comes from the environment (see .env.example); the default store is SQLite in /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 octoqueue \
    && useradd --system --uid 10001 --gid octoqueue --home-dir /home/octoqueue --create-home octoqueue \
    && mkdir -p /data \
    && chown octoqueue:octoqueue /data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY octoqueue ./octoqueue
RUN pip install . && rm -rf /src

WORKDIR /data
USER octoqueue:octoqueue
VOLUME ["/data"]

# The default store, sqlite:///octoqueue.db, is relative to the working directory: /data/octoqueue.db.
ENV OCTOQUEUE_HOST=0.0.0.0 \
    PORT=8080
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/live' % os.environ.get('PORT', '8080'), timeout=4)"]

# Exec form: uvicorn is PID 1 and gets SIGTERM directly, finishing in-flight requests before it exits.
CMD ["octoqueue", "serve"]
