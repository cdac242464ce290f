"""Pictures of drift reports as PNG bytes (matplotlib, Agg backend, imported lazily).

Dagster has no image metadata type; :func:`png_markdown` embeds a PNG in a Markdown value
(``MetadataValue.md``) as a base64 data URI, which the UI renders.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

from superdan_assets.ml.drift import DriftReport


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def plot_top_drifted_features(report: DriftReport, top: int = 10) -> bytes:
    """Horizontal bars of score / effective threshold per feature (1 = the drift line)."""
    plt = _pyplot()
    items = list(report.features) + ([report.prediction] if report.prediction else [])
    items = sorted(items, key=lambda d: d.ratio, reverse=True)[:top]
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(3, len(items)) + 1))
    names = [f"{d.feature} ({d.statistic})" for d in items][::-1]
    ratios = [min(d.ratio, 10.0) for d in items][::-1]
    colours = ["#c0392b" if d.drifted else "#7f8c8d" for d in items][::-1]
    ax.barh(names, ratios, color=colours)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("drift score / effective threshold (> 1: drifted)")
    ax.set_title(f"{report.day or 'day'}: {report.verdict}, {len(report.drifted_features)} drifted")
    return _png(fig)


def plot_performance_over_time(
    reports: Sequence[DriftReport | Mapping[str, Any]], metric: str = "roc_auc"
) -> bytes:
    """``metric`` per day with its bootstrap interval, and the reference as a line.

    Accepts reports or their ``to_dict()`` forms (as stored by earlier materializations, read
    back with ``DriftReport.from_dict``); days without an evaluated performance are skipped.
    """
    plt = _pyplot()
    typed = [r if isinstance(r, DriftReport) else DriftReport.from_dict(r) for r in reports]
    days, values, lows, highs = [], [], [], []
    reference = None
    for r in typed:
        m = r.performance.metrics.get(metric) if r.performance and r.performance.evaluated else None
        reference = (r.reference_metrics or {}).get(metric, reference)
        if m and m.value is not None:
            days.append(str(r.day))
            values.append(m.value)
            lows.append(m.low if m.low is not None else m.value)
            highs.append(m.high if m.high is not None else m.value)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    if days:
        x = range(len(days))
        ax.fill_between(x, lows, highs, alpha=0.25, color="#2980b9", label="95 % interval")
        ax.plot(x, values, marker="o", color="#2980b9", label=metric)
        step = max(1, len(days) // 10)
        ax.set_xticks(list(x)[::step], days[::step], rotation=45, ha="right")
    else:
        ax.text(0.5, 0.5, "no day with evaluated performance", ha="center", transform=ax.transAxes)
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=1, label="reference")
    ax.set_ylabel(metric)
    ax.set_title(f"realised {metric} per day")
    ax.legend(loc="lower left")
    return _png(fig)


def png_markdown(png: bytes, alt: str = "plot") -> str:
    """Markdown embedding ``png`` as a base64 data URI (for ``MetadataValue.md``)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
