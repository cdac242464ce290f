"""Small helpers that turn frames into Dagster UI metadata (tables people read at a glance)."""

from __future__ import annotations

import pandas as pd
from dagster import MetadataValue


def markdown_table(frame: pd.DataFrame, max_rows: int = 10) -> str:
    """A GitHub-style markdown table of the first ``max_rows`` rows (no extra dependency)."""
    head = frame.head(max_rows)
    columns = [str(c) for c in head.columns]

    def cell(value: object) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return ""
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.itertuples(False)]
    if len(frame) > max_rows:
        lines.append(f"\n_{len(frame) - max_rows} more rows_")
    return "\n".join(lines)


def counts_metadata(values: pd.Series, max_rows: int = 40) -> MetadataValue:
    """Value counts as a markdown table, most frequent first."""
    counts = values.fillna("(null)").value_counts()
    table = counts.rename_axis(values.name or "value").reset_index(name="rows")
    return MetadataValue.md(markdown_table(table, max_rows))


def preview_metadata(frame: pd.DataFrame, max_rows: int = 10) -> MetadataValue:
    return MetadataValue.md(markdown_table(frame, max_rows))


def timestamp_text(value: pd.Timestamp | None) -> str:
    return "" if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


#: Up to this many days, a ranged run lists its rows per day in the metadata.
MAX_DAYS_LISTED = 62


def row_count_metadata(frame: pd.DataFrame, partition_keys: list[str]) -> dict[str, object]:
    """Row counts that stay true on every partition a run materializes.

    Dagster attaches a step's metadata to each partition of a ranged (single-run) backfill, so
    a plain ``row_count`` would show a week's total on each day of a daily re-fetch. A one-day
    run reports ``row_count`` (charted across materializations in the UI); a ranged run reports
    ``run_row_count`` with the run's span and, for up to two months, the rows of each day.
    """
    keys = sorted(partition_keys)
    if len(keys) == 1:
        return {"row_count": len(frame)}
    out: dict[str, object] = {
        "run_row_count": len(frame),
        "run_days": MetadataValue.text(f"{len(keys)} days {keys[0]}..{keys[-1]}"),
    }
    if len(keys) <= MAX_DAYS_LISTED:
        days = frame["date"].dt.strftime("%Y-%m-%d").value_counts() if len(frame) else {}
        out["rows_per_day"] = MetadataValue.json({k: int(days.get(k, 0)) for k in keys})
    return out
