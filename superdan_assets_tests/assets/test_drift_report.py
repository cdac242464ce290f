"""drift_report inside a real Dagster run: before any model, and against a promoted one."""

import json

import pandas as pd
from dagster import DagsterInstance, materialize

from superdan_assets.assets import City
from superdan_assets.assets.features import build_crime_features
from superdan_assets.assets.ingestion import build_raw_crimes
from superdan_assets.assets.monitoring import REFERENCE_FILE, build_drift_report
from superdan_assets.cities import resolve_spec
from superdan_assets.ml.drift import build_reference_profile
from superdan_assets.ml.labels import build_feature_rows
from superdan_assets.ml.schema import to_canonical
from superdan_assets_tests.assets.helpers import local_resources
from superdan_assets_tests.datagen import export_rows
from superdan_assets_tests.serving.fixture_model import VERSION, write_fixture_model

CHICAGO = City(resolve_spec("chicago"))
#: The upstream definitions resolve the graph; only drift_report is selected to run.
ASSETS = [build_raw_crimes(CHICAGO), build_crime_features(CHICAGO), build_drift_report(CHICAGO)]
SELECTION = ["chicago/drift_report"]
NODE = "chicago__drift_report"


def _feature_rows(start, days, seed):
    rows = pd.DataFrame(export_rows(start, days=days, per_day=80, seed=seed))
    rows = rows.rename(columns=lambda c: c.lower().replace(" ", "_"))
    raw = to_canonical(
        rows,
        "chicago",
        date_format="%m/%d/%Y %I:%M:%S %p",
        updated_on_format="%m/%d/%Y %I:%M:%S %p",
        code_widths=CHICAGO.spec.codes.widths,
    )
    return build_feature_rows(raw)


def _setup(tmp_path):
    resources = local_resources(tmp_path)
    storage = resources["storage"]
    day = _feature_rows("2018-03-01", 1, seed=3)
    storage.partitions("chicago").write("crime_features", "2018-03-01", day)
    return storage, resources, day


def test_before_any_model_the_report_says_so_and_succeeds(tmp_path):
    _, resources, _ = _setup(tmp_path)
    result = materialize(
        ASSETS,
        resources=resources,
        partition_key="2018-03-01",
        instance=DagsterInstance.ephemeral(),
        selection=SELECTION,
    )
    assert result.success
    meta = result.asset_materializations_for_node(NODE)[0].metadata
    assert meta["verdict"].value == "NO_MODEL"
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_report_against_the_production_model_and_its_reference(tmp_path):
    storage, resources, day = _setup(tmp_path)
    registry = storage.registry("chicago")
    artifact = write_fixture_model(tmp_path / "artifact")
    registry.register(artifact)
    model = registry.load(VERSION)
    reference = _feature_rows("2018-01-01", 30, seed=11)
    profile = build_reference_profile(
        reference, model.predict_proba(reference), threshold=model.threshold
    )
    registry.blobs.write_bytes(
        f"models/{VERSION}/{REFERENCE_FILE}", json.dumps(profile.to_dict()).encode()
    )
    registry.promote(VERSION, "test")
    result = materialize(
        ASSETS,
        resources=resources,
        partition_key="2018-03-01",
        instance=DagsterInstance.ephemeral(),
        selection=SELECTION,
    )
    assert result.success
    meta = result.asset_materializations_for_node(NODE)[0].metadata
    assert meta["model_version"].value == VERSION
    assert meta["verdict"].value in ("OK", "WARN", "ALERT")
    assert meta["rows"].value == len(day)
    assert "data:image/png;base64," in meta["top_drifted_features"].value
    checks = {e.check_name for e in result.get_asset_check_evaluations()}
    assert checks == {"no_data_drift", "no_performance_collapse"}
    stored = json.loads(storage.blobs("chicago").read_bytes("drift_reports/2018-03-01.json"))
    # The city's report sits with the city's data.
    assert (tmp_path / "data" / "chicago" / "drift_reports" / "2018-03-01.json").is_file()
    assert stored["day"] == "2018-03-01" and stored["model_version"] == VERSION
