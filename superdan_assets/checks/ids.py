"""Ids across re-fetches: which reports moved to another day or vanished since the last fetch.

Why: the city edits reports after the fact (a corrected occurrence date moves a report to
another day; a report reclassified as unfounded disappears). The ingestion re-fetches recent
days, so a partition's new version can differ from what was stored. A moved report left behind
in its old partition would be counted twice in a training window; a vanished one might be a
feed glitch. Both are reported (WARN), with the ids, so someone can re-materialise the
affected days.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class IdReconciliation:
    """How a partition's ids compare with what was stored before.

    ``vanished``: id -> its previously stored ``date``; stored in this partition before, absent
    now. ``moved_in``: id -> ``(previous date, current date)``; stored on another day before,
    on this day now (the other day's stored partition still holds it). ``retimed``: id ->
    ``(previous, current)`` for ids still in this partition whose time changed. ``new``: ids
    never stored before.
    """

    vanished: dict[str, pd.Timestamp] = field(default_factory=dict)
    moved_in: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=dict)
    retimed: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=dict)
    new: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.vanished and not self.moved_in

    def to_dict(self, limit: int = 20) -> dict:
        """JSON-serialisable summary: counts plus up to ``limit`` examples each."""
        return {
            "vanished_count": len(self.vanished),
            "moved_in_count": len(self.moved_in),
            "retimed_count": len(self.retimed),
            "new_count": len(self.new),
            "vanished": {k: str(v) for k, v in list(self.vanished.items())[:limit]},
            "moved_in": {k: [str(a), str(b)] for k, (a, b) in list(self.moved_in.items())[:limit]},
            "retimed": {k: [str(a), str(b)] for k, (a, b) in list(self.retimed.items())[:limit]},
        }


def _id_dates(frame: pd.DataFrame) -> pd.Series:
    """``date`` indexed by ``id`` (first occurrence of a duplicated id wins)."""
    if frame is None or frame.empty:
        return pd.Series(dtype="datetime64[ns]")
    rows = frame.loc[frame["id"].notna(), ["id", "date"]]
    rows = rows.drop_duplicates("id", keep="first")
    return pd.Series(rows["date"].to_numpy(), index=rows["id"].astype(str).to_numpy())


def reconcile_partition_ids(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    partition_start: pd.Timestamp,
    partition_end: pd.Timestamp,
) -> IdReconciliation:
    """Compare ``current`` (this partition, freshly fetched) with previously stored rows.

    ``previous`` is what was stored before: the old version of this partition, optionally
    concatenated with neighbouring stored partitions (to see reports moving between days). Rows
    of ``previous`` dated inside ``[partition_start, partition_end)`` count as "this partition
    before"; the others as "other days".
    """
    now = _id_dates(current)
    before = _id_dates(previous)
    if before.empty:
        return IdReconciliation(new=tuple(now.index))
    start, end = pd.Timestamp(partition_start), pd.Timestamp(partition_end)
    inside = (before >= start) & (before < end)
    here_before, elsewhere_before = before[inside], before[~inside]
    vanished_ids = here_before.index.difference(now.index)
    moved_ids = now.index.intersection(elsewhere_before.index)
    kept = now.index.intersection(here_before.index)
    retimed_ids = kept[(now[kept] != here_before[kept]).to_numpy()]
    new_ids = now.index.difference(before.index)
    return IdReconciliation(
        vanished={i: here_before[i] for i in vanished_ids},
        moved_in={i: (elsewhere_before[i], now[i]) for i in moved_ids},
        retimed={i: (here_before[i], now[i]) for i in retimed_ids},
        new=tuple(new_ids),
    )
