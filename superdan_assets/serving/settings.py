"""The server's settings: SageMaker's ``SAGEMAKER_*`` environment, command-line overrides.

Read and checked once in the master process, so a typo in an environment variable is a clear
error at start-up rather than a surprise under load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_S = 60
DEFAULT_MAX_PAYLOAD_MB = 5.0
#: SageMaker sends SIGTERM and kills the container 30 s later; drain within that.
DEFAULT_GRACEFUL_TIMEOUT_S = 30.0
#: ``SUPERDAN_BATCH_WAIT_MS``: see ``serving.batching.DEFAULT_MAX_WAIT_S``.
DEFAULT_BATCH_WAIT_MS = 3.0


class SettingsError(ValueError):
    """A setting has a value the server cannot use; the message names the setting."""


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``superdan serve`` needs, resolved."""

    model_dir: Path
    host: str
    port: int
    workers: int
    #: A worker whose event loop is stuck this long (one request taking it) is replaced.
    timeout_s: float
    max_payload_bytes: int
    graceful_timeout_s: float = DEFAULT_GRACEFUL_TIMEOUT_S
    micro_batching: bool = True
    #: Longest a request waits for the others of its cycle (see ``serving.batching``).
    batch_wait_s: float = DEFAULT_BATCH_WAIT_MS / 1000
    access_log: bool = False


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not value >= minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def max_payload_bytes(env: Mapping[str, str] | None = None) -> int:
    """The request body limit of ``SAGEMAKER_MAX_PAYLOAD_IN_MB`` (MiB), in bytes.

    Also read by the local endpoint's proxy, so it knows which bodies the server will refuse.
    """
    env = os.environ if env is None else env
    megabytes = _number(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", DEFAULT_MAX_PAYLOAD_MB, 0)
    return int(megabytes * 1024 * 1024)


def resolve_settings(
    *,
    model_dir: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    workers: int | None = None,
    micro_batching: bool = True,
    access_log: bool = False,
    env: Mapping[str, str] | None = None,
) -> ServeSettings:
    """Settings from explicit values, else the ``SAGEMAKER_*`` environment, else defaults."""
    env = os.environ if env is None else env
    if port is None:
        port = int(_number(env, "SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT, 0))
    if not 0 <= port <= 65535:
        raise SettingsError(f"port {port} is not a TCP port")
    if workers is None:
        workers = int(_number(env, "SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1, 1))
    if workers < 1:
        raise SettingsError(f"workers must be at least 1, got {workers}")
    return ServeSettings(
        model_dir=Path(model_dir or DEFAULT_MODEL_DIR),
        host=host,
        port=port,
        workers=workers,
        timeout_s=_number(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", DEFAULT_TIMEOUT_S, 1),
        max_payload_bytes=max_payload_bytes(env),
        micro_batching=micro_batching,
        batch_wait_s=_number(env, "SUPERDAN_BATCH_WAIT_MS", DEFAULT_BATCH_WAIT_MS, 0) / 1000,
        access_log=access_log,
    )
