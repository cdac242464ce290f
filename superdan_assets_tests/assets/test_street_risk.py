"""street_risk inside a real Dagster run, on generated crime_features days in local storage."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from superdan_assets.assets import City
from superdan_assets.assets.street_risk import (
    CHECK,
    build_street_risk,
    street_risk_blobs,
    street_risk_registry,
)
from superdan_assets.cities import resolve_spec
from superdan_assets.ml.labels import FEATURE_ROW_DTYPES
from superdan_assets.resources.storage import StorageResource
from superdan_assets.resources.tracking import ExperimentTracker
from superdan_assets.serving.risk import MODEL_VERSION_METADATA
from superdan_assets.storage.partitions import frame_to_parquet_bytes, parquet_bytes_to_frame
from superdan_assets_tests.ml.street_risk_data import generate_rows

CITY = City(resolve_spec("chicago"))
street_risk = build_street_risk(CITY)
TRAINING = {
    "train_years": 0.5,
    "train_step": 7,
    "target_days": 7,
    "zero_fraction": 0.3,
    "params": {"n_estimators": 40, "num_leaves": 15, "min_child_samples": 20},
}


def _feature_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Generated rows in the crime_features schema (the columns the generator lacks are null)."""
    out = pd.DataFrame(index=rows.index)
    for column, dtype in FEATURE_ROW_DTYPES.items():
        out[column] = rows[column] if column in rows else pd.Series(pd.NA, index=rows.index)
        out[column] = out[column].astype(dtype)
    return out


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> StorageResource:
    root = tmp_path_factory.mktemp("street-risk")
    storage = StorageResource(
        base_dir=str(root / "data"), cache_dir=str(root / "cache"), docs_dir=str(root / "docs")
    )
    rows = _feature_rows(generate_rows(start="2016-01-01", days=300, n_blocks=225, seed=5))
    partitions = storage.partitions("chicago")
    days = rows["date"].dt.strftime("%Y-%m-%d")
    for day, frame in rows.groupby(days):
        partitions.write("crime_features", day, frame.reset_index(drop=True))
    return storage


def _run(storage, day, min_pai_ratio=0.5, raise_on_error=True, tracker=None):
    # The generated city's rates are steady, so the hot-spot baselines are close to the truth
    # and a small model only roughly matches them: the gate's logic is tested in the ml tests;
    # here min_pai_ratio sets which path (deploy or refuse) the run takes.
    return materialize(
        [street_risk],
        resources={"storage": storage, "tracker": tracker or ExperimentTracker(mode="disabled")},
        partition_key=day,
        instance=DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
        run_config={
            "ops": {
                "chicago__street_risk": {
                    "config": {
                        "validation_days": 14,
                        "training": json.dumps(TRAINING),
                        "min_pai_ratio": min_pai_ratio,
                    }
                }
            }
        },
    )


def test_a_model_failing_its_gate_is_registered_but_never_deployed(storage):
    result = _run(storage, "2016-10-10", min_pai_ratio=50.0, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message
    assert "failed its gate" in message and "no earlier model is deployed" in message
    registry = street_risk_registry(storage, "chicago")
    assert registry.production_version() is None
    [version] = registry.versions()
    assert registry.manifest(version)["gate"]["passed"] is False


def test_first_day_trains_gates_deploys_and_maps(storage, tmp_path):
    wandb_dir = tmp_path / "wandb"
    result = _run(
        storage, "2016-10-10", tracker=ExperimentTracker(mode="offline", directory=str(wandb_dir))
    )
    assert result.success
    meta = result.asset_materializations_for_node("chicago__street_risk")[0].metadata
    registry = street_risk_registry(storage, "chicago")
    version = registry.production_version()
    assert version is not None and meta["model_version"].value == version
    assert meta["trained_this_run"].value is True
    assert meta["wandb_run"].value not in ("offline", "not trained")  # the offline run's id
    assert any(p.name.endswith(".wandb") for p in wandb_dir.rglob("*"))
    manifest = registry.manifest(version)
    assert manifest["kind"] == "street_risk" and manifest["gate"]["passed"]
    assert manifest["cutoff"] == "2016-09-26"  # 14 validation days before the forecast day
    assert "data:image/png;base64," in meta["map"].value
    assert meta["top_20"].value.count("\n| theft |") == 20
    html = Path(meta["interactive_map"].value.removeprefix("file://"))
    assert html.is_file() and "leaflet" in html.read_text().lower()
    forecast = parquet_bytes_to_frame(
        street_risk_blobs(storage, "chicago").read_bytes("forecasts/2016-10-10.parquet")
    )
    assert set(forecast["crime_type"]) == {"burglary", "theft"}
    assert (forecast["day"] == pd.Timestamp("2016-10-10")).all()
    assert meta["places"].value == (forecast["crime_type"] == "burglary").sum()
    # no earlier forecast yet: nothing realised, and the monitoring check passes
    assert not any(k.startswith("realised_hit_rate") for k in meta)
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == CHECK and check.passed


def test_next_day_reuses_the_model_and_scores_yesterday(storage):
    first_version = street_risk_registry(storage, "chicago").production_version()
    result = _run(storage, "2016-10-11")
    assert result.success
    meta = result.asset_materializations_for_node("chicago__street_risk")[0].metadata
    assert meta["trained_this_run"].value is False
    assert meta["model_version"].value == first_version
    record = json.loads(
        street_risk_blobs(storage, "chicago").read_bytes("monitoring/2016-10-10.json")
    )
    assert record["day"] == "2016-10-10"
    realised = meta["realised_hit_rate_1pct_theft_model"].value
    assert realised == pytest.approx(record["theft"]["model"])
    assert 0.0 <= realised <= 1.0
    assert "data:image/png;base64," in meta["hit_rate_history"].value


def test_a_day_without_history_says_what_is_missing(storage):
    with pytest.raises(Exception, match="no crime_features days are stored before 2015-06-01"):
        _run(storage, "2015-06-01")


def test_endpoint_bundle_carries_the_deployed_street_risk_model_and_forecasts(storage, tmp_path):
    from superdan_assets.assets.street_risk import endpoint_bundle
    from superdan_assets.ml.artifact import verify_artifact
    from superdan_assets.serving.risk import RiskService
    from superdan_assets_tests.serving.fixture_model import VERSION, write_fixture_model

    classifier = write_fixture_model(tmp_path / "classifier")
    bundle = endpoint_bundle(storage, "chicago", classifier, tmp_path / "bundle", days=1)
    assert verify_artifact(bundle)["version"] == VERSION
    production = street_risk_registry(storage, "chicago").production_version()
    bundled = sorted(p.stem for p in (bundle / "street_risk" / "forecasts").glob("*.parquet"))
    assert bundled == ["2016-10-11"]  # the last stored forecast only

    # Local storage: the bundle points at the storage's forecasts, so a day forecast after the
    # deployment is served without redeploying, named for the model that made it.
    live = Path(storage.base_dir) / "chicago" / "street_risk" / "forecasts"
    service = RiskService(bundle / "street_risk")
    assert service.version == production
    assert service.forecasts == live.resolve()
    stored = sorted(p.stem for p in live.glob("*.parquet"))
    assert len(stored) > 1 and service.dates() == stored
    top = service.top(b"type=burglary&top=2")
    assert top["top"][0]["rank"] == 1 and top["model_version"] == production
    # As a retrained street-risk model would write it the next morning.
    frame = pd.read_parquet(live / "2016-10-11.parquet")
    (live / "2016-10-12.parquet").write_bytes(
        frame_to_parquet_bytes(frame, {MODEL_VERSION_METADATA: "sr-20161012-retrained"})
    )
    try:
        assert service.dates()[-1] == "2016-10-12"
        answer = service.top(b"date=2016-10-12&top=1")
        assert answer["date"] == "2016-10-12"
        assert answer["model_version"] == "sr-20161012-retrained"
    finally:
        (live / "2016-10-12.parquet").unlink()

    # The storage folder gone (moved, or a copied bundle): the bundled forecasts are served.
    (bundle / "street_risk" / "live.json").write_text('{"forecasts": "/nonexistent/forecasts"}')
    assert RiskService(bundle / "street_risk").dates() == ["2016-10-11"]
    (bundle / "street_risk" / "live.json").write_text("not json")
    assert RiskService(bundle / "street_risk").dates() == ["2016-10-11"]


def test_todays_forecast_partition_exists_before_the_day_is_over():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from superdan_assets.assets.street_risk import forecast_partitions

    now = datetime(2018, 3, 5, 6, 30, tzinfo=ZoneInfo("America/Chicago"))
    spec = CITY.spec
    assert forecast_partitions(spec).get_partition_keys(current_time=now)[-1] == "2018-03-05"
    assert CITY.partitions_def.get_partition_keys(current_time=now)[-1] == "2018-03-04"


def test_a_deployed_model_from_before_per_type_features_is_replaced(storage, tmp_path):
    # A model saved when every type shared one feature list cannot forecast with the current
    # features: the next day retrains instead of failing until the model ages out.
    from superdan_assets.ml.street_risk.artifact import load_street_risk, save_street_risk
    from superdan_assets.ml.street_risk.forecast import forecast_day

    registry = street_risk_registry(storage, "chicago")
    model, _ = load_street_risk(registry.fetch(registry.production_version()))
    model.feature_names = list(model.feature_names["burglary"])  # the old layout
    with pytest.raises(ValueError, match="predates per-type features"):
        forecast_day(
            model,
            _feature_rows(generate_rows(start="2016-01-01", days=60, n_blocks=25, seed=5)),
            "2016-02-20",
        )
    legacy = save_street_risk(model, tmp_path / "legacy", "2016-09-27", {}, True, "test")
    registry.register(tmp_path / "legacy")
    registry.promote(legacy["version"], "an artifact from the previous code")

    result = _run(storage, "2016-10-12")
    assert result.success
    meta = result.asset_materializations_for_node("chicago__street_risk")[0].metadata
    assert meta["trained_this_run"].value is True
    assert meta["model_version"].value != legacy["version"]
    assert isinstance(registry.manifest(meta["model_version"].value)["feature_names"], dict)
