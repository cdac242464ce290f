"""The committed model selection: read it, check it, and take the model's defaults from it.

A selection record (written by :func:`superdan_assets.ml.selection.run_selection`) holds the
rolling-origin folds, every candidate's per-fold validation scores and the winner. The
packaged Chicago record (``selections/chicago.json``) was made on 2012-2017 only, so
scoring 2018 with its winner is a first look at a period no choice was made on.

Why the file lives in the package, beside the model code, and not in the city spec: the spec
says how to *read* a city's feed and is written by hand; a selection is a measured artefact with
hundreds of numbers that a program writes and the model's defaults are read from. Chicago's is
the only city with years of history to select on; other cities use its winner unless they
run their own selection (README "How the model's settings are chosen") and pass the winner as
``hyperparameters``.

This module only reads JSON: ``ml/features.py`` and ``ml/model.py`` import it for their
defaults, and it must not pull in scikit-learn or LightGBM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

SELECTIONS_DIR = Path(__file__).resolve().parent / "selections"
#: The packaged selection the model's defaults come from.
DEFAULT_SELECTION = SELECTIONS_DIR / "chicago.json"

_REQUIRED = ("cutoff", "folds", "candidates", "winner")


def load_selection(path: str | Path = DEFAULT_SELECTION) -> dict[str, Any]:
    """The selection record at ``path``, with its required parts checked."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no model selection record at {path}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"model selection {path}: not valid JSON ({error})") from None
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise ValueError(f"model selection {path}: missing {missing}")
    if "params" not in record["winner"]:
        raise ValueError(f"model selection {path}: the winner has no params")
    return record


def check_selection_before(record: dict[str, Any], test_start: str | pd.Timestamp) -> None:
    """Refuse a selection that read anything on or after ``test_start``.

    Its cutoff (the first moment it was not allowed to read) and every fold's validation end
    must be at or before the test start; otherwise the test period would be scored by choices
    made on it.
    """
    start = pd.Timestamp(test_start)
    cutoff = pd.Timestamp(record["cutoff"])
    if cutoff > start:
        raise ValueError(
            f"the selection read data up to {cutoff.date()}, after the test start "
            f"{start.date()}: its choices were made on the test period"
        )
    for fold in record["folds"]:
        if pd.Timestamp(fold["validate_end"]) > start:
            raise ValueError(
                f"selection fold {fold['name']} validates up to {fold['validate_end']}, after "
                f"the test start {start.date()}"
            )


def selected_params(path: str | Path = DEFAULT_SELECTION) -> dict[str, Any]:
    """The winner's model parameters (without thread count), as the selection measured them."""
    return dict(load_selection(path)["winner"]["params"])


def describe_selection(record: dict[str, Any], name: str) -> str:
    """One line for the UI and logs: ``name`` with the record's winner, score and cutoff."""
    winner = record["winner"]
    return (
        f"{name} (winner {winner['name']}, validation PR-AUC {winner['mean_pr_auc']:.4f}, "
        f"cutoff {str(record['cutoff'])[:10]})"
    )
