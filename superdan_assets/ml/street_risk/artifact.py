"""The street-risk model as a versioned artifact: the classifier's format, verified the same way.

It is written and loaded by :mod:`superdan_assets.ml.artifact` (``model.joblib`` plus the
``model.json`` manifest with its sha256, checked before unpickling), so the registry, W&B and
the integrity rules are shared. What is particular to a street-risk artifact lives in the
manifest: ``kind`` (so a classifier directory is never loaded as a street-risk model, nor the
reverse), the training cutoff, the validation scores against the baselines and the gate.
``threshold`` (required by the shared manifest) is the share of places flagged, 0.01.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

from superdan_assets.ml.artifact import ModelIntegrityError, load_model, save_model
from superdan_assets.ml.street_risk.model import StreetRiskModel

KIND = "street_risk"
FLAG_SHARE = 0.01


def model_version(model: StreetRiskModel, cutoff) -> str:
    """``sr-<cutoff YYYYMMDD>-<8 hex of the settings>``: the same training gives the same name."""
    import pandas as pd

    settings = json.dumps(
        {
            "features": dataclasses.asdict(model.feature_config),
            "params": model.params,
            "zero_fraction": model.zero_fraction,
            "target_days": model.target_days,
            "training_days": [min(model.training_days), max(model.training_days)],
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(settings.encode()).hexdigest()[:8]
    return f"sr-{pd.Timestamp(cutoff):%Y%m%d}-{digest}"


def save_street_risk(
    model: StreetRiskModel,
    directory: str | os.PathLike,
    cutoff,
    validation: dict[str, Any],
    gate_passed: bool,
    gate_reason: str,
) -> dict[str, Any]:
    """Write the artifact; return its manifest."""
    import pandas as pd

    manifest = {
        "kind": KIND,
        "version": model_version(model, cutoff),
        "threshold": FLAG_SHARE,
        "cutoff": str(pd.Timestamp(cutoff).date()),
        "training_days": [
            str(pd.Timestamp("1970-01-01") + pd.Timedelta(days=d))[:10]
            for d in (min(model.training_days), max(model.training_days))
        ],
        "feature_names": model.feature_names,
        "feature_config": dataclasses.asdict(model.feature_config),
        "params": model.params,
        "target_days": model.target_days,
        "crime_types": sorted(model.boosters),
        "metrics": {"validation": validation},
        "gate": {"passed": bool(gate_passed), "reason": gate_reason},
    }
    return save_model(model, manifest, directory)


def load_street_risk(directory: str | os.PathLike) -> tuple[StreetRiskModel, dict[str, Any]]:
    """Verify (sha256), check the kind, then unpickle; returns the model and its manifest."""
    from superdan_assets.ml.artifact import read_manifest

    manifest = read_manifest(directory)
    if manifest.get("kind") != KIND:
        raise ModelIntegrityError(
            f"{str(directory)!r} holds a {manifest.get('kind', 'classifier')!r} artifact, "
            f"not a {KIND!r} one"
        )
    loaded = load_model(directory)
    if not isinstance(loaded.pipeline, StreetRiskModel):
        raise ModelIntegrityError(f"{str(directory)!r} does not contain a StreetRiskModel")
    return loaded.pipeline, loaded.manifest
