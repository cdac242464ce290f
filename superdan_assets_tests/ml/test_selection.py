"""Rolling-origin selection: folds on time, a cutoff it cannot read past, a resumable record.

Small synthetic data and tiny models: these tests check the protocol, not the quality.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from superdan_assets.ml.labels import build_feature_rows
from superdan_assets.ml.selected import (
    DEFAULT_SELECTION,
    check_selection_before,
    load_selection,
    selected_params,
)
from superdan_assets.ml.selection import (
    FOLLOW_UP_STAGES,
    STARTING_POINT,
    CutoffError,
    Fold,
    follow_up,
    guard_before,
    load_rows_before,
    run_selection,
    yearly_folds,
)
from superdan_assets_tests.ml.incidents import synthetic_incidents

TINY = {"n_estimators": 10, "num_leaves": 7, "min_child_samples": 5}
CUTOFF = "2015-01-01"
STAGES = [
    ("boosting", [("leaves=15", {"num_leaves": 15})]),
    (
        "recency",
        [
            ("half_life=60d", {"recency_half_life_days": 60.0}),
            ("window=200d", {"window_days": 200}),
        ],
    ),
]


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """Three years (2012-2014) of 8 incidents a day, and a few days of 2015 after the cutoff."""
    return build_feature_rows(synthetic_incidents("2012-01-01", 3 * 365 + 1 + 10, 8, seed=5))


def before_cutoff(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["date"] < CUTOFF].reset_index(drop=True)


def select(rows, path=None, messages=None):
    return run_selection(
        rows,
        CUTOFF,
        folds=yearly_folds("2012-01-01", CUTOFF, n_folds=2),
        stages=STAGES,
        start_params={**STARTING_POINT, **TINY},
        record_path=path,
        progress=(messages.append if messages is not None else None),
        n_jobs=1,
    )


def test_yearly_folds_expand_and_validate_on_the_years_before_the_cutoff():
    folds = yearly_folds("2012-01-01", "2018-01-01")
    assert folds == [
        Fold("2015", "2012-01-01", "2015-01-01", "2016-01-01"),
        Fold("2016", "2012-01-01", "2016-01-01", "2017-01-01"),
        Fold("2017", "2012-01-01", "2017-01-01", "2018-01-01"),
    ]
    # The last validation year ends exactly at the cutoff, never after it.
    assert folds[-1].validate_end == "2018-01-01"


def test_folds_need_a_year_of_training_before_the_first_validation_year():
    with pytest.raises(ValueError, match="need data from 2014-01-01; it starts 2016-01-01"):
        yearly_folds("2016-01-01", "2018-01-01", n_folds=3)


def test_a_cutoff_that_is_not_new_year_names_folds_by_dates():
    folds = yearly_folds("2012-03-01", "2016-07-01", n_folds=1)
    assert folds == [Fold("2015-07-01..2016-07-01", "2012-03-01", "2015-07-01", "2016-07-01")]


def test_the_guard_refuses_rows_on_or_after_the_cutoff(rows):
    guard_before(before_cutoff(rows), CUTOFF)
    with pytest.raises(CutoffError, match="on or after the selection cutoff 2015-01-01"):
        guard_before(rows, CUTOFF)
    exactly = before_cutoff(rows).head(3).copy()
    exactly.loc[exactly.index[-1], "date"] = pd.Timestamp(CUTOFF)
    with pytest.raises(CutoffError, match="1 row"):
        guard_before(exactly, CUTOFF)


def test_the_loader_refuses_a_source_that_returns_later_rows(rows):
    asked = []

    def leaky_fetch(start, end):
        asked.append((start, end))
        return rows  # ignores ``end``: a bug the loader must catch

    with pytest.raises(CutoffError, match="must not read the test period"):
        load_rows_before(leaky_fetch, "2012-01-01", CUTOFF)
    assert asked == [(pd.Timestamp("2012-01-01"), pd.Timestamp(CUTOFF))]
    honest = load_rows_before(lambda s, e: rows[rows["date"] < e], "2012-01-01", CUTOFF)
    assert honest["date"].max() < pd.Timestamp(CUTOFF)


def test_selection_refuses_rows_past_its_cutoff_before_fitting_anything(rows):
    messages: list[str] = []
    with pytest.raises(CutoffError):
        select(rows, messages=messages)
    assert messages == []


def test_selection_refuses_folds_past_its_cutoff(rows):
    late = [Fold("2015", "2012-01-01", "2014-06-01", "2015-06-01")]
    with pytest.raises(CutoffError, match="validates up to 2015-06-01"):
        run_selection(before_cutoff(rows), CUTOFF, folds=late, stages=[], start_params=TINY)


def test_the_record_is_written_loaded_and_resumed(rows, tmp_path):
    path = tmp_path / "selection.json"
    messages: list[str] = []
    record = select(before_cutoff(rows), path, messages)

    loaded = load_selection(path)
    assert loaded == json.loads(json.dumps(record, default=str))
    assert [f["name"] for f in loaded["folds"]] == ["2013", "2014"]
    names = [c["name"] for c in loaded["candidates"]]
    assert names == ["starting_point", "leaves=15", "half_life=60d", "window=200d"]
    for candidate in loaded["candidates"]:
        assert set(candidate["folds"]) == {"2013", "2014"}
        for fold in candidate["folds"].values():
            assert 0.0 < fold["pr_auc"] <= 1.0 and fold["rows_validate"] > 0
        mean = sum(f["pr_auc"] for f in candidate["folds"].values()) / 2
        assert candidate["mean_pr_auc"] == pytest.approx(mean)
    # A window keeps fewer training rows than all history.
    window = next(c for c in loaded["candidates"] if c["name"] == "window=200d")
    assert window["folds"]["2014"]["rows_fit"] == 200 * 8
    # The winner is the best of its stage's rule and carries its constraint check.
    winner = loaded["winner"]
    assert winner["name"] in names
    assert winner["constraint"]["name"] == winner["name"]
    assert winner["constraint_met"] == all(
        f["recall"] >= 0.6 for f in winner["constraint"]["folds"].values()
    )
    assert [s["family"] for s in loaded["stages"]] == ["boosting", "recency"]
    check_selection_before(loaded, CUTOFF)
    with pytest.raises(ValueError, match="after the test start 2014-06-01"):
        check_selection_before(loaded, "2014-06-01")

    # Resumed: every candidate comes from the record, nothing is refitted.
    again: list[str] = []
    resumed = select(before_cutoff(rows), path, again)
    assert any("resuming" in m for m in again)
    assert sum("reusing the recorded scores" in m for m in again) == len(names)
    assert not any(" fold 2013: PR-AUC" in m for m in again)
    assert resumed["winner"]["params"] == winner["params"]


def test_a_second_round_starts_from_the_first_rounds_winner_and_says_so(rows, tmp_path):
    from superdan_assets.ml.model import DRIFT_DEFENCES

    first = select(before_cutoff(rows), tmp_path / "round1.json")
    with pytest.raises(ValueError, match="after the test start 2014-06-01"):
        follow_up(first, "2014-06-01", "round1.json")
    arguments = follow_up(first, CUTOFF, "round1.json")
    assert arguments["stages"] is FOLLOW_UP_STAGES
    assert arguments["start_params"] == {**first["winner"]["params"], **DRIFT_DEFENCES}
    tiny_stages = [("boosting", [("leaves=3", {"num_leaves": 3})])]
    second = run_selection(
        before_cutoff(rows),
        CUTOFF,
        folds=yearly_folds("2012-01-01", CUTOFF, n_folds=2),
        stages=tiny_stages,
        start_params=arguments["start_params"],
        continued_from=arguments["continued_from"],
        n_jobs=1,
    )
    assert second["continued_from"]["winner"] == first["winner"]["name"]
    assert second["continued_from"]["added"] == DRIFT_DEFENCES
    assert second["starting_point"]["location_dropout"] == DRIFT_DEFENCES["location_dropout"]
    # Every option of the real second round is a known model parameter.
    from superdan_assets.ml.model import resolve_params

    for _, options in FOLLOW_UP_STAGES:
        for _, overrides in options:
            resolve_params(overrides)


def test_stages_keep_the_incumbent_unless_an_option_gains(rows, tmp_path):
    record = select(before_cutoff(rows), tmp_path / "s.json")
    by_name = {c["name"]: c for c in record["candidates"]}
    start = by_name["starting_point"]["mean_pr_auc"]
    boosting = record["stages"][0]
    expected = (
        "leaves=15" if by_name["leaves=15"]["mean_pr_auc"] > start + 0.001 else "starting_point"
    )
    assert boosting["chosen"] == expected


def test_a_broken_record_is_refused_with_its_path(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"cutoff": "2018-01-01"}')
    with pytest.raises(ValueError, match=r"bad.json: missing \['folds', 'candidates', 'winner'\]"):
        load_selection(path)
    with pytest.raises(FileNotFoundError, match="no model selection record"):
        load_selection(tmp_path / "absent.json")


def test_the_packaged_selection_never_read_2018_and_sets_the_defaults():
    from superdan_assets.ml.features import DEFAULT_CATEGORICAL_COLUMNS, DEFAULT_HISTORY_KEYS
    from superdan_assets.ml.model import DEFAULT_PARAMS

    record = load_selection(DEFAULT_SELECTION)
    check_selection_before(record, "2018-01-01")
    assert pd.Timestamp(record["data"]["last"]) < pd.Timestamp("2018-01-01")
    params = selected_params()
    for key, value in params.items():
        assert DEFAULT_PARAMS[key] == value, key
    assert list(DEFAULT_HISTORY_KEYS) == params["history_keys"]
    assert list(DEFAULT_CATEGORICAL_COLUMNS) == params["categorical_columns"]
