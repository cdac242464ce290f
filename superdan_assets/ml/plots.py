"""Training plots as PNG bytes, and a markdown wrapper so Dagster can show them.

Why the object-oriented matplotlib API (``Figure`` + Agg canvas) and not ``pyplot``: pyplot
keeps global state and picks a GUI backend, which breaks in a headless worker and leaks
figures when several runs share a process. A ``Figure`` built here is independent and freed
with its last reference.

Why markdown: Dagster has no image metadata type; ``MetadataValue.md`` renders an image whose
source is a base64 ``data:`` URI, so the plot travels inside the materialization itself.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Legend names of the curves in a training result.
DISPLAY_NAMES = {
    "model": "model",
    "prior": "class prior",
    "seed_protocol": "original protocol (random forest)",
}


def _curves(result: Any) -> dict[str, Any]:
    """The curves of a TrainingResult, or the curves dict itself."""
    return getattr(result, "curves", result)


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _label(name: str, value: float | None, what: str) -> str:
    shown = DISPLAY_NAMES.get(name, name)
    return f"{shown} ({what} {value:.3f})" if value is not None else shown


def pr_curve_png(result: Any, min_recall: float | None = None) -> bytes:
    """Precision-recall curves of the model and the baselines on the test period.

    ``result``: a :class:`~superdan_assets.ml.training.TrainingResult` or its ``curves``.
    A vertical line marks the policy's minimum recall when given (default: the manifest's).
    """
    curves = _curves(result)["pr"]
    manifest = getattr(result, "manifest", {})
    if min_recall is None:
        min_recall = manifest.get("threshold_policy", {}).get("min_recall")
    pr_aucs = _pr_aucs(result)
    figure = Figure(figsize=(6, 4.5))
    axes = figure.add_subplot()
    for name, curve in curves.items():
        axes.step(
            curve["recall"],
            curve["precision"],
            where="post",
            label=_label(name, pr_aucs.get(name), "PR-AUC"),
        )
    if min_recall is not None:
        axes.axvline(min_recall, color="grey", linestyle=":", label=f"recall {min_recall:g}")
    axes.set(
        xlabel="recall (burglaries caught)",
        ylabel="precision (alerts that are burglaries)",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title="Burglary precision-recall, test period",
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)
    return _png(figure)


def _pr_aucs(result: Any) -> dict[str, float | None]:
    results = getattr(result, "metrics", None)
    if not results:
        return {}
    out = {"model": results["model"].get("pr_auc")}
    for name, values in results.get("baselines", {}).items():
        out[name] = values.get("pr_auc")
    return out


def calibration_png(result: Any) -> bytes:
    """Reliability diagram: observed burglary rate against mean predicted probability per bin.

    Baselines are left out: the prior is a single point and the forest's probabilities are not
    meant to be calibrated; the question here is whether the model's probabilities can be read
    as probabilities.
    """
    calibration = _curves(result)["calibration"]
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    model = calibration["model"]
    bins = [b for b in model["bins"] if b["count"]]
    axes.plot(
        [b["mean_predicted"] for b in bins],
        [b["observed_rate"] for b in bins],
        marker="o",
        label=_label("model", model.get("expected_calibration_error"), "ECE"),
    )
    axes.set(
        xlabel="mean predicted P(burglary)",
        ylabel="observed burglary rate",
        xlim=(0, 1),
        ylim=(0, 1),
        title="Calibration, test period",
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    return _png(figure)


def feature_importance_png(result: Any, top: int = 20) -> bytes:
    """Horizontal bars of the ``top`` model inputs by share of split gain."""
    importances = getattr(result, "feature_importances", result)
    items = sorted(importances.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    figure = Figure(figsize=(6, 0.3 * max(len(items), 1) + 1.2))
    axes = figure.add_subplot()
    names = [name for name, _ in reversed(items)]
    values = [value for _, value in reversed(items)]
    axes.barh(names, values, color="tab:blue")
    axes.set(xlabel="share of total split gain", title=f"Top {len(items)} model inputs")
    axes.tick_params(axis="y", labelsize=8)
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def png_to_markdown(png_bytes: bytes, alt: str) -> str:
    """A markdown image with the PNG inlined as a base64 data URI (for ``MetadataValue.md``)."""
    if not png_bytes.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("png_to_markdown expects PNG bytes")
    safe_alt = alt.replace("[", "(").replace("]", ")").replace("\n", " ")
    encoded = base64.b64encode(png_bytes).decode("ascii")
    return f"![{safe_alt}](data:image/png;base64,{encoded})"
