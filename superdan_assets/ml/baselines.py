"""Baselines the model must beat, as pipelines over the same raw canonical frames.

* the class prior: every row gets the training share of burglaries. Anything worse than it is
  broken; its PR-AUC equals the burglary rate of the test rows.
* the original super_dan protocol: epoch timestamp in seconds, latitude, longitude and dummies
  of the five most frequent location descriptions, fed to a random forest. It is the
  project's starting point (measured on 2012-2017 -> 2018: ROC-AUC 0.832, PR-AUC 0.424), so
  every new model is reported next to it.
"""

from __future__ import annotations

import os

# Before sklearn loads its OpenMP runtime, which reads this once (why: see ml/model.py).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from superdan_assets.ml.labels import normalise_location_description

SEED_PROTOCOL_LOCATIONS = 5


class ConstantFeature(TransformerMixin, BaseEstimator):
    """One all-zero column per row: the prior baseline looks at nothing but the row count."""

    def fit(self, X, y=None):
        self.n_rows_seen_ = len(X)
        return self

    def transform(self, X) -> np.ndarray:
        return np.zeros((len(X), 1))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(["constant"], dtype=object)


class SeedProtocolFeatures(TransformerMixin, BaseEstimator):
    """The original project's inputs: epoch seconds, latitude, longitude, top location dummies.

    The dummies are for the ``n_locations`` most frequent (normalised) location descriptions
    of the training rows, so the columns are fixed at fit time whatever a later batch holds.
    """

    def __init__(self, n_locations: int = SEED_PROTOCOL_LOCATIONS):
        self.n_locations = n_locations

    def fit(self, X: pd.DataFrame, y=None):
        locations = normalise_location_description(_column(X, "location_description"))
        counts = locations.dropna().value_counts()
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        self.locations_ = [str(v) for v, _ in ordered[: self.n_locations]]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "locations_")
        dates = pd.to_datetime(_column(X, "date"), errors="coerce").astype("datetime64[ns]")
        epoch = dates.to_numpy().astype("int64") / 1e9
        epoch[dates.isna().to_numpy()] = np.nan
        lat = pd.to_numeric(_column(X, "latitude"), errors="coerce").to_numpy(dtype="float64")
        lon = pd.to_numeric(_column(X, "longitude"), errors="coerce").to_numpy(dtype="float64")
        locations = normalise_location_description(_column(X, "location_description"))
        dummies = [
            (locations == value).fillna(False).to_numpy(dtype="float64")
            for value in self.locations_
        ]
        return np.column_stack([epoch, lat, lon, *dummies])

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "locations_")
        names = ["epoch_seconds", "latitude", "longitude"]
        names += [f"location={value}" for value in self.locations_]
        return np.asarray(names, dtype=object)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].reset_index(drop=True)
    return pd.Series(pd.NA, index=pd.RangeIndex(len(frame)), dtype="object")


def build_prior_baseline() -> Pipeline:
    """Predicts the training burglary share for every row."""
    return Pipeline([("features", ConstantFeature()), ("model", DummyClassifier(strategy="prior"))])


def build_seed_protocol_baseline(
    random_state: int = 0,
    n_jobs: int | None = None,
    n_estimators: int = 100,
    oob_score: bool = False,
) -> Pipeline:
    """The original project's model: a random forest on time, place and five location flags.

    The forest keeps scikit-learn's defaults (100 full-depth trees); missing coordinates go
    to the forest's native missing-value handling. ``oob_score=True`` keeps out-of-bag
    scores of the training rows (training uses them to choose the forest's threshold).
    """
    forest = RandomForestClassifier(
        n_estimators=n_estimators, random_state=random_state, n_jobs=n_jobs, oob_score=oob_score
    )
    return Pipeline([("features", SeedProtocolFeatures()), ("model", forest)])
