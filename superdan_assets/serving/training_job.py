"""``superdan train``: the SageMaker training entrypoint of the container.

SageMaker's bring-your-own-container layout: the data channel is mounted at
``/opt/ml/input/data/training`` (``SM_CHANNEL_TRAINING``), hyper-parameters arrive as a JSON
object of *strings* in ``/opt/ml/input/config/hyperparameters.json``, the model must be
written to ``/opt/ml/model`` (``SM_MODEL_DIR``), and a failed job explains itself in
``/opt/ml/output/failure`` and exits non-zero. The artifact written here is the same one the
``crime_model`` asset writes (``ml.artifact.save_model``), so ``superdan serve`` loads either.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TRAINING_DIR = "/opt/ml/input/data/training"
DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_HYPERPARAMETERS = "/opt/ml/input/config/hyperparameters.json"
DEFAULT_OUTPUT_DIR = "/opt/ml/output"
#: Days at the end of the data held out for evaluation (never trained on).
DEFAULT_HOLDOUT_DAYS = 28
#: SageMaker shows this many characters of the failure file.
_FAILURE_LIMIT = 1024

#: Hyper-parameters the job itself consumes; every other one goes to the model's parameters
#: (``ml.model.DEFAULT_PARAMS``, which refuses unknown names).
JOB_PARAMETERS = ("holdout_days", "min_recall", "seed")
#: Passed to ``train_and_evaluate`` as keyword arguments when given (its defaults otherwise):
#: ``include_seed_protocol=false`` skips the slow random-forest baseline.
TRAINING_OPTIONS: dict[str, type] = {"validation_days": int, "include_seed_protocol": bool}


class TrainingJobError(RuntimeError):
    """The job cannot run as configured; the message is what the failure file says."""


@dataclass(frozen=True)
class TrainingPaths:
    """Where the job reads and writes, resolved from flags, then ``SM_*`` variables."""

    training_dir: Path
    model_dir: Path
    hyperparameters_file: Path
    output_dir: Path

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @staticmethod
    def resolve(
        training_dir: str | None = None,
        model_dir: str | None = None,
        hyperparameters_file: str | None = None,
        output_dir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> TrainingPaths:
        env = os.environ if env is None else env
        return TrainingPaths(
            training_dir=Path(
                training_dir or env.get("SM_CHANNEL_TRAINING") or DEFAULT_TRAINING_DIR
            ),
            model_dir=Path(model_dir or env.get("SM_MODEL_DIR") or DEFAULT_MODEL_DIR),
            hyperparameters_file=Path(hyperparameters_file or DEFAULT_HYPERPARAMETERS),
            output_dir=Path(output_dir or env.get("SM_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR),
        )


def parse_value(raw: Any) -> Any:
    """A hyper-parameter as SageMaker passes it (always a string) -> the Python value.

    ``"28"`` -> 28, ``"0.05"`` -> 0.05, ``"true"``/``"True"`` -> True, ``"[1, 2]"`` -> [1, 2],
    anything else stays a string. Non-strings (a hand-written file) are kept as they are.
    """
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if text in ("True", "False"):  # str() of a Python bool, as the SageMaker SDK sends it
        return text == "True"
    try:
        return json.loads(text)
    except ValueError:
        return raw


def read_hyperparameters(path: Path) -> dict[str, Any]:
    """The hyper-parameters file, values converted; an absent file means no overrides."""
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text())
    except ValueError as exc:
        raise TrainingJobError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise TrainingJobError(f"{path} must hold a JSON object of hyper-parameters")
    return {str(name): parse_value(value) for name, value in document.items()}


@dataclass(frozen=True)
class JobConfig:
    """The job's own settings and the parameters passed on to the model."""

    holdout_days: int
    min_recall: float
    seed: int
    model_params: dict[str, Any]
    training_options: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_hyperparameters(hyperparameters: Mapping[str, Any]) -> JobConfig:
        def typed(name: str, kind: type, default: Any) -> Any:
            value = hyperparameters.get(name, default)
            try:
                converted = kind(value)
            except (TypeError, ValueError):
                raise TrainingJobError(
                    f"hyper-parameter {name}={value!r} must be a {kind.__name__}"
                ) from None
            if kind is int and converted != value and not isinstance(value, str):
                raise TrainingJobError(f"hyper-parameter {name}={value!r} must be an integer")
            return converted

        options = {}
        for name, kind in TRAINING_OPTIONS.items():
            if name in hyperparameters:
                value = hyperparameters[name]
                if kind is bool and not isinstance(value, bool):
                    raise TrainingJobError(
                        f"hyper-parameter {name}={value!r} must be true or false"
                    )
                options[name] = typed(name, kind, None)
        config = JobConfig(
            holdout_days=typed("holdout_days", int, DEFAULT_HOLDOUT_DAYS),
            min_recall=typed("min_recall", float, 0.6),
            seed=typed("seed", int, 0),
            model_params={
                k: v
                for k, v in hyperparameters.items()
                if k not in JOB_PARAMETERS and k not in TRAINING_OPTIONS
            },
            training_options=options,
        )
        if config.holdout_days < 1:
            raise TrainingJobError("hyper-parameter holdout_days must be at least 1")
        if not 0.0 < config.min_recall <= 1.0:
            raise TrainingJobError("hyper-parameter min_recall must be in (0, 1]")
        return config


def read_training_data(
    training_dir: Path, progress: Callable[[str], None], city: str | None = None
):
    """Every incident in the channel: the city's CSV files read through its spec
    (``city``: a packaged name or a spec path; default ``SUPERDAN_CITY``, else Chicago)."""
    import pandas as pd

    from superdan_assets.cities.catalog import default_city_name, resolve_spec
    from superdan_assets.sources.base import SourceError
    from superdan_assets.sources.export import CsvSource

    spec = resolve_spec(city or default_city_name())
    source = CsvSource(spec, path=training_dir)
    try:
        return source.fetch(pd.Timestamp("1900-01-01"), pd.Timestamp("2200-01-01"), progress)
    except SourceError as exc:
        raise TrainingJobError(f"training channel {training_dir}: {exc}") from None


def run(
    paths: TrainingPaths, progress: Callable[[str], None] = print, city: str | None = None
) -> dict[str, Any]:
    """Train on everything but the last ``holdout_days``, evaluate on them, save the artifact.

    Returns the manifest written next to the model.
    """
    config = JobConfig.from_hyperparameters(read_hyperparameters(paths.hyperparameters_file))
    progress(f"reading training data from {paths.training_dir}")
    incidents = read_training_data(paths.training_dir, progress, city)
    if incidents.empty:
        raise TrainingJobError(f"training channel {paths.training_dir} holds no incidents")

    from superdan_assets.ml.artifact import save_model
    from superdan_assets.ml.training import split_holdout, train_and_evaluate

    train_raw, test_raw = split_holdout(incidents, config.holdout_days)
    progress(
        f"training on {len(train_raw)} incidents, holding out the last "
        f"{config.holdout_days} days ({len(test_raw)} incidents) for evaluation"
    )
    result = train_and_evaluate(
        train_raw,
        test_raw,
        params=config.model_params or None,
        min_recall=config.min_recall,
        seed=config.seed,
        progress=progress,
        **config.training_options,
    )
    manifest = save_model(result.pipeline, result.manifest, paths.model_dir)
    # One parseable line for SageMaker metric definitions and for people reading the log.
    progress("metrics: " + json.dumps(manifest.get("metrics", {}), sort_keys=True, default=str))
    progress(f"model {manifest['version']} written to {paths.model_dir}")
    return manifest


def write_failure(paths: TrainingPaths, exc: BaseException) -> None:
    """Explain a failed job where SageMaker looks for it (best effort: never mask ``exc``)."""
    reason = f"{type(exc).__name__}: {exc}"
    try:
        paths.output_dir.mkdir(parents=True, exist_ok=True)
        paths.failure_file.write_text(reason[:_FAILURE_LIMIT])
    except OSError as write_error:
        print(f"could not write {paths.failure_file}: {write_error}", file=sys.stderr)


def main(paths: TrainingPaths, city: str | None = None) -> int:
    """Run the job; on any failure write the failure file and return 1."""
    try:
        run(paths, city=city)
    except Exception as exc:
        traceback.print_exc()
        write_failure(paths, exc)
        print(f"training failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
