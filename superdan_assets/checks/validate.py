"""Validate one partition of ``raw_crimes`` or ``crime_features`` against its suite.

The functions here are what the Dagster asset checks call: they compute the per-partition suite
parameters (the day's bounds, bounds learnt from history, the ids stored before), run the GX
suite on the shared runtime, render Data Docs when asked, and return a
:class:`~superdan_assets.checks.outcome.ValidationOutcome`.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from superdan_assets.checks.history import (
    PartitionStats,
    burglary_share_bounds,
    row_count_bounds,
)
from superdan_assets.checks.ids import reconcile_partition_ids
from superdan_assets.checks.outcome import ExpectationOutcome, ValidationOutcome
from superdan_assets.checks.profile import CityProfile, batch_box
from superdan_assets.checks.suites import (
    CRIME_FEATURES,
    NEEDS_BOX_PREFIX,
    NEEDS_KNOWN_PREFIX,
    NEEDS_PREVIOUS,
    NEEDS_ROW_HISTORY,
    NEEDS_SHARE_HISTORY,
    P_END,
    P_IDS_BEFORE,
    P_IDS_ELSEWHERE,
    P_ROWS_MAX,
    P_ROWS_MIN,
    P_SHARE_MAX,
    P_SHARE_MIN,
    P_START,
    RAW_CRIMES,
    ExpectationSpec,
    box_params,
    known_param,
    suite_specs,
)
from superdan_assets.sources.base import naive_local

#: Examples kept per failed expectation (values with their row ids).
MAX_EXAMPLES = 5


def validate_raw_crimes(
    frame: pd.DataFrame,
    partition_start: Any,
    partition_end: Any,
    history: Iterable[PartitionStats] | None = None,
    docs_dir: str | os.PathLike | None = None,
    *,
    previous: pd.DataFrame | None = None,
    profile: CityProfile | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    timezone: str = "UTC",
) -> ValidationOutcome:
    """Validate one ``raw_crimes`` partition.

    ``partition_start``/``partition_end``: the partition's ``[start, end)`` (tz-aware values,
    as Dagster's ``context.partition_time_window`` gives, are converted to the city's local
    time, ``timezone``).
    ``history``: stats of recent earlier partitions, for the learnt row-count bounds.
    ``previous``: rows stored before this fetch (the old version of this partition, optionally
    with neighbouring days) to report ids that moved days or vanished.
    ``docs_dir``: when given, Data Docs are rendered there and linked from the outcome.
    ``profile``: the city's learnt categories and coordinate box; ``bounds``: the spec's box
    (wins over the profile's); ``timezone``: the city's, for tz-aware partition bounds.
    """
    return validate_partition(
        RAW_CRIMES,
        frame,
        partition_start,
        partition_end,
        history,
        docs_dir,
        previous=previous,
        profile=profile,
        bounds=bounds,
        timezone=timezone,
    )


def validate_crime_features(
    frame: pd.DataFrame,
    partition_start: Any,
    partition_end: Any,
    history: Iterable[PartitionStats] | None = None,
    docs_dir: str | os.PathLike | None = None,
    *,
    profile: CityProfile | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    timezone: str = "UTC",
) -> ValidationOutcome:
    """Validate one ``crime_features`` partition (see :func:`validate_raw_crimes`).

    ``history`` should carry ``burglary_share`` (``PartitionStats.from_frame`` on stored feature
    partitions does) for the learnt burglary-share bounds.
    """
    return validate_partition(
        CRIME_FEATURES,
        frame,
        partition_start,
        partition_end,
        history,
        docs_dir,
        profile=profile,
        bounds=bounds,
        timezone=timezone,
    )


def validate_partition(
    asset: str,
    frame: pd.DataFrame,
    partition_start: Any,
    partition_end: Any,
    history: Iterable[PartitionStats] | None = None,
    docs_dir: str | os.PathLike | None = None,
    *,
    previous: pd.DataFrame | None = None,
    profile: CityProfile | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    timezone: str = "UTC",
) -> ValidationOutcome:
    """Validate ``frame`` as one partition of ``asset`` (``raw_crimes`` or ``crime_features``).

    Naive partition bounds are the city's local time; tz-aware ones are converted to
    ``timezone`` (the city's).
    """
    from superdan_assets.checks.gx_runtime import RUNTIME_LOCK, get_runtime, url_to_path

    started = time.perf_counter()
    start = naive_local(partition_start, timezone)
    end = naive_local(partition_end, timezone)
    if not end > start:
        raise ValueError(f"partition_end {end} must be after partition_start {start}")
    partition_key = start.strftime("%Y-%m-%d")
    history = list(history or [])
    specs = suite_specs(asset)
    parameters, not_evaluated, extras = _parameters(asset, frame, start, end, history, previous)
    _learnt_parameters(specs, frame, profile, bounds, parameters, not_evaluated, extras)

    result_format: dict[str, Any] = {"result_format": "COMPLETE"}
    if "id" in frame.columns:
        result_format["unexpected_index_column_names"] = ["id"]

    docs_url = docs_path = None
    with RUNTIME_LOCK:
        runtime = get_runtime()
        result, batch_id = runtime.validate(asset, frame, parameters, result_format)
        if docs_dir is not None:
            try:
                docs_url = runtime.publish(
                    Path(docs_dir), asset, result, batch_id, f"{asset}-{partition_key}"
                )
                docs_path = url_to_path(docs_url)
            except Exception as exc:  # Data Docs are a convenience; the verdict must survive.
                extras["docs_error"] = f"{type(exc).__name__}: {exc}"

    by_name = {spec.name: spec for spec in specs}
    expectations = tuple(
        _outcome(by_name[r.expectation_config.meta["name"]], r, not_evaluated)
        for r in result.results
    )
    order = {spec.name: i for i, spec in enumerate(specs)}
    expectations = tuple(sorted(expectations, key=lambda e: order[e.name]))
    reconciled = extras.pop("id_reconciliation", None)
    return ValidationOutcome(
        asset=asset,
        partition_key=partition_key,
        partition_start=start,
        partition_end=end,
        row_count=len(frame),
        expectations=expectations,
        docs_url=docs_url,
        docs_path=docs_path,
        seconds=round(time.perf_counter() - started, 4),
        extras=extras,
        id_reconciliation=reconciled,
    )


def _parameters(
    asset: str,
    frame: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    history: list[PartitionStats],
    previous: pd.DataFrame | None,
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Suite parameters, the inputs that were missing (need -> reason), and extras to report."""
    not_evaluated: dict[str, str] = {}
    extras: dict[str, Any] = {}
    params: dict[str, Any] = {P_START: start, P_END: end}

    rows = row_count_bounds(history, start)
    if rows is None:
        params[P_ROWS_MIN], params[P_ROWS_MAX] = 0, None
        not_evaluated[NEEDS_ROW_HISTORY] = _history_reason(history)
    else:
        params[P_ROWS_MIN], params[P_ROWS_MAX] = rows.low, rows.high
        extras["row_count_bounds"] = rows.describe()

    if asset == CRIME_FEATURES:
        share = burglary_share_bounds(history, start)
        if share is None:
            params[P_SHARE_MIN], params[P_SHARE_MAX] = 0.0, 1.0
            not_evaluated[NEEDS_SHARE_HISTORY] = _history_reason(history, "burglary-share")
        else:
            params[P_SHARE_MIN], params[P_SHARE_MAX] = share.low, share.high
            extras["burglary_share_bounds"] = share.describe()

    if asset == RAW_CRIMES:
        problem = _reconciliation_problem(frame, previous)
        if problem:
            params[P_IDS_ELSEWHERE], params[P_IDS_BEFORE] = [], []
            not_evaluated[NEEDS_PREVIOUS] = problem
        else:
            rec = reconcile_partition_ids(frame, previous, start, end)
            params[P_IDS_ELSEWHERE] = sorted(rec.moved_in)
            params[P_IDS_BEFORE] = _ids_previously_in_partition(previous, start, end)
            extras["id_reconciliation"] = rec
    return params, not_evaluated, extras


def _learnt_parameters(
    specs: list[ExpectationSpec],
    frame: pd.DataFrame,
    profile: CityProfile | None,
    bounds: Mapping[str, tuple[float, float]] | None,
    params: dict[str, Any],
    not_evaluated: dict[str, str],
    extras: dict[str, Any],
) -> None:
    """Known-value sets and coordinate boxes: from the spec, the city's history or the batch."""
    bounds = dict(bounds or {})
    sources: dict[str, str] = {}
    for need in sorted({s.needs for s in specs if s.needs}):
        if need.startswith(NEEDS_KNOWN_PREFIX):
            column = need[len(NEEDS_KNOWN_PREFIX) :]
            known = profile.known_values(column) if profile else None
            if known is None:
                present = frame[column].dropna().astype(str).unique() if column in frame else []
                params[known_param(column)] = sorted(present)
                not_evaluated[need] = "no stored history of this city yet: known values not learnt"
            else:
                params[known_param(column)] = known
        elif need.startswith(NEEDS_BOX_PREFIX):
            column = need[len(NEEDS_BOX_PREFIX) :]
            lo_name, hi_name = box_params(column)
            box, origin = bounds.get(column), "the city spec's [bounds]"
            if box is None and profile is not None:
                box, origin = profile.box(column), f"{profile.days} stored days of history"
            if box is None and column in frame:
                box, origin = batch_box(frame[column]), "this batch (no history or spec bounds)"
            if box is None:
                params[lo_name], params[hi_name] = -1e300, 1e300
                not_evaluated[need] = "too few located rows to learn a coordinate box"
            else:
                params[lo_name], params[hi_name] = float(box[0]), float(box[1])
                sources[column] = f"[{box[0]:.6g}, {box[1]:.6g}] from {origin}"
    if sources:
        extras["coordinate_boxes"] = sources


def _reconciliation_problem(frame: pd.DataFrame, previous: pd.DataFrame | None) -> str | None:
    """Why ids cannot be reconciled (None when they can)."""
    if previous is None:
        return "no previously stored rows were passed"
    for name, f in (("frame", frame), ("previous", previous)):
        if not {"id", "date"} <= set(f.columns):
            return f"the {name} has no id/date column"
        if not pd.api.types.is_datetime64_any_dtype(f["date"]):
            return f"the {name}'s date column is not a timestamp"
    return None


def _ids_previously_in_partition(previous: pd.DataFrame, start, end) -> list[str]:
    inside = previous["date"].ge(start) & previous["date"].lt(end)
    return sorted(
        previous.loc[inside.fillna(False).astype(bool), "id"].dropna().astype(str).unique()
    )


def _history_reason(history: list[PartitionStats], what: str = "rows") -> str:
    if not history:
        return "no history passed: bounds not learnt"
    return f"history too short to learn {what} bounds ({len(history)} partitions)"


def _outcome(spec: ExpectationSpec, r, not_evaluated: Mapping[str, str]) -> ExpectationOutcome:
    """Convert one GX ``ExpectationValidationResult`` to an :class:`ExpectationOutcome`."""
    res = dict(r.result or {})
    exception = _exception_message(r.exception_info)
    note = not_evaluated.get(spec.needs) if spec.needs else None
    details = res.get("details") or {}

    unexpected_count = res.get("unexpected_count")
    unexpected_percent = res.get("unexpected_percent")
    observed = res.get("observed_value")
    examples: list[Any] = []
    value_counts: dict[str, int] = {}
    unit = "rows"
    offending = tuple(
        row.get("id") if isinstance(row, Mapping) else row
        for row in res.get("unexpected_index_list") or ()
    )
    if res.get("unexpected_index_list"):
        examples = list(res["unexpected_index_list"][:MAX_EXAMPLES])
    elif res.get("partial_unexpected_list"):
        examples = list(res["partial_unexpected_list"][:MAX_EXAMPLES])
    if spec.expectation == "ExpectColumnValuesToBeInSet" and res.get("unexpected_list"):
        counts = Counter(str(v) for v in res["unexpected_list"])
        value_counts = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    if spec.expectation == "ExpectColumnDistinctValuesToContainSet":
        unexpected_count = res.get("missing_count")
        expected = len(spec_value_set(r))
        unexpected_percent = (
            100.0 * unexpected_count / expected if expected and unexpected_count else 0.0
        )
        examples = list(res.get("partial_missing_list") or [])[:MAX_EXAMPLES]
        unit = "ids"
    if "mismatched" in details:
        examples = list(details["mismatched"])
        unexpected_count = len(examples)
        unit = "columns"
        if spec.expectation == "ExpectTableColumnDtypesToEqual":
            observed = None  # the full dtype map is noise; the mismatches say what is wrong
    return ExpectationOutcome(
        name=spec.name,
        severity=spec.severity,
        success=bool(r.success),
        expectation_type=r.expectation_config.type,
        column=spec.column,
        why=spec.why,
        element_count=res.get("element_count"),
        unexpected_count=_int_or_none(unexpected_count),
        unexpected_percent=_float_or_none(unexpected_percent),
        unit=unit,
        observed_value=_jsonable(observed),
        examples=_jsonable(examples),
        value_counts=value_counts,
        evaluated=note is None,
        note=note,
        exception=exception,
        unexpected_rows=offending,
    )


def spec_value_set(r) -> list:
    """The (parameter-substituted) ``value_set`` an expectation result was evaluated with."""
    value_set = r.expectation_config.kwargs.get("value_set")
    return value_set if isinstance(value_set, list) else []


def _exception_message(info: Any) -> str | None:
    """The first raised exception's message in GX's (possibly nested) ``exception_info``."""
    if not info:
        return None
    if isinstance(info, Mapping) and "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    if isinstance(info, Mapping):
        for value in info.values():
            message = _exception_message(value)
            if message:
                return message
    return None


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    """``value`` with timestamps, numpy scalars and tuples turned into JSON-friendly types."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp | np.datetime64):
        return str(pd.Timestamp(value))
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
