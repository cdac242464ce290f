"""On a few real weeks of Chicago data: the model beats the class prior on later days."""

from __future__ import annotations

import pandas as pd
import pytest

from superdan_assets.ml.labels import build_feature_rows
from superdan_assets.ml.training import train_and_evaluate
from superdan_assets_tests.conftest import SHARED_DATA

CHICAGO_EXPORT = SHARED_DATA / "chicago"


@pytest.fixture(scope="module")
def real_weeks(tmp_path_factory) -> pd.DataFrame:
    """Theft/burglary rows of 2017-11-01 .. 2018-01-21 from the real bulk export."""
    if not (CHICAGO_EXPORT / "crimes_2018.csv.gz").exists():
        pytest.skip(
            f"real Chicago export not found at {CHICAGO_EXPORT} (../shared/data beside the "
            "checkout); this test needs the real data"
        )
    from superdan_assets.sources.export import ExportSource

    # Only the two years needed: the source reads every file of a folder once to learn its
    # date range, and seven years take half a minute on a busy machine.
    folder = tmp_path_factory.mktemp("export-2017-2018")
    for year in (2017, 2018):
        (folder / f"crimes_{year}.csv.gz").symlink_to(CHICAGO_EXPORT / f"crimes_{year}.csv.gz")
    source = ExportSource(folder)
    raw = source.fetch(pd.Timestamp("2017-11-01"), pd.Timestamp("2018-01-22"))
    return build_feature_rows(raw)


@pytest.mark.realdata
def test_model_beats_the_prior_on_later_real_days(real_weeks):
    train = real_weeks[real_weeks["date"] < "2018-01-01"]
    test = real_weeks[real_weeks["date"] >= "2018-01-01"]
    result = train_and_evaluate(
        train,
        test,
        params={"n_estimators": 150, "n_jobs": 1},
        validation_days=14,
        include_seed_protocol=False,
    )
    model = result.metrics["model"]
    prior = result.metrics["baselines"]["prior"]
    assert model["pr_auc"] > prior["pr_auc"] + 0.2
    assert model["roc_auc"] > 0.8
    assert model["log_loss"] < prior["log_loss"]
    assert model["rows"] == len(test) > 1000
