import pytest

from superdan_assets.checks.model_gates import beats_baselines_gate, no_regression_gate


def test_beats_baselines_passes_only_when_better_than_every_baseline():
    ok = beats_baselines_gate(0.70, {"prior": 0.15, "seed_protocol": 0.42})
    assert ok.passed and "seed_protocol" in ok.summary
    tie = beats_baselines_gate(0.42, {"prior": 0.15, "seed_protocol": 0.42})
    assert not tie.passed and "seed_protocol (0.4200)" in tie.summary
    lift = beats_baselines_gate(0.43, {"prior": 0.15, "seed_protocol": 0.42}, min_lift=0.02)
    assert not lift.passed
    with pytest.raises(ValueError, match="no baselines"):
        beats_baselines_gate(0.5, {})


def test_no_regression_gate_uses_the_margin():
    assert no_regression_gate(0.60, None, None, 0.01).passed
    assert no_regression_gate(0.695, 0.70, "v1", 0.01).passed
    failed = no_regression_gate(0.68, 0.70, "v1", 0.01)
    assert not failed.passed
    assert failed.details["delta"] == -0.02 and "v1" in failed.summary
