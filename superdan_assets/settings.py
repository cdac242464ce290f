"""Every setting a user can change, read from the environment in one place.

Why one module: the README documents these names, the Dagster definitions and the runner read
them, and tests override them with ``monkeypatch.setenv``. Defaults are the embedded,
single-machine ones (local files, SQLite Dagster storage, W&B offline); the AWS deployment
changes only environment variables.

What a city is (its feed, columns, labels, timezone) is not a setting: it is the city's spec
(:mod:`superdan_assets.cities`); ``SUPERDAN_CITY``/``SUPERDAN_CITIES`` only choose which specs.

Secrets (the SODA app token, AWS keys, the W&B key, the alert webhook URL) are never read here
into values that end up in config or metadata: the code that needs one reads it by name at the
moment of use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from superdan_assets.deploy.result import DEFAULT_SAGEMAKER_INSTANCE_TYPE

#: Thread settings applied by the project itself (GUIDE section 5): with the default active
#: OpenMP wait policy, multi-threaded gradient boosting ran 25-800x slower on 2-core machines.
OPENMP_DEFAULTS = {"OMP_WAIT_POLICY": "passive"}


def apply_runtime_defaults() -> None:
    """Set environment defaults that must be in place before numpy/lightgbm/dagster load."""
    for key, value in OPENMP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    # W&B never needs a network for the embedded default; a user with a key sets "online".
    os.environ.setdefault("WANDB_MODE", "offline")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def project_home() -> Path:
    """Root of everything superdan writes locally (``SUPERDAN_HOME``, default ``./.superdan``)."""
    return Path(_env("SUPERDAN_HOME", ".superdan")).expanduser().resolve()


@dataclass(frozen=True)
class Settings:
    """A snapshot of the environment-driven settings (see README "Settings")."""

    home: Path
    data_dir: Path
    storage: str  # "local" | "s3"
    s3_bucket: str | None
    s3_prefix: str
    refetch_days: int
    endpoint_backend: str  # "local" | "sagemaker"
    endpoint_port: int | None
    endpoint_workers: int
    sagemaker_endpoint_name: str
    sagemaker_image_uri: str | None
    sagemaker_role_arn: str | None
    sagemaker_instance_type: str

    @classmethod
    def from_env(cls) -> Settings:
        home = project_home()
        storage = _env("SUPERDAN_STORAGE", "local")
        if storage not in ("local", "s3"):
            raise ValueError(f"SUPERDAN_STORAGE={storage!r} is not one of 'local', 's3'")
        bucket = _env("SUPERDAN_S3_BUCKET")
        if storage == "s3" and not bucket:
            raise ValueError("SUPERDAN_STORAGE=s3 needs SUPERDAN_S3_BUCKET")
        backend = _env("SUPERDAN_ENDPOINT_BACKEND", "local")
        if backend not in ("local", "sagemaker"):
            raise ValueError(
                f"SUPERDAN_ENDPOINT_BACKEND={backend!r} is not one of 'local', 'sagemaker'"
            )
        return cls(
            home=home,
            data_dir=Path(_env("SUPERDAN_DATA_DIR", str(home / "data"))).expanduser().resolve(),
            storage=storage,
            s3_bucket=bucket,
            s3_prefix=_env("SUPERDAN_S3_PREFIX", "superdan").strip("/"),
            refetch_days=int(_env("SUPERDAN_REFETCH_DAYS", "7")),
            endpoint_backend=backend,
            endpoint_port=int(port) if (port := _env("SUPERDAN_ENDPOINT_PORT")) else None,
            endpoint_workers=int(_env("SUPERDAN_ENDPOINT_WORKERS", "1")),
            sagemaker_endpoint_name=_env("SUPERDAN_SAGEMAKER_ENDPOINT", "superdan-crime-model"),
            sagemaker_image_uri=_env("SUPERDAN_SAGEMAKER_IMAGE_URI"),
            sagemaker_role_arn=_env("SUPERDAN_SAGEMAKER_ROLE_ARN"),
            sagemaker_instance_type=_env(
                "SUPERDAN_SAGEMAKER_INSTANCE_TYPE", DEFAULT_SAGEMAKER_INSTANCE_TYPE
            ),
        )
