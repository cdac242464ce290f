"""The pure parts of the crime_model and drift_report assets, and the W&B tracker."""

import pytest

from superdan_assets.assets.monitoring import performance_collapsed
from superdan_assets.assets.training import training_window
from superdan_assets.resources.tracking import ExperimentTracker

DAYS = [f"2018-01-{d:02d}" for d in range(1, 32)]


def test_training_window_holds_out_the_last_days():
    train, test = training_window(DAYS, None, None, holdout_days=7)
    assert train == DAYS[:24] and test == DAYS[24:]
    assert max(train) < min(test)


def test_training_window_respects_explicit_bounds_and_gaps():
    days = [d for d in DAYS if d != "2018-01-20"]
    train, test = training_window(days, "2018-01-05", "2018-01-25", holdout_days=5)
    assert train[0] == "2018-01-05" and train[-1] == "2018-01-19"
    assert test == ["2018-01-21", "2018-01-22", "2018-01-23", "2018-01-24", "2018-01-25"]


@pytest.mark.parametrize(
    ("days", "kwargs", "message"),
    [
        ([], {}, "no crime_features partitions"),
        (DAYS, {"holdout_days": 0}, "at least 1"),
        (DAYS, {"holdout_days": 40}, "too short"),
        (DAYS[:10], {"train_end": "2018-01-31", "holdout_days": 5}, "no held-out days"),
    ],
)
def test_training_window_errors_say_what_to_do(days, kwargs, message):
    args = {"train_start": None, "train_end": None, "holdout_days": 7, **kwargs}
    with pytest.raises(ValueError, match=message):
        training_window(days, **args)


def _report(value, low, high, reference=0.7, evaluated=True):
    return {
        "performance": {
            "evaluated": evaluated,
            "metrics": {"pr_auc": {"value": value, "low": low, "high": high}},
            "reason": "too few rows",
        },
        "reference_metrics": {"pr_auc": reference},
    }


def test_performance_collapse_needs_the_whole_interval_below_the_reference():
    assert performance_collapsed(_report(0.40, 0.30, 0.55), 0.05)[0]
    assert not performance_collapsed(_report(0.55, 0.40, 0.68), 0.05)[0]
    collapsed, text = performance_collapsed(_report(0.1, 0.0, 0.2, evaluated=False), 0.05)
    assert not collapsed and text == "too few rows"


def test_tracker_modes(tmp_path, monkeypatch):
    disabled = ExperimentTracker(mode="disabled", directory=str(tmp_path))
    assert disabled.log_training("x", {}, {}, {}, None).run_id is None
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(ValueError, match="WANDB_API_KEY"):
        ExperimentTracker(mode="online").resolved_mode()
    with pytest.raises(ValueError, match="not 'offline'"):
        ExperimentTracker(mode="sometimes").resolved_mode()


def test_tracker_offline_writes_a_local_run_with_metrics_and_artifact(tmp_path):
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "model.json").write_text("{}")
    run = ExperimentTracker(mode="offline", directory=str(tmp_path / "wandb")).log_training(
        "test-run", {"version": "v1"}, {"model": {"pr_auc": 0.7}}, {}, artifact
    )
    assert run.mode == "offline" and run.run_id and run.url is None
    files = {p.name for p in (tmp_path / "wandb").rglob("*")}
    assert any(name.endswith(".wandb") for name in files)
