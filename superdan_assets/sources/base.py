"""The interface every crime data source implements.

Sources are plain Python (no Dagster import) so the serving container's ``superdan train`` and
the benchmarks can use them without the orchestrator. The Dagster resource in
``superdan_assets.resources.sources`` only chooses and configures one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import pandas as pd

#: Called with a human-readable progress line (e.g. ``context.log.info``).
Progress = Callable[[str], None]


class SourceError(RuntimeError):
    """A source could not deliver complete data; the message says which request and why."""


@runtime_checkable
class CrimeSource(Protocol):
    """Returns incidents that occurred in ``[start, end)`` (local wall-clock time, naive)."""

    #: Short identifier recorded in materialization metadata, e.g. ``"chicago_soda"``.
    name: str
    #: Lower-case city name written to the ``city`` column.
    city: str

    def fetch(
        self, start: pd.Timestamp, end: pd.Timestamp, progress: Progress | None = None
    ) -> pd.DataFrame:
        """Every incident with ``start <= date < end`` as a canonical frame (see ml.schema)."""
        ...


def naive_local(ts: pd.Timestamp | str, tz: str) -> pd.Timestamp:
    """``ts`` as the city's naive local time (aware values are converted to ``tz`` first)."""
    ts = pd.Timestamp(ts)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(tz).tz_localize(None)
    return ts


def noop_progress(_: str) -> None:
    """Progress sink that drops the message."""
