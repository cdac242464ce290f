"""A small, fast model over canonical incident frames, for serving tests.

It lives in an importable module (not in a test file) because the server under test runs in
another process and must unpickle it: hour, coordinates and a one-hot location type feed a
logistic regression, enough to make predictions depend on every kind of input field.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from superdan_assets.ml.artifact import save_model
from superdan_assets.ml.schema import to_canonical

PLACES = ("RESIDENCE", "APARTMENT", "STREET", "SMALL RETAIL STORE", "SIDEWALK")
VERSION = "fixture-1"
THRESHOLD = 0.35


def model_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical frame -> numeric hour/lat/lon (missing as 0) and the location type."""
    return pd.DataFrame(
        {
            "hour": frame["date"].dt.hour.astype("float64").fillna(0.0).to_numpy(),
            "latitude": frame["latitude"].fillna(0.0).to_numpy() - 41.8,
            "longitude": frame["longitude"].fillna(0.0).to_numpy() + 87.7,
            "location_description": frame["location_description"]
            .astype(object)
            .where(frame["location_description"].notna(), "UNKNOWN")
            .to_numpy(),
        }
    )


def build_pipeline() -> Pipeline:
    encode = ColumnTransformer(
        [("place", OneHotEncoder(handle_unknown="ignore"), ["location_description"])],
        remainder="passthrough",
    )
    return Pipeline(
        [
            ("inputs", FunctionTransformer(model_inputs)),
            ("encode", encode),
            ("model", LogisticRegression(max_iter=500)),
        ]
    )


def training_incidents(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Generated canonical incidents and labels in which the place and hour carry signal."""
    rng = np.random.default_rng(seed)
    place = rng.integers(0, len(PLACES), n)
    hour = rng.integers(0, 24, n)
    burglary = rng.random(n) < np.where(place < 2, 0.6, 0.1) * np.where(hour < 8, 1.3, 0.8)
    dates = pd.Timestamp("2018-03-01") + pd.to_timedelta(rng.integers(0, 60, n), "D")
    frame = pd.DataFrame(
        {
            "date": dates + pd.to_timedelta(hour, "h"),
            "location_description": np.array(PLACES)[place],
            "latitude": 41.7 + rng.random(n) * 0.3,
            "longitude": -87.8 + rng.random(n) * 0.3,
        }
    )
    return to_canonical(frame, "chicago", required=("date",)), burglary.astype(int)


def write_fixture_model(directory: Path) -> Path:
    """Fit the pipeline and save it as a verified artifact in ``directory``."""
    frame, labels = training_incidents()
    pipeline = build_pipeline().fit(frame, labels)
    save_model(pipeline, {"version": VERSION, "threshold": THRESHOLD, "city": "chicago"}, directory)
    return directory


class SlowModel:
    """A fitted pipeline that takes its time: for tests of a busy or stuck worker.

    A call of at least ``large_rows`` incidents (a big request) is held by a gate when
    ``gate_dir`` is set: it creates ``gate_dir/started``, then waits until the test creates
    ``gate_dir/release`` (files, because the model runs in the server's worker process). So a
    test knows the call is running, and for exactly as long as it needs, without guessing
    durations. ``hang_seconds`` is slept when an incident's ``block`` is ``"HANG"`` (a model
    call that hangs past the server's timeout).
    """

    def __init__(self, pipeline, large_rows=1000, hang_seconds=0.0, gate_dir=None):
        self.pipeline = pipeline
        self.large_rows = large_rows
        self.hang_seconds = hang_seconds
        self.gate_dir = gate_dir

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if (frame["block"] == "HANG").any():
            time.sleep(self.hang_seconds)
        if len(frame) >= self.large_rows and self.gate_dir is not None:
            gate = Path(self.gate_dir)
            (gate / "started").touch()
            deadline = time.monotonic() + GATE_TIMEOUT_S
            while not (gate / "release").exists():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{gate}/release never appeared")
                time.sleep(0.01)
        return self.pipeline.predict_proba(frame)


#: Longest a gated model call waits for its release before failing.
GATE_TIMEOUT_S = 60.0


def write_slow_model(directory: Path, **slowness: float) -> Path:
    """Like :func:`write_fixture_model`, wrapped in :class:`SlowModel`."""
    frame, labels = training_incidents()
    model = SlowModel(build_pipeline().fit(frame, labels), **slowness)
    save_model(model, {"version": "slow-1", "threshold": THRESHOLD}, directory)
    return directory
