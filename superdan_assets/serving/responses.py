"""Response bodies: predictions as JSON or CSV, and errors as JSON.

Written by hand rather than through ``json.dumps`` of a list of dicts: a 10,000-incident
answer is then one string join instead of 10,000 dicts, and every value is a finite float
or a fixed word, so the output is valid JSON/CSV by construction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

BURGLARY = "BURGLARY"
THEFT = "THEFT"
#: Column order of a CSV answer (also the keys of each JSON prediction).
CSV_HEADER = "burglary_probability,predicted_type"


def _labels(probabilities: np.ndarray, threshold: float) -> list[str]:
    """The decision rule of the manifest: burglary when P(burglary) >= threshold."""
    return [BURGLARY if burglary else THEFT for burglary in (probabilities >= threshold).tolist()]


def predictions_json(model_version: str, probabilities: np.ndarray, threshold: float) -> bytes:
    """``{"model_version": ..., "predictions": [{"burglary_probability": p, ...}, ...]}``."""
    items = ",".join(
        f'{{"burglary_probability":{p!r},"predicted_type":"{label}"}}'
        for p, label in zip(probabilities.tolist(), _labels(probabilities, threshold), strict=True)
    )
    return f'{{"model_version":{json.dumps(model_version)},"predictions":[{items}]}}'.encode()


def predictions_csv(probabilities: np.ndarray, threshold: float) -> bytes:
    """A header row, then ``probability,label`` per incident in request order."""
    lines = [CSV_HEADER]
    lines.extend(
        f"{p!r},{label}"
        for p, label in zip(probabilities.tolist(), _labels(probabilities, threshold), strict=True)
    )
    return ("\n".join(lines) + "\n").encode()


def error_json(status: int, message: str, details: Sequence[dict[str, Any]] = ()) -> bytes:
    """``{"error": message, "status": status, "details": [{"row", "field", "message"}]}``."""
    document: dict[str, Any] = {"error": message, "status": status}
    if details:
        document["details"] = list(details)
    return json.dumps(document).encode()
