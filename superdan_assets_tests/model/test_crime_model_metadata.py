"""crime_model in a real Dagster run: the headline metrics and the threshold choice it reports.

Real city assets and resources on synthetic ``crime_features`` days; a policy recall other than
0.6 used to turn ``precision_at_recall_0_6`` into NaN in the metadata.
"""

import json
import math

from dagster import AssetKey, DagsterInstance, materialize

from superdan_assets.assets import City, build_city_assets
from superdan_assets.cities.catalog import resolve_spec
from superdan_assets.ml.labels import build_feature_rows
from superdan_assets_tests.ml.incidents import FAST_PARAMS, synthetic_incidents

CITY = City(resolve_spec("chicago"))


def test_crime_model_reports_precision_and_recall_at_its_threshold(tmp_path, monkeypatch):
    from superdan_assets.resources.factory import build_resources
    from superdan_assets.settings import Settings

    monkeypatch.setenv("SUPERDAN_HOME", str(tmp_path / "home"))
    resources = build_resources(Settings.from_env(), default_city="chicago")
    rows = build_feature_rows(synthetic_incidents("2017-01-01", days=120, per_day=40, seed=4))
    days = rows["date"].dt.strftime("%Y-%m-%d")
    partitions = resources["storage"].partitions("chicago")
    for day in sorted(days.unique()):
        partitions.write("crime_features", day, rows[days == day].reset_index(drop=True))
    (tmp_path / "dh").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dh")) as instance:
        result = materialize(
            build_city_assets(CITY),
            resources=resources,
            instance=instance,
            selection=[AssetKey(["chicago", "crime_model"])],
            run_config={
                "ops": {
                    "chicago__crime_model": {
                        "config": {
                            "holdout_days": 20,
                            "min_recall": 0.5,
                            "threshold_days": 28,
                            "recall_margin": 0.05,
                            "hyperparameters": json.dumps(FAST_PARAMS),
                        }
                    }
                }
            },
        )
    assert result.success
    meta = result.asset_materializations_for_node("chicago__crime_model")[0].metadata
    version = meta["model_version"].value
    manifest = resources["storage"].registry("chicago").manifest(version)
    at = manifest["metrics"]["model"]["at_threshold"]
    assert meta["precision_at_threshold"].value == at["precision"]
    assert meta["recall_at_threshold"].value == at["recall"]
    assert manifest["headline"]["recall_at_threshold"] == at["recall"]
    # Curve statistic: defined although the policy recall is 0.5.
    assert not math.isnan(meta["curve_precision_at_recall_0_6"].value)
    assert "precision_at_recall_0_6" not in meta
    policy = manifest["threshold_policy"]
    assert policy["target_recall"] == 0.55 and policy["threshold_days"] == 28
    assert meta["threshold_target_recall"].value == 0.55
    assert meta["threshold_chosen_on"].value == (
        f"{policy['slice_window']['start']}..{policy['slice_window']['end']}"
    )
    assert policy["slice_window"]["end"] < manifest["test_window"]["start"]
    # The metadata lists the headline before the curve statistics.
    keys = list(meta)
    assert keys.index("precision_at_threshold") < keys.index("curve_precision_at_recall_0_6")
