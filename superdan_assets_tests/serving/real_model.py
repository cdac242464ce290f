"""The real trained pipeline, small and fast, for tests that must exercise the real features.

Why not the stand-in of ``fixture_model``: it reads four fields, so hostile values in ``block``,
the police codes or the coordinates never reach ``ml.features``, where the bugs were (a long
masked block overflowed a float). This trains what ``superdan train`` trains, through the same
code (the SageMaker training job reading the bulk-export files of its channel), on export rows
from ``datagen`` so it runs everywhere, in about three seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

from superdan_assets.serving.training_job import TrainingPaths, run
from superdan_assets_tests.datagen import export_rows, write_export

#: Small but complete: every feature kind is fitted (history tables, category vocabularies).
HYPERPARAMETERS = {
    "holdout_days": "14",
    "validation_days": "10",
    "include_seed_protocol": "false",
    "n_estimators": "30",
}


def train_real_model(directory: Path, days: int = 60, per_day: int = 30) -> Path:
    """Train the production pipeline on generated export rows; the artifact is ``directory``/model."""
    channel = directory / "channel"
    write_export(channel / "crimes.csv", export_rows("2018-01-01", days=days, per_day=per_day))
    hyperparameters = directory / "hyperparameters.json"
    hyperparameters.write_text(json.dumps(HYPERPARAMETERS))
    paths = TrainingPaths(channel, directory / "model", hyperparameters, directory / "output")
    run(paths, progress=lambda _message: None)
    return paths.model_dir
