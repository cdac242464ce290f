"""Retraining when the deployed model decays: a sensor per city, and the alert of each decision.

The loop: the daily drift report scores each labelled day with the production model and
records whether its realised PR-AUC collapsed (the ``no_performance_collapse`` check; the
stored report of each day, ``drift_reports/<day>.json``, carries the outcome). When that check
failed on ``K`` of the last ``N`` labelled days *of the current production model*, the city's
retraining sensor launches its ``train_and_deploy_job`` on the most recent window (``train_end``
= the last labelled day). The job's blocking gates decide whether the candidate is promoted;
the retraining-outcome sensors read the finished run's gate results and say which it was.

Why these rules:

* Only days scored by the *current* production model count: after a promotion the old
  model's failures say nothing about the new one, so they cannot re-trigger a retrain.
* One retraining in flight at a time: any queued or running run of the city's
  ``train_and_deploy_job`` (launched by this sensor or by a person) blocks a new one; two
  candidates racing to promotion would make the no-regression gate compare against a moving
  production model.
* A cooldown of ``SUPERDAN_RETRAIN_COOLDOWN_DAYS`` labelled days after each launch (counted in
  data days from the previous launch's ``train_end``, so a replay or simulation behaves as the
  live system): a refused candidate would otherwise be retrained on nearly the same data every
  tick.
* Every decision that changes something or withholds a retrain is an alert (launched, skipped
  because of cooldown, skipped because one is in flight; promoted, refused or failed when the
  run ends), sent through the project's alert sinks (log, ``<alerts>/retraining.jsonl``, the
  webhook when configured). A skip is alerted once per cause, not once per tick.

Three triggers, any of which launches (the decision and its alert name which fired):

* ``collapse``: the ``no_performance_collapse`` check failed on ``K`` of the last ``N`` days
  (a sudden break: a day's whole bootstrap interval far under the reference);
* ``decay``: the production model's realised PR-AUC over its last ``W`` labelled days (the
  daily reports' PR-AUC, weighted by the day's burglaries) is under its own held-out PR-AUC
  (the manifest's, which the reports carry as ``reference_metrics``) by more than a margin.
  Slow decay never fails the collapse check (benchmarks/README.md "lifecycle.py": 7 scattered
  failed days in three years of a model losing 0.05 PR-AUC), but it shows in a month's mean;
* ``age``: the production model's data ends more than ``SUPERDAN_RETRAIN_MAX_AGE_DAYS`` before
  the last labelled day. Retraining is cheap next to serving a stale model, and the
  no-regression gate refuses a candidate more than its margin under production on the same
  recent days, so a routine retrain cannot replace a clearly better model. On by default: on
  2015-2018 it retrained every half year, all 7 candidates were promoted, and no quarter's
  realised PR-AUC was lower than without the loop (mean 0.743 vs 0.720 with the
  current defaults).

Settings (read at every tick, so no reload is needed): ``SUPERDAN_RETRAIN_K`` (default
:data:`DEFAULT_K`), ``SUPERDAN_RETRAIN_N`` (default :data:`DEFAULT_N`),
``SUPERDAN_RETRAIN_COOLDOWN_DAYS`` (default :data:`DEFAULT_COOLDOWN_DAYS`),
``SUPERDAN_RETRAIN_DECAY_WINDOW_DAYS`` (default :data:`DEFAULT_DECAY_WINDOW_DAYS`; 0 turns the
decay trigger off), ``SUPERDAN_RETRAIN_DECAY_MARGIN`` (default :data:`DEFAULT_DECAY_MARGIN`),
``SUPERDAN_RETRAIN_MAX_AGE_DAYS`` (default :data:`DEFAULT_MAX_AGE_DAYS`; 0 turns it off).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    sensor,
)

from superdan_assets.alerts import (
    AlertSink,
    AlertSinkError,
    JsonLinesSink,
    LogSink,
    WebhookSink,
    default_state_dir,
)
from superdan_assets.alerts.evaluations import check_evaluations_for_run
from superdan_assets.assets.city import City
from superdan_assets.automation import job_name
from superdan_assets.resources.storage import StorageResource
from superdan_assets.storage.blobstore import BlobNotFound

#: Failed ``no_performance_collapse`` days among the last N that launch a retrain (see README:
#: measured on the stored drift reports of a real decaying period).
DEFAULT_K = 3
DEFAULT_N = 7
DEFAULT_COOLDOWN_DAYS = 28
#: The slow-decay and age triggers (0 days turns a trigger off), compared on the validation
#: year 2014 (a model trained on 2012-2013; benchmarks/README.md "lifecycle.py"): age 182 raised
#: the mean quarterly PR-AUC by 0.0025 with one retrain, age 91 by 0.0026 with three, the decay
#: trigger (28 days, 0.05) by 0.0016 with one; no quarter was lower with any. So the age trigger
#: is on and the decay trigger is off unless its window is set.
DEFAULT_DECAY_WINDOW_DAYS = 0
DEFAULT_DECAY_MARGIN = 0.05
DEFAULT_MAX_AGE_DAYS = 182
#: The decay trigger judges a window only when at least this share of its days was evaluated.
DECAY_MIN_SHARE = 0.5
#: The drift report's tolerance (``DriftReportConfig.performance_tolerance``), used only for
#: stored reports written before they recorded the check's outcome themselves.
DEFAULT_PERFORMANCE_TOLERANCE = 0.05
CHECK_NAME = "no_performance_collapse"
REPORTS_PREFIX = "drift_reports"
TRIGGER_TAG = "superdan/trigger"
TRIGGER = "retraining_sensor"
TRAIN_END_TAG = "superdan/train_end"
#: Which of the sensor's triggers fired (``collapse``, ``decay``, ``age``; comma-separated).
FIRED_TAG = "superdan/retrain_triggers"
ALERTS_FILE = "retraining.jsonl"
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
GATES = ("beats_baselines", "no_regression_vs_production")


# -- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrainingPolicy:
    k: int = DEFAULT_K
    n: int = DEFAULT_N
    cooldown_days: int = DEFAULT_COOLDOWN_DAYS
    decay_window_days: int = DEFAULT_DECAY_WINDOW_DAYS
    decay_margin: float = DEFAULT_DECAY_MARGIN
    max_age_days: int = DEFAULT_MAX_AGE_DAYS

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n:
            raise ValueError(f"need 1 <= K <= N; got K={self.k}, N={self.n}")
        if self.cooldown_days < 0:
            raise ValueError(f"cooldown days must be >= 0; got {self.cooldown_days}")
        if self.decay_window_days < 0 or self.max_age_days < 0:
            raise ValueError(
                f"decay window and maximum age must be >= 0 days (0 = off); got "
                f"{self.decay_window_days} and {self.max_age_days}"
            )
        if not 0 <= self.decay_margin < 1:
            raise ValueError(
                f"decay margin is a PR-AUC difference in [0, 1); got {self.decay_margin}"
            )

    @property
    def lookback_days(self) -> int:
        """How many days of stored reports the triggers read."""
        return max(self.n, self.decay_window_days)

    @classmethod
    def from_env(cls) -> RetrainingPolicy:
        def number(name: str, default, kind=int):
            raw = os.environ.get(name, "").strip()
            try:
                return kind(raw) if raw else default
            except ValueError:
                what = "whole number" if kind is int else "number"
                raise ValueError(f"{name}={raw!r} is not a {what}") from None

        return cls(
            k=number("SUPERDAN_RETRAIN_K", DEFAULT_K),
            n=number("SUPERDAN_RETRAIN_N", DEFAULT_N),
            cooldown_days=number("SUPERDAN_RETRAIN_COOLDOWN_DAYS", DEFAULT_COOLDOWN_DAYS),
            decay_window_days=number(
                "SUPERDAN_RETRAIN_DECAY_WINDOW_DAYS", DEFAULT_DECAY_WINDOW_DAYS
            ),
            decay_margin=number("SUPERDAN_RETRAIN_DECAY_MARGIN", DEFAULT_DECAY_MARGIN, float),
            max_age_days=number("SUPERDAN_RETRAIN_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS),
        )


# -- alerts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrainingAlert:
    """One retraining decision, shaped for the alert sinks (``text``, ``severity``, ``to_dict``)."""

    city: str
    decision: str  # launched | skipped_cooldown | skipped_in_flight | promoted | refused | failed
    summary: str
    last_labelled_day: str | None = None
    run_id: str | None = None
    model_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return "ERROR" if self.decision in ("refused", "failed") else "WARN"

    @property
    def blocking(self) -> bool:
        """What the log sink reads to pick the level: refused or failed is an error."""
        return self.severity == "ERROR"

    @property
    def text(self) -> str:
        icon = {"promoted": ":white_check_mark:", "launched": ":repeat:"}.get(
            self.decision, ":warning:"
        )
        run = f" (run {self.run_id})" if self.run_id else ""
        return f"{icon} [{self.city}] retraining {self.decision}: {self.summary}{run}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "retraining", **asdict(self)}


def default_retraining_sinks(state_dir: Path, logger=None) -> list[AlertSink]:
    """The project's sinks: the log, ``<state_dir>/retraining.jsonl``, the webhook if set."""
    sinks: list[AlertSink] = [LogSink(logger), JsonLinesSink(state_dir / ALERTS_FILE)]
    webhook = WebhookSink()
    if webhook.configured:
        sinks.append(webhook)
    return sinks


def send_alert(alert: RetrainingAlert, sinks: Sequence[AlertSink], logger=None) -> None:
    """Deliver to every sink; raise when none took it (the tick fails and is retried)."""
    errors = []
    for sink in sinks:
        try:
            sink.send(alert)  # type: ignore[arg-type]  # duck-typed like alerts.Alert
        except Exception as exc:  # one broken sink must not silence the rest
            errors.append(
                f"{sink.name}: {exc if isinstance(exc, AlertSinkError) else type(exc).__name__}"
            )
    if errors and logger is not None:
        logger.warning("retraining alert sink failure(s): " + "; ".join(errors))
    if len(errors) == len(sinks):
        raise AlertSinkError("retraining alert reached no sink: " + "; ".join(errors))


# -- the decision ----------------------------------------------------------------------------


def day_failed(report: dict) -> bool | None:
    """Whether the stored report's ``no_performance_collapse`` check failed (None: not judged).

    Reads the outcome the drift report recorded; for older reports that lack it, recomputes it
    with the drift report's own rule and default tolerance.
    """
    recorded = (report.get("checks") or {}).get(CHECK_NAME)
    if recorded is not None:
        return not recorded["passed"] if recorded.get("evaluated", True) else None
    from superdan_assets.assets.monitoring import performance_collapsed

    perf = report.get("performance") or {}
    if not perf.get("evaluated"):
        return None
    collapsed, _ = performance_collapsed(report, DEFAULT_PERFORMANCE_TOLERANCE)
    return collapsed


@dataclass(frozen=True)
class DayRecord:
    """What one stored drift report says about a day the production model scored."""

    failed: bool | None  # no_performance_collapse failed (None: not judged)
    pr_auc: float | None = None  # realised PR-AUC (None: not evaluated)
    positives: int = 0  # the day's burglaries: its weight in the decay mean
    reference: float | None = None  # the model's held-out PR-AUC the report compared with


def day_record(report: dict) -> DayRecord:
    """The triggers' view of a stored drift report."""
    perf = report.get("performance") or {}
    value = None
    if perf.get("evaluated"):
        value = ((perf.get("metrics") or {}).get("pr_auc") or {}).get("value")
    if value is not None and not math.isfinite(float(value)):
        value = None
    reference = (report.get("reference_metrics") or {}).get("pr_auc")
    return DayRecord(
        failed=day_failed(report),
        pr_auc=None if value is None else float(value),
        positives=int(perf.get("positives") or 0),
        reference=None if reference is None else float(reference),
    )


def production_days(blobs, last_day: str, n: int, version: str) -> dict[str, DayRecord]:
    """``{day: record}`` over the ``n`` calendar days ending at ``last_day``, for the days whose
    stored drift report scored ``version`` (other days are absent: no report, or another model's)."""
    end = date.fromisoformat(last_day)
    out: dict[str, DayRecord] = {}
    for offset in range(n - 1, -1, -1):
        day = (end - timedelta(days=offset)).isoformat()
        try:
            report = json.loads(blobs.read_bytes(f"{REPORTS_PREFIX}/{day}.json"))
        except BlobNotFound:
            continue
        if report.get("model_version") != version:
            continue
        out[day] = day_record(report)
    return out


def collapse_days(blobs, last_day: str, n: int, version: str) -> dict[str, bool | None]:
    """``{day: failed}``: :func:`production_days` reduced to the collapse check's outcome."""
    return {d: r.failed for d, r in production_days(blobs, last_day, n, version).items()}


def realised_pr_auc(
    records: Mapping[str, DayRecord], last_day: str, window: int
) -> tuple[float | None, int]:
    """(Burglary-weighted mean of the daily realised PR-AUC, evaluated days) over the ``window``
    days ending at ``last_day``.

    Weighted by burglaries because a day's PR-AUC is as precise as its positives are many;
    the mean of a month of days is what the drift reports already hold (no rows are re-read).
    """
    first = (date.fromisoformat(last_day) - timedelta(days=window - 1)).isoformat()
    pairs = [
        (r.pr_auc, r.positives)
        for d, r in records.items()
        if first <= d <= last_day and r.pr_auc is not None and r.positives > 0
    ]
    weight = sum(w for _, w in pairs)
    if not weight:
        return None, 0
    return sum(v * w for v, w in pairs) / weight, len(pairs)


@dataclass(frozen=True)
class Decision:
    action: str  # launch | skip_cooldown | skip_in_flight | no_trigger | no_model | no_data
    summary: str
    last_day: str | None = None
    failed_days: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def triggers(self) -> tuple[str, ...]:
        """Which triggers fired (``collapse``, ``decay``, ``age``)."""
        return tuple(self.details.get("triggers") or ())


def _last_launch(instance: DagsterInstance, job: str) -> tuple[str | None, str | None]:
    """``(train_end, run_id)`` of the most recent run this sensor launched for ``job``."""
    runs = instance.get_runs(filters=RunsFilter(job_name=job, tags={TRIGGER_TAG: TRIGGER}), limit=1)
    if not runs:
        return None, None
    return runs[0].tags.get(TRAIN_END_TAG), runs[0].run_id


def judge(
    judged: Mapping[str, DayRecord | bool | None],
    last_day: str,
    version: str,
    policy: RetrainingPolicy,
    in_flight: tuple[str, str] | None = None,
    last_launch: tuple[str | None, str | None] = (None, None),
    job: str = "train_and_deploy_job",
    *,
    age_days: int | None = None,
    reference_pr_auc: float | None = None,
) -> Decision:
    """The rule, on plain values (also what ``benchmarks/lifecycle.py`` replays).

    ``judged``: the production model's days among the last ``policy.lookback_days``, as
    :class:`DayRecord` (or a bare ``failed`` flag, which feeds the collapse trigger only);
    ``in_flight``: ``(run_id, status)`` of a queued/running retraining, if any;
    ``last_launch``: ``(train_end, run_id)`` of this sensor's previous launch;
    ``age_days``: days from the end of the production model's data to ``last_day``;
    ``reference_pr_auc``: its held-out PR-AUC (default: the one the reports carry).
    """
    records = {d: r if isinstance(r, DayRecord) else DayRecord(failed=r) for d, r in judged.items()}
    collapse_from = (date.fromisoformat(last_day) - timedelta(days=policy.n - 1)).isoformat()
    recent = {d: r for d, r in records.items() if d >= collapse_from}
    failed = tuple(d for d, r in recent.items() if r.failed)
    details: dict[str, Any] = {
        "k": policy.k,
        "n": policy.n,
        "production_version": version,
        "failed_days": list(failed),
        "judged_days": sum(r.failed is not None for r in recent.values()),
    }
    fired: dict[str, str] = {}
    quiet: list[str] = []
    collapse_text = (
        f"{CHECK_NAME} failed on {len(failed)} of the last {policy.n} days up to {last_day}"
    )
    if len(failed) >= policy.k:
        fired["collapse"] = f"{collapse_text} ({', '.join(failed)})"
    else:
        quiet.append(f"{collapse_text} (retrain at {policy.k})")
    if policy.decay_window_days:
        if reference_pr_auc is None:
            references = [r.reference for r in records.values() if r.reference is not None]
            reference_pr_auc = references[-1] if references else None
        mean, evaluated = realised_pr_auc(records, last_day, policy.decay_window_days)
        needed = math.ceil(policy.decay_window_days * DECAY_MIN_SHARE)
        details["decay"] = {
            "window_days": policy.decay_window_days,
            "evaluated_days": evaluated,
            "realised_pr_auc": None if mean is None else round(mean, 4),
            "reference_pr_auc": reference_pr_auc,
            "margin": policy.decay_margin,
        }
        if mean is None or reference_pr_auc is None or evaluated < needed:
            quiet.append(
                f"decay not judged ({evaluated} of the last {policy.decay_window_days} days "
                f"evaluated, need {needed}; reference {reference_pr_auc})"
            )
        else:
            text = (
                f"realised PR-AUC {mean:.3f} over the last {policy.decay_window_days} days "
                f"({evaluated} evaluated) vs held-out {reference_pr_auc:.3f}"
            )
            if mean < reference_pr_auc - policy.decay_margin:
                fired["decay"] = f"{text}: more than {policy.decay_margin} under"
            else:
                quiet.append(f"{text} (retrain when more than {policy.decay_margin} under)")
    if policy.max_age_days and age_days is not None:
        details["age_days"] = age_days
        text = f"model data ends {age_days} days before {last_day}"
        if age_days > policy.max_age_days:
            fired["age"] = f"{text}: older than {policy.max_age_days}"
        else:
            quiet.append(f"{text} (retrain after {policy.max_age_days})")
    details["triggers"] = list(fired)
    if not fired:
        return Decision(
            "no_trigger", f"model {version}: " + "; ".join(quiet), last_day, failed, details
        )
    trigger = f"model {version}: " + "; ".join(f"[{name}] {text}" for name, text in fired.items())
    if in_flight is not None:
        run_id, status = in_flight
        return Decision(
            "skip_in_flight",
            f"{trigger}; run {run_id} of {job} is still {status}",
            last_day,
            failed,
            {**details, "in_flight_run": run_id},
        )
    last_end, last_run = last_launch
    if last_end is not None:
        ready = date.fromisoformat(last_end) + timedelta(days=policy.cooldown_days)
        if date.fromisoformat(last_day) < ready:
            return Decision(
                "skip_cooldown",
                f"{trigger}; cooling down until {ready} after the retraining "
                f"on data up to {last_end} (run {last_run}, cooldown {policy.cooldown_days} days)",
                last_day,
                failed,
                {
                    **details,
                    "previous_train_end": last_end,
                    "previous_run": last_run,
                    "cooldown_until": ready.isoformat(),
                },
            )
    return Decision("launch", trigger, last_day, failed, details)


def model_age_days(manifest: Mapping[str, Any], last_day: str) -> int | None:
    """Days from the last labelled day the model's training run saw (its test window's end,
    or its training window's when there is none) to ``last_day``; None when unrecorded."""
    for key in ("test_window", "training_window"):
        end = (manifest.get(key) or {}).get("end")
        if end:
            return (date.fromisoformat(last_day) - date.fromisoformat(str(end)[:10])).days
    return None


def decide(
    instance: DagsterInstance, storage: StorageResource, city: str, policy: RetrainingPolicy
) -> Decision:
    """What the sensor does now, from the stored reports, the manifest and the instance's runs."""
    registry = storage.registry(city)
    version = registry.production_version()
    if version is None:
        return Decision("no_model", "no production model: nothing to retrain yet")
    days = storage.partitions(city).list_partitions("crime_features")
    if not days:
        return Decision("no_data", "no labelled days are stored")
    last_day = max(days)
    records = production_days(storage.blobs(city), last_day, policy.lookback_days, version)
    age = model_age_days(registry.manifest(version), last_day) if policy.max_age_days else None
    job = job_name(city, "train_and_deploy_job")
    runs = instance.get_runs(filters=RunsFilter(job_name=job, statuses=IN_FLIGHT), limit=1)
    in_flight = (runs[0].run_id, runs[0].status.value.lower()) if runs else None
    return judge(
        records,
        last_day,
        version,
        policy,
        in_flight,
        _last_launch(instance, job),
        job,
        age_days=age,
    )


ALERTED_ACTIONS = {
    "launch": "launched",
    "skip_cooldown": "skipped_cooldown",
    "skip_in_flight": "skipped_in_flight",
}


def build_retraining_sensor(
    city: City,
    *,
    state_dir: str | os.PathLike | None = None,
    sinks_factory: Callable[[Path, Any], Sequence[AlertSink]] = default_retraining_sinks,
    minimum_interval_seconds: int = 300,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
) -> SensorDefinition:
    """``<city>__retraining_sensor``: launches ``<city>__train_and_deploy_job`` on decay.

    The cursor remembers the last alerted decision (action and its cause: the run in flight or
    the launch cooling down), so a skip is alerted once, not on every tick; the launch's
    ``run_key`` (city and ``train_end``) makes Dagster refuse a second launch for the same
    window even if the cursor were lost.
    """
    job = job_name(city.name, "train_and_deploy_job")

    @sensor(
        name=f"{city.name}__retraining_sensor",
        job_name=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=f"Retrains {city.spec.title}'s model when the drift report's "
        f"{CHECK_NAME} check failed on K of the last N labelled days (SUPERDAN_RETRAIN_K/_N, "
        f"default {DEFAULT_K}/{DEFAULT_N}), when its realised PR-AUC over the last W days is "
        f"more than a margin under its held-out PR-AUC (SUPERDAN_RETRAIN_DECAY_WINDOW_DAYS/"
        f"_DECAY_MARGIN, default {DEFAULT_DECAY_WINDOW_DAYS}/{DEFAULT_DECAY_MARGIN}), or when "
        f"its data is older than SUPERDAN_RETRAIN_MAX_AGE_DAYS (default {DEFAULT_MAX_AGE_DAYS}, "
        f"0 = off); one retraining at a time, then a cooldown (SUPERDAN_RETRAIN_COOLDOWN_DAYS, "
        f"default {DEFAULT_COOLDOWN_DAYS}).",
        tags=city.tags,
    )
    def retraining_sensor(context: SensorEvaluationContext, storage: StorageResource):
        decision = decide(context.instance, storage, city.name, RetrainingPolicy.from_env())
        context.log.info(f"{city.name}: {decision.action}: {decision.summary}")
        if decision.action not in ALERTED_ACTIONS:
            return SkipReason(decision.summary)
        # Alert a skip once per cause (the run in flight, the launch cooling down), not per tick.
        cause = {
            "skip_in_flight": decision.details.get("in_flight_run"),
            "skip_cooldown": decision.details.get("previous_run"),
        }.get(decision.action, decision.last_day)
        cursor_key = f"{decision.action}:{cause}"
        run_requests = []
        if decision.action == "launch":
            run_requests.append(
                RunRequest(
                    run_key=f"{city.name}-retrain-{decision.last_day}",
                    run_config={
                        "ops": {
                            f"{city.name}__crime_model": {
                                "config": {"train_end": decision.last_day}
                            }
                        }
                    },
                    tags={
                        **city.tags,
                        TRIGGER_TAG: TRIGGER,
                        TRAIN_END_TAG: decision.last_day,
                        FIRED_TAG: ",".join(decision.triggers),
                        "superdan/failed_days": ",".join(decision.failed_days),
                    },
                )
            )
        elif context.cursor == cursor_key:
            return SkipReason(f"{decision.summary} (already alerted)")
        state = Path(state_dir) if state_dir else default_state_dir()
        send_alert(
            RetrainingAlert(
                city=city.name,
                decision=ALERTED_ACTIONS[decision.action],
                summary=decision.summary,
                last_labelled_day=decision.last_day,
                model_version=decision.details.get("production_version"),
                details=decision.details,
            ),
            sinks_factory(state, context.log),
            context.log,
        )
        return SensorResult(run_requests=run_requests, cursor=cursor_key)

    return retraining_sensor


# -- the outcome -------------------------------------------------------------------------------


def retraining_outcome(instance: DagsterInstance, run) -> RetrainingAlert | None:
    """Promoted, refused (with the failed gates) or failed, for a finished retraining run."""
    if run.tags.get(TRIGGER_TAG) != TRIGGER:
        return None
    city = run.tags.get("superdan/city", "?")
    gates = {
        e.check_name: e
        for e in check_evaluations_for_run(instance, run.run_id)
        if e.check_name in GATES and e.asset_key.endswith("crime_model")
    }
    records = instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    materialized = {}
    for r in records:
        materialization = r.event_log_entry.dagster_event.event_specific_data.materialization
        materialized[materialization.asset_key.path[-1]] = materialization.metadata
    version_value = (materialized.get("crime_model") or {}).get("model_version")
    version = getattr(version_value, "value", None)
    details = {
        "gates": {
            name: {"passed": e.passed, "summary": e.description} for name, e in gates.items()
        },
        "train_end": run.tags.get(TRAIN_END_TAG),
        "run_status": run.status.value,
        "triggers": [t for t in run.tags.get(FIRED_TAG, "").split(",") if t],
    }
    because = (
        f" (retrained on trigger: {', '.join(details['triggers'])})" if details["triggers"] else ""
    )
    common = {
        "city": city,
        "run_id": run.run_id,
        "model_version": version,
        "last_labelled_day": run.tags.get(TRAIN_END_TAG),
        "details": details,
    }
    failed_gates = [name for name, e in gates.items() if not e.passed]
    if run.status == DagsterRunStatus.SUCCESS and "model_endpoint" in materialized:
        return RetrainingAlert(
            decision="promoted",
            summary=f"candidate {version} passed every gate and is deployed{because}",
            **common,
        )
    if failed_gates:
        return RetrainingAlert(
            decision="refused",
            summary=f"candidate {version} refused by "
            + "; ".join(f"{name}: {gates[name].description}" for name in failed_gates)
            + because,
            **common,
        )
    return RetrainingAlert(
        decision="failed",
        summary=f"the retraining run ended {run.status.value} before its gates decided "
        f"(see the run's logs){because}",
        **common,
    )


def build_retraining_outcome_sensors(
    *,
    state_dir: str | os.PathLike | None = None,
    sinks_factory: Callable[[Path, Any], Sequence[AlertSink]] = default_retraining_sinks,
    minimum_interval_seconds: int = 30,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
) -> list[SensorDefinition]:
    """Run-status sensors (SUCCESS, FAILURE) that alert how each sensor-launched retraining
    ended. One pair for every city: a run says its city in its tags."""

    def evaluate(context):
        """``context`` is a ``RunStatusSensorContext`` (left unannotated: Dagster inspects it)."""
        alert = retraining_outcome(context.instance, context.dagster_run)
        if alert is None:
            return
        state = Path(state_dir) if state_dir else default_state_dir()
        send_alert(alert, sinks_factory(state, context.log), context.log)

    common = {
        "minimum_interval_seconds": minimum_interval_seconds,
        "default_status": default_status,
    }
    return [
        run_status_sensor(
            run_status=status,
            name=f"retraining_outcome_on_{status.value.lower()}",
            description="Alerts whether a sensor-launched retraining was promoted, refused by "
            "its gates, or failed.",
            **common,
        )(evaluate)
        for status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)
    ]
