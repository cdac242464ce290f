"""Small real model artifacts for deployment tests, built in well under a second.

The pipeline takes the canonical incident frame the server builds (it selects ``latitude`` and
``longitude`` by name, imputing missing ones) and is plain scikit-learn, so every server
process can unpickle it. Versions differ in their training seed, so v1 and v2 really are two
different models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from superdan_assets.ml.artifact import MANIFEST_FILE, MODEL_FILE, save_model, sha256_file

GEO_COLUMNS = ["latitude", "longitude"]


def small_pipeline(seed: int) -> Pipeline:
    """A fitted lat/lon logistic regression: canonical incident frame -> P(burglary)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"latitude": 41.65 + rng.random(400) * 0.35, "longitude": -87.85 + rng.random(400) * 0.3}
    )
    labels = (frame["latitude"] + rng.normal(0, 0.05, 400) > 41.85).astype(int)
    pipeline = Pipeline(
        [
            ("geo", ColumnTransformer([("impute", SimpleImputer(), GEO_COLUMNS)])),
            ("classify", LogisticRegression(C=1.0 + seed)),
        ]
    )
    return pipeline.fit(frame, labels)


def write_artifact(directory: Path, version: str, seed: int, threshold: float = 0.5) -> Path:
    """Save a small model as a real artifact (``artifact.save_model``); return its directory."""
    save_model(
        small_pipeline(seed),
        {"version": version, "threshold": threshold, "features": GEO_COLUMNS, "city": "chicago"},
        directory,
    )
    return directory


def tamper(directory: Path) -> Path:
    """Change the model file after the manifest was written (its sha256 no longer matches)."""
    with open(directory / MODEL_FILE, "ab") as fh:
        fh.write(b"tampered")
    return directory


def write_unloadable_artifact(directory: Path, version: str) -> Path:
    """An artifact whose hash matches but whose pickle cannot be loaded (server must refuse)."""
    write_artifact(directory, version, seed=0)
    (directory / MODEL_FILE).write_bytes(b"this is not a joblib pickle")
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest["sha256"] = sha256_file(directory / MODEL_FILE)
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    return directory
