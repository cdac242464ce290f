"""Days a one-pass validation could not decide: an empty day is validated once, not per day."""

from __future__ import annotations

import pandas as pd

from superdan_assets.assets.quality import revalidator


def test_empty_days_without_a_stored_version_share_one_validation():
    calls: list[str] = []
    frames = {
        "2018-11-13": pd.DataFrame(),
        "2018-11-14": pd.DataFrame(),
        "2018-11-15": pd.DataFrame(),
        "2018-11-12": pd.DataFrame({"id": ["1"]}),
    }

    def validate_day(key, docs):
        assert docs is None
        calls.append(key)
        return f"outcome of {key}"

    validate = revalidator(validate_day, frames.__getitem__, lambda k: k == "2018-11-15")
    assert validate("2018-11-13") == validate("2018-11-14") == "outcome of 2018-11-13"
    # A day with rows, or with a stored version to compare with, is validated on its own.
    assert validate("2018-11-12") == "outcome of 2018-11-12"
    assert validate("2018-11-15") == "outcome of 2018-11-15"
    assert calls == ["2018-11-13", "2018-11-12", "2018-11-15"]
