# WeCom Copilot — production image (web + workers; scale workers with `python server.py worker`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    COPILOT_DATA_DIR=/data COPILOT_HOST=0.0.0.0 COPILOT_PORT=8080

RUN apt-get update && apt-get install -y --no-install-recommends gcc g++ curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY nlp ./nlp
COPY knowledge ./knowledge
COPY training ./training
COPY server.py ./
# torch is pinned to 2.13.0 in pyproject.toml; point pip at a CPU-only wheel index with
# PIP_EXTRA_INDEX_URL at build time to avoid the multi-GB CUDA build.
ARG PIP_EXTRA_INDEX_URL=""
RUN pip install .

RUN useradd --create-home --uid 10001 copilot && mkdir -p /data && chown copilot /data
USER copilot
# Train the intent/sentiment models into the image's data dir (as the runtime user, so the
# service can retrain them when the training data changes).
RUN python -m training build
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
CMD ["python", "server.py"]
