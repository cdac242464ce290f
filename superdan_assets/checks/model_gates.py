"""Quality gates a trained model must pass before it may be promoted and deployed.

Pure functions over the metrics the training step computed on the held-out period, so they are
unit-tested without training anything. Each returns a :class:`GateResult` that the
``crime_model`` asset turns into a blocking ERROR asset check: a failure stops
``model_endpoint`` from running, and the registry records the failure so no later run can
promote that version either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def beats_baselines_gate(
    model_pr_auc: float, baseline_pr_aucs: dict[str, float], min_lift: float = 0.0
) -> GateResult:
    """The model's PR-AUC must exceed every baseline's by more than ``min_lift``.

    PR-AUC because the positive class (burglary) is the rare one the user cares about; ROC-AUC
    flatters a model on imbalanced data.
    """
    if not baseline_pr_aucs:
        raise ValueError("no baselines were evaluated; cannot judge the model")
    losing = {
        name: value
        for name, value in baseline_pr_aucs.items()
        if not model_pr_auc > value + min_lift
    }
    best_name = max(baseline_pr_aucs, key=baseline_pr_aucs.get)
    details = {
        "model_pr_auc": round(model_pr_auc, 4),
        **{f"{name}_pr_auc": round(value, 4) for name, value in baseline_pr_aucs.items()},
        "min_lift": min_lift,
    }
    if losing:
        summary = (
            f"PR-AUC {model_pr_auc:.4f} does not beat baseline(s) "
            + ", ".join(f"{n} ({v:.4f})" for n, v in losing.items())
            + (f" by more than {min_lift}" if min_lift else "")
        )
        return GateResult("beats_baselines", False, summary, details)
    summary = (
        f"PR-AUC {model_pr_auc:.4f} beats the best baseline {best_name} "
        f"({baseline_pr_aucs[best_name]:.4f}) by {model_pr_auc - baseline_pr_aucs[best_name]:.4f}"
    )
    return GateResult("beats_baselines", True, summary, details)


def no_regression_gate(
    model_pr_auc: float,
    production_pr_auc: float | None,
    production_version: str | None,
    margin: float,
) -> GateResult:
    """The model may not fall below production, on the same held-out rows, by more than margin.

    With nothing in production yet the gate passes (the first model only has to beat the
    baselines), and says so.
    """
    if production_pr_auc is None:
        return GateResult(
            "no_regression_vs_production",
            True,
            "no production model yet: nothing to regress against",
            {"model_pr_auc": round(model_pr_auc, 4), "margin": margin},
        )
    delta = model_pr_auc - production_pr_auc
    details = {
        "model_pr_auc": round(model_pr_auc, 4),
        "production_pr_auc": round(production_pr_auc, 4),
        "production_version": production_version,
        "delta": round(delta, 4),
        "margin": margin,
    }
    if delta < -margin:
        return GateResult(
            "no_regression_vs_production",
            False,
            f"PR-AUC {model_pr_auc:.4f} is {-delta:.4f} below production {production_version} "
            f"({production_pr_auc:.4f}) on the same held-out period; allowed margin {margin}",
            details,
        )
    return GateResult(
        "no_regression_vs_production",
        True,
        f"PR-AUC {model_pr_auc:.4f} vs production {production_version} "
        f"{production_pr_auc:.4f} (delta {delta:+.4f}, margin {margin})",
        details,
    )
