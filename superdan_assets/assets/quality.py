"""Run an asset's expectation suite on the days a step produced, and report them as checks.

Daily runs (the schedule re-fetches a week) validate each day on its own, against bounds learnt
from the 12 weeks before it, and keep Data Docs for each day. A long single-run backfill
(years of history) validates the whole range in one pass instead: every row-level expectation
still runs on every row (a year takes ~2.5 s), but the day-volume bounds, which need a history
that a first backfill does not have yet, are left to the daily runs; the check metadata says so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from dagster import AssetCheckResult

from superdan_assets.assets.city import City
from superdan_assets.checks.dagster_results import asset_check_results
from superdan_assets.checks.history import PartitionStats
from superdan_assets.checks.outcome import Severity, ValidationOutcome
from superdan_assets.checks.profile import CityProfile
from superdan_assets.checks.validate import validate_partition
from superdan_assets.resources.storage import StorageResource
from superdan_assets.storage.blobstore import BlobNotFound
from superdan_assets.storage.partitions import PartitionStore

#: Runs of at most this many days are validated day by day, with learnt bounds and Data Docs.
PER_DAY_LIMIT = 31
#: How far back the learnt bounds look.
HISTORY_DAYS = 84


def _day_bounds(key: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(key)
    return start, start + pd.Timedelta(days=1)


def history_before(
    store: PartitionStore,
    asset: str,
    day: str,
    current: dict[str, pd.DataFrame],
    cache: dict[str, PartitionStats | None],
) -> list[PartitionStats]:
    """Stats of the stored (or just produced) partitions in the ``HISTORY_DAYS`` before ``day``."""
    first = date.fromisoformat(day) - timedelta(days=HISTORY_DAYS)
    stats = []
    for offset in range(HISTORY_DAYS):
        key = (first + timedelta(days=offset)).isoformat()
        if key not in cache:
            if key in current:
                cache[key] = PartitionStats.from_frame(key, current[key])
            elif store.exists(asset, key):
                cache[key] = PartitionStats.from_frame(key, store.read(asset, key))
            else:
                cache[key] = None
        if cache[key] is not None:
            stats.append(cache[key])
    return stats


def profile_key(asset: str) -> str:
    return f"profile/{asset}.json"


def load_profile(storage: StorageResource, city: City, asset: str) -> CityProfile:
    """The city's learnt profile of ``asset`` (empty before its first stored day)."""
    try:
        return CityProfile.from_json(storage.blobs(city.name).read_bytes(profile_key(asset)))
    except BlobNotFound:
        return CityProfile(city=city.name, asset=asset)


def validate_step(
    city: City,
    asset: str,
    frame: pd.DataFrame,
    partition_keys: list[str],
    storage: StorageResource,
    log: Callable[[str], None],
    compare_with_stored: bool = False,
) -> tuple[list[ValidationOutcome], list[AssetCheckResult]]:
    """Validate ``frame`` (the step's output for ``partition_keys``) and build the check results.

    The city's profile (known categories, coordinate box) learnt from its stored history is
    the reference; the days that pass their blocking expectations are then added to it.
    ``compare_with_stored``: also reconcile ids with the previously stored version of each day
    (raw_crimes: reports that moved to another day or vanished on re-fetch).
    """
    store = storage.partitions(city.name)
    docs_dir = Path(storage.docs_dir) / city.name
    profile = load_profile(storage, city, asset)
    spec = city.spec
    bounds = spec.bounds.as_dict() if spec.bounds else None
    learnt = {"profile": profile if not profile.empty else None, "bounds": bounds,
              "timezone": spec.timezone}
    keys = sorted(partition_keys)
    if len(keys) > PER_DAY_LIMIT:
        start, _ = _day_bounds(keys[0])
        _, end = _day_bounds(keys[-1])
        log(f"validating {len(frame)} rows of {len(keys)} days of {asset} in one pass")
        outcome = validate_partition(asset, frame, start, end, None, None, **learnt)
        outcome.extras["note"] = (
            f"range of {len(keys)} days validated in one pass; day-volume bounds are "
            "evaluated by the daily runs"
        )
        outcomes = [outcome]
    else:
        days = frame["date"].dt.strftime("%Y-%m-%d") if len(frame) else pd.Series([], dtype=str)
        per_day = {k: frame[days == k].reset_index(drop=True) for k in keys}
        cache: dict[str, PartitionStats | None] = {}
        outcomes = []
        for key in keys:
            start, end = _day_bounds(key)
            previous = None
            if compare_with_stored and store.exists(asset, key):
                previous = store.read(asset, key)
            outcomes.append(
                validate_partition(
                    asset, per_day[key], start, end,
                    history_before(store, asset, key, per_day, cache), docs_dir,
                    previous=previous, **learnt,
                )
            )
    for outcome in outcomes:
        failed = [e.name for e in outcome.expectations if not e.success]
        if failed:
            log(f"{asset} {outcome.partition_key}: failed expectations {failed}")
    blocked = any(
        not e.success for o in outcomes for e in o.expectations if e.severity is Severity.ERROR
    )
    if not blocked and keys:
        storage.blobs(city.name).write_bytes(
            profile_key(asset), profile.merge(frame, keys).to_json()
        )
    key = city.key(asset)
    return outcomes, asset_check_results(outcomes if len(outcomes) > 1 else outcomes[0], key)
