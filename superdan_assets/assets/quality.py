"""Run an asset's expectation suite on the days a step produced, decide each day, report checks.

Daily runs (the schedule re-fetches a week) validate each day on its own, against bounds learnt
from the 12 weeks before it, and keep Data Docs for each day. A long backfill (a year a run)
validates the whole range in one pass instead: every row-level expectation still runs on every
row (a year takes ~2.5 s), but the day-volume bounds, which need a history that a first
backfill does not have yet, are left to the daily runs; the check metadata says so.

Every day is then decided on its own (:mod:`superdan_assets.checks.decide`): good days are
written, a day that failed a blocking expectation is quarantined with the reason
(``<city>/quarantine/<asset>/<day>``), never written and never read downstream, and the step
goes on with the other days. The blocking check fails only when no day of the step was good.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from dagster import AssetCheckResult

from superdan_assets.assets.city import City
from superdan_assets.checks.dagster_results import asset_check_results
from superdan_assets.checks.decide import DayDecision, decide_days
from superdan_assets.checks.history import PartitionStats
from superdan_assets.checks.outcome import ValidationOutcome
from superdan_assets.checks.profile import CityProfile
from superdan_assets.checks.validate import validate_partition
from superdan_assets.resources.storage import StorageResource
from superdan_assets.storage.blobstore import BlobNotFound
from superdan_assets.storage.partitions import DayBatch, PartitionStore

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


@dataclass
class StepValidation:
    """A step's validation: the outcomes, the per-day decisions and the check results."""

    outcomes: list[ValidationOutcome]
    decisions: dict[str, DayDecision]
    check_results: list[AssetCheckResult]

    @property
    def quarantined(self) -> dict[str, tuple[str, ...]]:
        return {d: v.reasons for d, v in self.decisions.items() if not v.passed}

    def batch(self, frame: pd.DataFrame) -> DayBatch:
        """The step's output: the good days' rows, the quarantined days named."""
        bad = set(self.quarantined)
        if not bad or not len(frame):
            return DayBatch(frame, self.quarantined)
        keep = ~frame["date"].dt.strftime("%Y-%m-%d").isin(bad)
        return DayBatch(frame[keep.to_numpy()].reset_index(drop=True), self.quarantined)


def revalidator(
    validate_day: Callable[..., ValidationOutcome],
    day_frame: Callable[[str], pd.DataFrame],
    has_previous: Callable[[str], bool],
) -> Callable[[str], ValidationOutcome]:
    """``validate_day`` for the days a one-pass validation could not decide, validating an
    empty day only once.

    Why: a range reaching past the feed's last report (a backfill to the end of the year)
    holds many empty days, and each used to cost a full suite run (~0.2 s). Every empty day
    with no stored version to compare with gets the same blocking verdict: its blocking
    expectations see no rows (schema, nulls, ranges, the partition's dates) and the
    day-dependent ones, the volume bounds, are WARN, which a day's decision does not read.
    """
    empty: list[ValidationOutcome] = []

    def validate(key: str) -> ValidationOutcome:
        if len(day_frame(key)) or has_previous(key):
            return validate_day(key, None)
        if not empty:
            empty.append(validate_day(key, None))
        return empty[0]

    return validate


def validate_step(
    city: City,
    asset: str,
    frame: pd.DataFrame,
    partition_keys: list[str],
    storage: StorageResource,
    log: Callable[[str], None],
    compare_with_stored: bool = False,
    run_id: str | None = None,
) -> StepValidation:
    """Validate ``frame`` (the step's output for ``partition_keys``), decide each day, and
    build the check results; quarantine the days that failed their blocking expectations.

    The city's profile (known categories, coordinate box) learnt from its stored history is
    the reference; the days that pass are then added to it. ``compare_with_stored``: also
    reconcile ids with the previously stored version of each day (raw_crimes: reports that
    moved to another day or vanished on re-fetch).
    """
    store = storage.partitions(city.name)
    docs_dir = Path(storage.docs_dir) / city.name
    profile = load_profile(storage, city, asset)
    spec = city.spec
    bounds = spec.bounds.as_dict() if spec.bounds else None
    learnt = {
        "profile": profile if not profile.empty else None,
        "bounds": bounds,
        "timezone": spec.timezone,
    }
    keys = sorted(partition_keys)
    days = frame["date"].dt.strftime("%Y-%m-%d") if len(frame) else pd.Series([], dtype=str)
    cache: dict[str, PartitionStats | None] = {}
    per_day_frames: dict[str, pd.DataFrame] = {}

    def day_frame(key: str) -> pd.DataFrame:
        if key not in per_day_frames:
            per_day_frames[key] = frame[(days == key).to_numpy()].reset_index(drop=True)
        return per_day_frames[key]

    def validate_day(key: str, docs: Path | None = docs_dir) -> ValidationOutcome:
        start, end = _day_bounds(key)
        previous = None
        if compare_with_stored and store.exists(asset, key):
            previous = store.read(asset, key)
        current = {k: day_frame(k) for k in keys} if len(keys) <= PER_DAY_LIMIT else {}
        return validate_partition(
            asset,
            day_frame(key),
            start,
            end,
            history_before(store, asset, key, current, cache),
            docs,
            previous=previous,
            **learnt,
        )

    if len(keys) > PER_DAY_LIMIT:
        start, _ = _day_bounds(keys[0])
        _, end = _day_bounds(keys[-1])
        log(f"validating {len(frame)} rows of {len(keys)} days of {asset} in one pass")
        outcome = validate_partition(asset, frame, start, end, None, None, **learnt)
        outcome.extras["note"] = (
            f"range of {len(keys)} days validated in one pass; day-volume bounds are "
            "evaluated by the daily runs; days with blocking failures were decided one by one"
        )
        outcomes = [outcome]
    else:
        outcomes = [validate_day(key) for key in keys]
    for outcome in outcomes:
        failed = [e.name for e in outcome.expectations if not e.success]
        if failed:
            log(f"{asset} {outcome.partition_key}: failed expectations {failed}")
    decisions = decide_days(
        frame,
        keys,
        outcomes,
        revalidator(
            validate_day, day_frame, lambda k: compare_with_stored and store.exists(asset, k)
        ),
    )
    for day, decision in decisions.items():
        if not decision.passed:
            uri = store.quarantine(asset, day, day_frame(day), decision.reasons, run_id)
            log(f"{asset} {day}: QUARANTINED ({'; '.join(decision.reasons)[:300]}) -> {uri}")
    good = [d for d, v in decisions.items() if v.passed]
    if good:
        good_rows = frame[days.isin(good).to_numpy()] if len(frame) else frame
        storage.blobs(city.name).write_bytes(
            profile_key(asset), profile.merge(good_rows, good).to_json()
        )
    key = city.key(asset)
    results = asset_check_results(
        outcomes if len(outcomes) > 1 else outcomes[0], key, decisions=decisions
    )
    return StepValidation(outcomes, decisions, results)
