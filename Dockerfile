# One image for SageMaker bring-your-own-container: `docker run IMAGE train` / `docker run IMAGE serve`.
#   train: reads /opt/ml/input/data/training, writes /opt/ml/model (or the SM_* paths)
#   serve: loads /opt/ml/model, listens on 8080 (SAGEMAKER_BIND_TO_PORT)
# Tested outside Docker by superdan_assets_tests/serving/test_dockerfile.py, which runs the very
# ENTRYPOINT/CMD commands below, and built and run for real (podman) by scripts/container-check.sh.
# Build with `--format docker` when using podman/buildah: the OCI format drops HEALTHCHECK.

# ---- build: a virtualenv with the project and its pinned dependencies, trimmed ----------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Every dependency installs from a binary wheel (--only-binary below), so no compiler: binutils
# is here for `strip`, libgomp1 for LightGBM in the import check at the end of this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils libgomp1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The dependencies first, in their own layer, so a change to the code alone reuses it. The exact
# versions come from pyproject.toml. The base install is only what `serve` and `train` need (the
# model's libraries, uvicorn with uvloop/httptools): no Dagster, GX or W&B.
COPY pyproject.toml ./
# Then trim what neither `serve` nor `train` ever reads (measured: 586 MB -> about 320 MB):
# - bytecode: pip would compile every module (127 MB); the few the entrypoints import are
#   compiled below, after the project is installed;
# - the libraries' own test suites (pandas, scipy, numpy, pyarrow, sklearn: about 50 MB);
# - C/C++/Cython headers and sources (pyarrow/include, *.pxd, ...);
# - debug symbols of the shared libraries (`strip --strip-unneeded`: about 60 MB, most of it
#   pyarrow and uvloop). The vendored libraries under *.libs/ are left alone: auditwheel
#   rewrote them with patchelf, and stripping such files is a known way to break them;
# - pyarrow's Arrow Flight RPC and S3 filesystem (about 40 MB): only pyarrow.flight and
#   pyarrow._s3fs load them (checked with ldd); the project reads local files with pyarrow.csv
#   and pyarrow.parquet, and pyarrow.fs already treats a missing _s3fs as "no S3 support".
RUN python -m venv /opt/venv \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && /opt/venv/bin/pip install --no-compile --only-binary=:all: -r /tmp/requirements.txt \
    && cd /opt/venv/lib/python3.11/site-packages \
    && find . -depth -type d \( -name tests -o -name test -o -name include \) -exec rm -rf {} + \
    && find . -type f \( -name '*.pxd' -o -name '*.pyx' -o -name '*.pxi' -o -name '*.h' \
        -o -name '*.hpp' -o -name '*.c' -o -name '*.cpp' \) -delete \
    && find . -type f -name '*.so*' -not -path '*.libs/*' -exec strip --strip-unneeded {} + \
    && rm pyarrow/flight.py pyarrow/_flight.cpython-*.so pyarrow/libarrow_flight.so.* \
        pyarrow/libarrow_python_flight.so* pyarrow/_s3fs.cpython-*.so pyarrow/libarrow_s3.so.*
COPY README.md LICENSE ./
COPY superdan_assets ./superdan_assets
# The project itself (its pinned dependencies are already there from the layer above, so pip
# adds only the project); then pip and setuptools leave the runtime environment (nothing
# installs there at run time). The imports prove the trimmed environment still loads (a broken
# strip or a deleted module the code needs fails the build here, not in SageMaker), and leave
# bytecode for the modules `serve` and `train` import (36 MB): without it every worker would
# recompile them at each start (measured: 4.6 s -> 8-9 s to import the serving stack), since
# the runtime user cannot write bytecode and PYTHONDONTWRITEBYTECODE is set.
RUN /opt/venv/bin/pip install . --no-compile \
    && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools \
    && find /opt/venv -type d -name __pycache__ -prune -exec rm -rf {} + \
    && cd / && /opt/venv/bin/python -c "import pyarrow.csv, pyarrow.dataset, pyarrow.fs, pyarrow.parquet, superdan_assets.cli, superdan_assets.serving.app, superdan_assets.serving.supervisor, superdan_assets.serving.training_job, superdan_assets.ml.artifact, superdan_assets.ml.training, superdan_assets.sources.export"

# ---- runtime: no compilers, no pip, non-root -------------------------------------------------
FROM python:3.11-slim AS runtime
# libgomp: OpenMP runtime that LightGBM's wheel links against. apt's own caches go too (the
# official image's docker-clean hook does this; a plain Debian base keeps 78 MB of them).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
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
