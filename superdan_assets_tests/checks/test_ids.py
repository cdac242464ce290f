"""Id reconciliation across re-fetches."""

from __future__ import annotations

import pandas as pd

from superdan_assets.checks.ids import reconcile_partition_ids

START, END = pd.Timestamp("2018-06-05"), pd.Timestamp("2018-06-06")


def frame(rows):
    return pd.DataFrame(
        {
            "id": pd.Series([r[0] for r in rows], dtype="string"),
            "date": pd.to_datetime([r[1] for r in rows]),
        }
    )


def test_reports_vanished_moved_and_retimed_ids():
    previous = frame(
        [
            ("a", "2018-06-05 10:00"),  # unchanged
            ("b", "2018-06-05 11:00"),  # vanished
            ("c", "2018-06-04 23:00"),  # stored yesterday, now today
            ("d", "2018-06-05 12:00"),  # re-timed within the day
        ]
    )
    current = frame(
        [
            ("a", "2018-06-05 10:00"),
            ("c", "2018-06-05 01:00"),
            ("d", "2018-06-05 13:00"),
            ("e", "2018-06-05 14:00"),
        ]
    )
    rec = reconcile_partition_ids(current, previous, START, END)
    assert list(rec.vanished) == ["b"]
    assert rec.moved_in == {
        "c": (pd.Timestamp("2018-06-04 23:00"), pd.Timestamp("2018-06-05 01:00"))
    }
    assert list(rec.retimed) == ["d"]
    assert rec.new == ("e",)
    assert not rec.clean
    assert rec.to_dict()["vanished_count"] == 1


def test_without_previous_everything_is_new_and_clean():
    current = frame([("a", "2018-06-05 10:00")])
    rec = reconcile_partition_ids(current, None, START, END)
    assert rec.clean and rec.new == ("a",)
