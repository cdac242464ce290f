"""The retraining sensor's decisions and the outcome alerts, against a real Dagster instance.

Storage is the real local store (registry with a promoted model, stored crime_features days and
drift reports); runs are real runs in a temporary instance: a stand-in ``train_and_deploy_job``
with the real job name, asset keys and gate checks (passing or failing on request), so the
outcome sensor reads real check evaluations and materializations.
"""

import json
from datetime import date, timedelta

import pandas as pd
import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    Config,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    Definitions,
    MaterializeResult,
    SensorResult,
    SkipReason,
    asset,
    build_run_status_sensor_context,
    build_sensor_context,
    define_asset_job,
    validate_run_config,
)

from superdan_assets import retraining
from superdan_assets.assets import City, build_city_assets
from superdan_assets.automation import build_city_automation
from superdan_assets.cities.catalog import resolve_spec
from superdan_assets.resources.storage import StorageResource
from superdan_assets.retraining import (
    RetrainingPolicy,
    build_retraining_outcome_sensors,
    build_retraining_sensor,
    day_failed,
)
from superdan_assets_tests.serving.fixture_model import VERSION, write_fixture_model

CITY = City(resolve_spec("chicago"))
JOB = "chicago__train_and_deploy_job"
LAST_DAY = "2018-03-31"


@pytest.fixture
def instance(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as inst:
        yield inst


@pytest.fixture
def storage(tmp_path):
    store = StorageResource(base_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    registry = store.registry("chicago")
    registry.register(write_fixture_model(tmp_path / "artifact"))
    registry.promote(VERSION, reason="test")
    partitions = store.partitions("chicago")
    for offset in range(10):
        day = (date.fromisoformat(LAST_DAY) - timedelta(days=offset)).isoformat()
        partitions.write("crime_features", day, pd.DataFrame({"x": [offset]}))
    return store


@pytest.fixture
def alerts_dir(tmp_path, monkeypatch):
    for name in (
        "SUPERDAN_RETRAIN_K",
        "SUPERDAN_RETRAIN_N",
        "SUPERDAN_RETRAIN_COOLDOWN_DAYS",
        "SUPERDAN_RETRAIN_DECAY_WINDOW_DAYS",
        "SUPERDAN_RETRAIN_DECAY_MARGIN",
        "SUPERDAN_RETRAIN_MAX_AGE_DAYS",
        "SUPERDAN_ALERT_WEBHOOK_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "alerts"


def write_reports(storage, failed: dict[str, bool], version: str = VERSION) -> None:
    blobs = storage.blobs("chicago")
    for day, did_fail in failed.items():
        report = {
            "day": day,
            "model_version": version,
            "checks": {
                "no_performance_collapse": {
                    "passed": not did_fail,
                    "evaluated": True,
                    "detail": "test",
                }
            },
        }
        blobs.write_bytes(f"drift_reports/{day}.json", json.dumps(report).encode())


def last_days(n: int, end: str = LAST_DAY) -> list[str]:
    return [(date.fromisoformat(end) - timedelta(days=i)).isoformat() for i in range(n)][::-1]


def alerts(alerts_dir) -> list[dict]:
    path = alerts_dir / "retraining.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def tick(sensor, instance, storage, cursor=None):
    context = build_sensor_context(instance=instance, resources={"storage": storage}, cursor=cursor)
    return sensor(context)


# -- a stand-in train_and_deploy_job with the real names ------------------------------------


class GateConfig(Config):
    beats_baselines: bool = True
    no_regression: bool = True


@asset(
    key=AssetKey(["chicago", "crime_model"]),
    check_specs=[
        AssetCheckSpec(
            "beats_baselines", asset=AssetKey(["chicago", "crime_model"]), blocking=True
        ),
        AssetCheckSpec(
            "no_regression_vs_production", asset=AssetKey(["chicago", "crime_model"]), blocking=True
        ),
    ],
)
def stand_in_model(config: GateConfig):
    return MaterializeResult(
        metadata={"model_version": "candidate-2"},
        check_results=[
            AssetCheckResult(
                check_name="beats_baselines",
                passed=config.beats_baselines,
                description="PR-AUC 0.70 vs prior 0.15",
            ),
            AssetCheckResult(
                check_name="no_regression_vs_production",
                passed=config.no_regression,
                description="PR-AUC 0.60 is 0.10 below production",
            ),
        ],
    )


@asset(key=AssetKey(["chicago", "model_endpoint"]), deps=[stand_in_model])
def stand_in_endpoint():
    return MaterializeResult(metadata={"model_version": "candidate-2"})


STAND_IN = Definitions(
    assets=[stand_in_model, stand_in_endpoint],
    jobs=[define_asset_job(JOB, selection=[stand_in_model, stand_in_endpoint])],
)


def run_retraining(
    instance, train_end: str, *, passes: bool = True, trigger: bool = True, fired: str = ""
):
    tags = {"superdan/city": "chicago"}
    if trigger:
        tags |= {retraining.TRIGGER_TAG: retraining.TRIGGER, retraining.TRAIN_END_TAG: train_end}
    if fired:
        tags[retraining.FIRED_TAG] = fired
    result = STAND_IN.resolve_job_def(JOB).execute_in_process(
        instance=instance,
        tags=tags,
        raise_on_error=False,
        run_config={"ops": {"chicago__crime_model": {"config": {"no_regression": passes}}}},
    )
    return instance.get_run_by_id(result.run_id)


# -- the trigger ----------------------------------------------------------------------------


def test_policy_reads_the_environment_and_refuses_nonsense(monkeypatch):
    assert RetrainingPolicy.from_env() == RetrainingPolicy()
    monkeypatch.setenv("SUPERDAN_RETRAIN_K", "2")
    monkeypatch.setenv("SUPERDAN_RETRAIN_N", "5")
    monkeypatch.setenv("SUPERDAN_RETRAIN_COOLDOWN_DAYS", "14")
    assert RetrainingPolicy.from_env() == RetrainingPolicy(2, 5, 14)
    monkeypatch.setenv("SUPERDAN_RETRAIN_K", "6")
    with pytest.raises(ValueError, match="K <= N"):
        RetrainingPolicy.from_env()
    monkeypatch.setenv("SUPERDAN_RETRAIN_K", "two")
    with pytest.raises(ValueError, match="whole number"):
        RetrainingPolicy.from_env()


def test_sensor_is_running_by_default_and_targets_the_city_job():
    sensor = build_retraining_sensor(CITY)
    assert sensor.name == "chicago__retraining_sensor"
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.job_name == JOB


def test_fewer_than_k_failures_do_not_retrain(instance, storage, alerts_dir):
    days = last_days(retraining.DEFAULT_N)
    write_reports(storage, {d: i < retraining.DEFAULT_K - 1 for i, d in enumerate(days)})
    result = tick(build_retraining_sensor(CITY, state_dir=alerts_dir), instance, storage)
    assert isinstance(result, SkipReason)
    assert f"failed on {retraining.DEFAULT_K - 1} of the last" in result.skip_message
    assert alerts(alerts_dir) == []


def test_failures_of_an_older_model_or_outside_the_window_do_not_count(
    instance, storage, alerts_dir
):
    days = last_days(retraining.DEFAULT_N + 3)
    # K failures, but before the window of the last N days ...
    write_reports(storage, {d: True for d in days[:3]})
    # ... and K failures in the window, scored by a model that is no longer in production.
    write_reports(storage, {d: True for d in days[-retraining.DEFAULT_K :]}, version="old")
    result = tick(build_retraining_sensor(CITY, state_dir=alerts_dir), instance, storage)
    assert isinstance(result, SkipReason) and "failed on 0 of" in result.skip_message


def test_k_of_n_failures_launch_a_retrain_on_the_latest_window(instance, storage, alerts_dir):
    days = last_days(retraining.DEFAULT_N)
    failed = days[-retraining.DEFAULT_K :]
    write_reports(storage, {d: d in failed for d in days})
    result = tick(build_retraining_sensor(CITY, state_dir=alerts_dir), instance, storage)
    assert isinstance(result, SensorResult)
    (request,) = result.run_requests
    assert request.run_key == f"chicago-retrain-{LAST_DAY}"
    assert request.tags[retraining.TRAIN_END_TAG] == LAST_DAY
    assert request.tags["superdan/failed_days"] == ",".join(failed)
    assert request.run_config["ops"]["chicago__crime_model"]["config"]["train_end"] == LAST_DAY
    (alert,) = alerts(alerts_dir)
    assert alert["decision"] == "launched" and alert["city"] == "chicago"
    assert alert["details"]["failed_days"] == failed
    assert alert["model_version"] == VERSION


def test_the_launch_config_is_valid_for_the_real_job(
    tmp_path, instance, storage, alerts_dir, monkeypatch
):
    from superdan_assets.resources.factory import build_resources
    from superdan_assets.settings import Settings

    monkeypatch.setenv("SUPERDAN_HOME", str(tmp_path / "home"))
    write_reports(storage, {d: True for d in last_days(retraining.DEFAULT_N)})
    result = tick(build_retraining_sensor(CITY, state_dir=alerts_dir), instance, storage)
    defs = Definitions(
        assets=build_city_assets(CITY),
        jobs=build_city_automation(CITY).jobs,
        resources=build_resources(Settings.from_env(), default_city="chicago"),
    )
    job = defs.resolve_job_def(JOB)
    assert validate_run_config(job, result.run_requests[0].run_config)


def test_a_retrain_in_flight_blocks_another_and_is_alerted_once(instance, storage, alerts_dir):
    write_reports(storage, {d: True for d in last_days(retraining.DEFAULT_N)})
    queued = instance.create_run_for_job(
        STAND_IN.resolve_job_def(JOB), tags={retraining.TRIGGER_TAG: retraining.TRIGGER}
    )
    assert queued.status == DagsterRunStatus.NOT_STARTED
    sensor = build_retraining_sensor(CITY, state_dir=alerts_dir)
    first = tick(sensor, instance, storage)
    assert isinstance(first, SensorResult) and first.run_requests == []
    second = tick(sensor, instance, storage, cursor=first.cursor)
    assert isinstance(second, SkipReason) and "already alerted" in second.skip_message
    (alert,) = alerts(alerts_dir)
    assert alert["decision"] == "skipped_in_flight"
    assert alert["details"]["in_flight_run"] == queued.run_id


def test_cooldown_after_a_retrain_then_a_new_one(instance, storage, alerts_dir, monkeypatch):
    monkeypatch.setenv("SUPERDAN_RETRAIN_COOLDOWN_DAYS", "5")
    write_reports(storage, {d: True for d in last_days(retraining.DEFAULT_N)})
    previous = run_retraining(instance, train_end="2018-03-28", passes=False)
    assert previous.status == DagsterRunStatus.FAILURE  # refused by its blocking gate
    sensor = build_retraining_sensor(CITY, state_dir=alerts_dir)
    result = tick(sensor, instance, storage)
    assert isinstance(result, SensorResult) and result.run_requests == []
    (alert,) = alerts(alerts_dir)
    assert alert["decision"] == "skipped_cooldown"
    assert alert["details"]["cooldown_until"] == "2018-04-02"
    assert alert["details"]["previous_run"] == previous.run_id
    # A manual run of the job (no sensor tag) does not restart the cooldown clock.
    run_retraining(instance, train_end="2018-03-31", trigger=False)
    monkeypatch.setenv("SUPERDAN_RETRAIN_COOLDOWN_DAYS", "3")
    later = tick(sensor, instance, storage, cursor=result.cursor)
    assert isinstance(later, SensorResult) and len(later.run_requests) == 1
    assert [a["decision"] for a in alerts(alerts_dir)] == ["skipped_cooldown", "launched"]


def test_stored_reports_without_a_recorded_outcome_are_judged_by_the_check_rule():
    def report(high, evaluated=True):
        return {
            "performance": {
                "evaluated": evaluated,
                "metrics": {"pr_auc": {"value": high - 0.05, "low": high - 0.1, "high": high}},
            },
            "reference_metrics": {"pr_auc": 0.70},
        }

    assert day_failed(report(0.60)) is True  # whole interval 0.10 below the reference
    assert day_failed(report(0.68)) is False
    assert day_failed(report(0.60, evaluated=False)) is None
    assert day_failed({"checks": {"no_performance_collapse": {"passed": False}}}) is True


# -- the outcome ----------------------------------------------------------------------------


def outcome(instance, run, alerts_dir, status):
    sensors = {s.name: s for s in build_retraining_outcome_sensors(state_dir=alerts_dir)}
    sensor = sensors[f"retraining_outcome_on_{status}"]
    context = build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=instance.get_records_for_run(run.run_id)
        .records[-1]
        .event_log_entry.dagster_event,
    )
    sensor(context)


def test_a_promoted_retrain_is_alerted_as_promoted(instance, alerts_dir):
    run = run_retraining(instance, train_end=LAST_DAY, passes=True)
    assert run.status == DagsterRunStatus.SUCCESS
    outcome(instance, run, alerts_dir, "success")
    (alert,) = alerts(alerts_dir)
    assert alert["decision"] == "promoted"
    assert alert["model_version"] == "candidate-2"
    assert alert["details"]["gates"]["no_regression_vs_production"]["passed"] is True


def test_a_refused_retrain_is_alerted_with_the_failed_gate(instance, alerts_dir):
    run = run_retraining(instance, train_end=LAST_DAY, passes=False)
    outcome(instance, run, alerts_dir, "failure")
    (alert,) = alerts(alerts_dir)
    assert alert["decision"] == "refused"
    assert "no_regression_vs_production" in alert["summary"]
    assert alert["details"]["gates"]["beats_baselines"]["passed"] is True
    assert alert["details"]["gates"]["no_regression_vs_production"]["passed"] is False


def test_runs_not_launched_by_the_sensor_are_not_alerted(instance, alerts_dir):
    run = run_retraining(instance, train_end=LAST_DAY, trigger=False)
    outcome(instance, run, alerts_dir, "success")
    assert alerts(alerts_dir) == []


def test_the_rule_on_plain_values_counts_only_failed_days_and_ends_the_cooldown_on_time():
    from superdan_assets.retraining import judge

    policy = RetrainingPolicy(k=2, n=3, cooldown_days=10)
    days = {"2018-01-01": True, "2018-01-02": None, "2018-01-03": False}
    assert judge(days, "2018-01-03", "v1", policy).action == "no_trigger"
    days["2018-01-03"] = True
    assert judge(days, "2018-01-03", "v1", policy).action == "launch"
    assert judge(days, "2018-01-03", "v1", policy, ("r1", "queued")).action == "skip_in_flight"
    cooling = judge(days, "2018-01-03", "v1", policy, None, ("2017-12-25", "r0"))
    assert cooling.action == "skip_cooldown"
    assert cooling.details["cooldown_until"] == "2018-01-04"
    # A day later (the window of N=3 days moves with it) the cooldown is over.
    days["2018-01-04"] = True
    assert judge(days, "2018-01-04", "v1", policy, None, ("2017-12-25", "r0")).action == "launch"
    # Days before the window of the last N do not count, whatever the caller passes.
    assert judge(days, "2018-01-06", "v1", policy).action == "no_trigger"


# -- from a real drift_report run to the sensor -----------------------------------------------


def _feature_rows(start, days, seed):
    from superdan_assets.ml.labels import build_feature_rows
    from superdan_assets.ml.schema import to_canonical
    from superdan_assets_tests.datagen import export_rows

    rows = pd.DataFrame(export_rows(start, days=days, per_day=120, seed=seed))
    rows = rows.rename(columns=lambda c: c.lower().replace(" ", "_"))
    raw = to_canonical(
        rows,
        "chicago",
        date_format="%m/%d/%Y %I:%M:%S %p",
        updated_on_format="%m/%d/%Y %I:%M:%S %p",
    )
    return build_feature_rows(raw)


def test_a_real_drift_report_records_the_check_outcome_the_sensor_reads(
    tmp_path, instance, alerts_dir, monkeypatch
):
    from dagster import materialize

    from superdan_assets.assets.monitoring import performance_collapsed
    from superdan_assets.ml.drift import build_reference_profile
    from superdan_assets.resources.factory import build_resources
    from superdan_assets.settings import Settings

    monkeypatch.setenv("SUPERDAN_HOME", str(tmp_path / "home"))
    resources = build_resources(Settings.from_env(), default_city="chicago")
    storage = resources["storage"]
    registry = storage.registry("chicago")
    registry.register(write_fixture_model(tmp_path / "artifact"))
    model = registry.load(VERSION)
    reference = _feature_rows("2018-01-01", 20, seed=11)
    profile = build_reference_profile(
        reference, model.predict_proba(reference), threshold=model.threshold
    ).to_dict()
    # A reference no real day can reach, so the day's realised PR-AUC collapses against it.
    profile["metrics"]["pr_auc"] = 0.999
    registry.blobs.write_bytes(f"models/{VERSION}/reference.json", json.dumps(profile).encode())
    registry.promote(VERSION, "test")
    day = "2018-03-01"
    storage.partitions("chicago").write("crime_features", day, _feature_rows(day, 1, seed=3))

    result = materialize(
        build_city_assets(CITY),
        resources=resources,
        partition_key=day,
        instance=instance,
        selection=[AssetKey(["chicago", "drift_report"])],
        raise_on_error=False,
    )
    check = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "no_performance_collapse"
    )
    stored = json.loads(storage.blobs("chicago").read_bytes(f"drift_reports/{day}.json"))
    recorded = stored["checks"]["no_performance_collapse"]
    assert recorded["evaluated"] is True
    assert recorded["passed"] is False and check.passed is False
    assert recorded["passed"] == (not performance_collapsed(stored, 0.05)[0])
    assert day_failed(stored) is True
    # One failed day of K=1 in N=1 launches a retrain through the sensor.
    monkeypatch.setenv("SUPERDAN_RETRAIN_K", "1")
    monkeypatch.setenv("SUPERDAN_RETRAIN_N", "1")
    launched = tick(build_retraining_sensor(CITY, state_dir=alerts_dir), instance, storage)
    assert launched.run_requests[0].tags[retraining.TRAIN_END_TAG] == day


# -- the slow-decay and age triggers ------------------------------------------------------------

REFERENCE = 0.78


def write_scored_reports(
    storage,
    realised: dict[str, float],
    positives: int = 30,
    version: str = VERSION,
    reference: float = REFERENCE,
) -> None:
    """Reports as the drift report stores them: the day's realised PR-AUC, its burglaries, the
    model's held-out PR-AUC, and a collapse check that passed (slow decay never fails it)."""
    blobs = storage.blobs("chicago")
    for day, value in realised.items():
        report = {
            "day": day,
            "model_version": version,
            "performance": {
                "rows": 200,
                "positives": positives,
                "evaluated": True,
                "metrics": {"pr_auc": {"value": value, "low": value - 0.1, "high": value + 0.1}},
            },
            "reference_metrics": {"pr_auc": reference},
            "checks": {
                "no_performance_collapse": {"passed": True, "evaluated": True, "detail": "test"}
            },
        }
        blobs.write_bytes(f"drift_reports/{day}.json", json.dumps(report).encode())


@pytest.fixture
def decay_policy(monkeypatch, alerts_dir):
    """The decay trigger on a 28-day window and a 0.05 margin, the age trigger off."""
    monkeypatch.setenv("SUPERDAN_RETRAIN_DECAY_WINDOW_DAYS", "28")
    monkeypatch.setenv("SUPERDAN_RETRAIN_DECAY_MARGIN", "0.05")
    monkeypatch.setenv("SUPERDAN_RETRAIN_MAX_AGE_DAYS", "0")
    return alerts_dir


def test_new_trigger_settings_are_read_and_nonsense_is_refused(monkeypatch, alerts_dir):
    monkeypatch.setenv("SUPERDAN_RETRAIN_DECAY_WINDOW_DAYS", "21")
    monkeypatch.setenv("SUPERDAN_RETRAIN_DECAY_MARGIN", "0.04")
    monkeypatch.setenv("SUPERDAN_RETRAIN_MAX_AGE_DAYS", "120")
    policy = RetrainingPolicy.from_env()
    assert (policy.decay_window_days, policy.decay_margin, policy.max_age_days) == (21, 0.04, 120)
    assert policy.lookback_days == 21
    monkeypatch.setenv("SUPERDAN_RETRAIN_DECAY_MARGIN", "a lot")
    with pytest.raises(ValueError, match="SUPERDAN_RETRAIN_DECAY_MARGIN='a lot' is not a number"):
        RetrainingPolicy.from_env()
    monkeypatch.setenv("SUPERDAN_RETRAIN_DECAY_MARGIN", "0.04")
    monkeypatch.setenv("SUPERDAN_RETRAIN_MAX_AGE_DAYS", "-1")
    with pytest.raises(ValueError, match="0 = off"):
        RetrainingPolicy.from_env()


def test_slow_decay_launches_a_retrain_and_the_alert_names_the_trigger(
    instance, storage, decay_policy
):
    # A month 0.07 under the held-out PR-AUC; no day collapsed.
    write_scored_reports(storage, {d: REFERENCE - 0.07 for d in last_days(28)})
    result = tick(build_retraining_sensor(CITY, state_dir=decay_policy), instance, storage)
    assert isinstance(result, SensorResult)
    (request,) = result.run_requests
    assert request.tags[retraining.FIRED_TAG] == "decay"
    assert request.tags[retraining.TRAIN_END_TAG] == LAST_DAY
    (alert,) = alerts(decay_policy)
    assert alert["decision"] == "launched"
    assert "[decay]" in alert["summary"] and "[collapse]" not in alert["summary"]
    assert alert["details"]["triggers"] == ["decay"]
    assert alert["details"]["decay"]["realised_pr_auc"] == pytest.approx(REFERENCE - 0.07)
    assert alert["details"]["failed_days"] == []


def test_a_holding_model_does_not_retrain(instance, storage, decay_policy):
    # Within the margin on average, though single days swing further on both sides.
    swings = [REFERENCE - 0.09, REFERENCE + 0.03]
    write_scored_reports(storage, {d: swings[i % 2] for i, d in enumerate(last_days(28))})
    result = tick(build_retraining_sensor(CITY, state_dir=decay_policy), instance, storage)
    assert isinstance(result, SkipReason)
    assert "realised PR-AUC 0.750 over the last 28 days" in result.skip_message
    assert alerts(decay_policy) == []


def test_decay_is_judged_on_the_production_model_s_own_days_only(instance, storage, decay_policy):
    days = last_days(28)
    # The bad days were scored by the previous model; the current one has too few days yet.
    write_scored_reports(storage, {d: REFERENCE - 0.2 for d in days[:20]}, version="old")
    write_scored_reports(storage, {d: REFERENCE - 0.2 for d in days[20:]})
    result = tick(build_retraining_sensor(CITY, state_dir=decay_policy), instance, storage)
    assert isinstance(result, SkipReason)
    assert "decay not judged (8 of the last 28 days evaluated, need 14" in result.skip_message


def test_decay_respects_one_in_flight_and_the_cooldown(
    instance, storage, decay_policy, monkeypatch
):
    write_scored_reports(storage, {d: REFERENCE - 0.1 for d in last_days(28)})
    sensor = build_retraining_sensor(CITY, state_dir=decay_policy)
    queued = instance.create_run_for_job(
        STAND_IN.resolve_job_def(JOB),
        tags={retraining.TRIGGER_TAG: retraining.TRIGGER, retraining.TRAIN_END_TAG: "2018-03-20"},
    )
    blocked = tick(sensor, instance, storage)
    assert isinstance(blocked, SensorResult) and blocked.run_requests == []
    instance.report_run_failed(queued)  # the run ends: what remains is its cooldown
    monkeypatch.setenv("SUPERDAN_RETRAIN_COOLDOWN_DAYS", "28")
    cooling = tick(sensor, instance, storage, cursor=blocked.cursor)
    assert isinstance(cooling, SensorResult) and cooling.run_requests == []
    decisions = alerts(decay_policy)
    assert [a["decision"] for a in decisions] == ["skipped_in_flight", "skipped_cooldown"]
    assert all("[decay]" in a["summary"] for a in decisions)
    assert decisions[1]["details"]["cooldown_until"] == "2018-04-17"


def test_a_model_older_than_the_maximum_age_is_retrained(
    tmp_path, instance, storage, alerts_dir, monkeypatch
):
    from superdan_assets.ml.artifact import save_model
    from superdan_assets_tests.serving.fixture_model import build_pipeline, training_incidents

    frame, labels = training_incidents()
    trained_to = (date.fromisoformat(LAST_DAY) - timedelta(days=200)).isoformat()
    save_model(
        build_pipeline().fit(frame, labels),
        {
            "version": "aged-1",
            "threshold": 0.35,
            "test_window": {"start": "2017-06-01T00:00:00", "end": f"{trained_to}T00:00:00"},
        },
        tmp_path / "aged",
    )
    registry = storage.registry("chicago")
    registry.register(tmp_path / "aged")
    registry.promote("aged-1", reason="test")
    # Performing as on its held-out days: only its age can launch.
    write_scored_reports(storage, {d: REFERENCE for d in last_days(28)}, version="aged-1")
    sensor = build_retraining_sensor(CITY, state_dir=alerts_dir)
    monkeypatch.setenv("SUPERDAN_RETRAIN_MAX_AGE_DAYS", "200")
    young = tick(sensor, instance, storage)
    assert isinstance(young, SkipReason)
    assert "model data ends 200 days before 2018-03-31 (retrain after 200)" in young.skip_message
    monkeypatch.setenv("SUPERDAN_RETRAIN_MAX_AGE_DAYS", "199")
    old = tick(sensor, instance, storage)
    (request,) = old.run_requests
    assert request.tags[retraining.FIRED_TAG] == "age"
    (alert,) = alerts(alerts_dir)
    assert alert["details"]["triggers"] == ["age"] and alert["details"]["age_days"] == 200
    assert "[age] model data ends 200 days before 2018-03-31: older than 199" in alert["summary"]


def test_the_outcome_alert_says_which_trigger_launched_the_retrain(instance, alerts_dir):
    run = run_retraining(instance, train_end=LAST_DAY, passes=False, fired="decay,age")
    outcome(instance, run, alerts_dir, "failure")
    (alert,) = alerts(alerts_dir)
    assert alert["decision"] == "refused"
    assert alert["details"]["triggers"] == ["decay", "age"]
    assert alert["summary"].endswith("(retrained on trigger: decay, age)")


def test_the_decay_mean_weights_days_by_their_burglaries_and_keeps_to_the_window():
    from superdan_assets.retraining import DayRecord, judge, realised_pr_auc

    records = {
        "2018-01-01": DayRecord(False, 0.10, 50, 0.8),  # outside a 3-day window ending 01-04
        "2018-01-02": DayRecord(False, 0.90, 10, 0.8),
        "2018-01-03": DayRecord(None, None, 0, 0.8),  # not evaluated
        "2018-01-04": DayRecord(False, 0.60, 30, 0.8),
    }
    mean, days = realised_pr_auc(records, "2018-01-04", 3)
    assert days == 2 and mean == pytest.approx((0.9 * 10 + 0.6 * 30) / 40)
    policy = RetrainingPolicy(k=1, n=1, decay_window_days=3, decay_margin=0.05)
    fired = judge(records, "2018-01-04", "v1", policy)
    assert fired.action == "launch" and fired.triggers == ("decay",)
    # The explicit reference wins over the reports' (0.675 is within 0.05 of 0.7).
    held = judge(records, "2018-01-04", "v1", policy, reference_pr_auc=0.7)
    assert held.action == "no_trigger" and held.triggers == ()
    off = judge(records, "2018-01-04", "v1", RetrainingPolicy(k=1, n=1, decay_window_days=0))
    assert off.action == "no_trigger" and "decay" not in off.details
