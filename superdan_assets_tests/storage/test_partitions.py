import pandas as pd
import pytest

from superdan_assets.ml.schema import CANONICAL_DTYPES, empty_frame
from superdan_assets.storage.blobstore import LocalBlobStore
from superdan_assets.storage.partitions import MissingPartitionError, PartitionStore, split_by_day


def _frame(dates):
    frame = empty_frame().reindex(range(len(dates)))
    frame = frame.astype(CANONICAL_DTYPES)
    frame["id"] = [str(i) for i in range(len(dates))]
    frame["date"] = pd.to_datetime(dates, format="ISO8601").astype("datetime64[ns]")
    frame["primary_type"] = "THEFT"
    return frame


def test_split_by_day_writes_empty_days_and_refuses_strays():
    frame = _frame(["2018-01-01 00:00", "2018-01-01 23:59:59", "2018-01-03 12:00"])
    parts = split_by_day(frame, "date", ["2018-01-01", "2018-01-02", "2018-01-03"])
    assert {k: len(v) for k, v in parts.items()} == {
        "2018-01-01": 2,
        "2018-01-02": 0,
        "2018-01-03": 1,
    }
    with pytest.raises(ValueError, match=r"outside the partitions.*2018-01-03"):
        split_by_day(frame, "date", ["2018-01-01", "2018-01-02"])


def test_partition_round_trip_keeps_dtypes_even_when_empty(tmp_path):
    store = PartitionStore(LocalBlobStore(tmp_path))
    store.write("raw_crimes", "2018-01-02", empty_frame())
    store.write("raw_crimes", "2018-01-01", _frame(["2018-01-01 10:00"]))
    empty = store.read("raw_crimes", "2018-01-02")
    assert len(empty) == 0
    assert dict(empty.dtypes.astype(str)) == {
        c: str(pd.Series(dtype=t).dtype) for c, t in CANONICAL_DTYPES.items()
    }
    both = store.read_many("raw_crimes", ["2018-01-01", "2018-01-02"])
    assert list(both["id"]) == ["0"]
    assert store.list_partitions("raw_crimes") == ["2018-01-01", "2018-01-02"]


def test_missing_partition_says_which_and_what_to_do(tmp_path):
    store = PartitionStore(LocalBlobStore(tmp_path))
    with pytest.raises(MissingPartitionError, match="2018-05-05.*materialize it first"):
        store.read("raw_crimes", "2018-05-05")
