# One image for SageMaker bring-your-own-container: `docker run IMAGE train` / `docker run IMAGE serve`.
#   train: reads /opt/ml/input/data/training, writes /opt/ml/model (or the SM_* paths)
#   serve: loads /opt/ml/model, listens on 8080 (SAGEMAKER_BIND_TO_PORT)
# Tested outside Docker by superdan_assets_tests/serving/test_dockerfile.py, which runs the very
# ENTRYPOINT/CMD commands below.

# ---- build: wheels for the project and its pinned dependencies --------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY superdan_assets ./superdan_assets
# The exact versions come from pyproject.toml. The base install is only what `serve` and
# `train` need (the model's libraries, uvicorn with uvloop/httptools): no Dagster, GX or W&B.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install .

# ---- runtime: no compilers, non-root ---------------------------------------------------------
FROM python:3.11-slim AS runtime
# libgomp: OpenMP runtime that LightGBM's wheel links against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 superdan \
    && mkdir -p /opt/ml/model /opt/ml/input/data/training /opt/ml/input/config /opt/ml/output \
    && chown -R superdan:superdan /opt/ml
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    OMP_WAIT_POLICY=passive \
    SAGEMAKER_BIND_TO_PORT=8080 \
    SUPERDAN_SERVE_HOST=0.0.0.0
# SageMaker may run the container as root (training mounts /opt/ml as root); when it honours
# USER, the paths above are writable by this user.
USER superdan
WORKDIR /home/superdan
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SAGEMAKER_BIND_TO_PORT', '8080') + '/ping', timeout=2)"]
ENTRYPOINT ["superdan"]
# SageMaker passes `serve` or `train` as the only argument (replacing CMD), so the listen
# address comes from SUPERDAN_SERVE_HOST above rather than from a flag here.
CMD ["serve"]
