"""SQLite instance storage that writes a batch of Dagster events in one transaction per file.

Why: a single-run backfill over years records two events per daily partition (one
``ASSET_MATERIALIZATION_PLANNED`` when the run is created, one ``ASSET_MATERIALIZATION`` when
the step's output is stored). Dagster's SQLite event log opens a new engine and connection
for every event, commits it (an fsync) and closes it (the last connection to a WAL database
checkpoints it: more fsyncs), once in the run's file and once in the cross-run index. Over
2,557 days that was 44 of the 87 seconds of ``benchmarks/ingest.py``.

Dagster already hands such events over in batches when ``DAGSTER_EVENT_BATCH_SIZE`` is set
(the planned events of a run, the materializations of one step output), but its SQLite
storage stores a batch event by event. :class:`BatchingSqliteEventLogStorage` stores it with
Dagster's own ``store_event`` code inside one open transaction per database file, committed
once: the same rows, tables and indexes, so the UI, partition status, asset checks and
automation read exactly what they read before. A batch that fails is rolled back whole, and
Dagster then stores its events one by one (its documented fallback), so nothing is lost
and, the rollback being complete, nothing is recorded twice (unless one file committed and a
later one failed to, see :meth:`BatchingSqliteEventLogStorage.store_event_batch`).

The batch size is set by the storage itself (``os.environ.setdefault``) because Dagster reads
it from the environment of whichever process records the events; setting it here scopes it to
the processes that use this storage, so a Postgres deployment (``deploy/cluster``) keeps
Dagster's defaults. ``DAGSTER_EVENT_BATCH_SIZE=0`` turns batching off.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
)
from sqlalchemy.pool import NullPool

#: The variable Dagster's instance reads to buffer events that carry batch metadata.
BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
#: Events per transaction: a year of daily partitions in one go, small enough that the write
#: lock on the index file is held for well under a second.
DEFAULT_BATCH_SIZE = 1000


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """:class:`SqliteEventLogStorage` whose ``store_event_batch`` is one transaction per file."""

    def __init__(self, base_dir: str, inst_data: Any = None):
        self._batch = threading.local()  # before Dagster's __init__, which may connect
        super().__init__(base_dir, inst_data)
        os.environ.setdefault(BATCH_SIZE_ENV, str(DEFAULT_BATCH_SIZE))

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Any]:
        open_ = getattr(self._batch, "connections", None)
        if open_ is None:
            with super()._connect(shard) as conn:
                yield conn
            return
        if shard not in open_:
            open_[shard] = self._open_in_transaction(shard)
        yield open_[shard][1]

    def _open_in_transaction(self, shard: str):
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=NullPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        conn = engine.connect()
        return engine, conn, conn.begin()

    def store_event_batch(self, events: Sequence[Any]) -> None:
        """Store ``events`` with Dagster's ``store_event``, one transaction per database file.

        Run files commit before the index file. A failure before any commit rolls everything
        back (Dagster then stores the events one by one); if a run file committed and the
        index then failed, the fallback records those run-log rows a second time (the
        cross-run index, which the UI's asset pages and partition status read, stays exact).
        """
        if len(events) <= 1:
            for event in events:
                self.store_event(event)
            return
        with self._db_lock:
            self._batch.connections = open_ = {}
            try:
                for event in events:
                    self.store_event(event)
                for shard in sorted(open_, key=lambda s: s == INDEX_SHARD_NAME):
                    open_[shard][2].commit()
            except BaseException:
                for _, _, txn in open_.values():
                    if txn.is_active:
                        txn.rollback()
                raise
            finally:
                self._batch.connections = None
                for engine, conn, _ in open_.values():
                    conn.close()
                    engine.dispose()


class BatchingSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage (same files under ``base_dir``) with the batching
    event log; selected in ``dagster.yaml`` as ``storage: custom:`` (see :mod:`.home`)."""

    def __init__(self, base_dir: str, inst_data: Any = None):
        super().__init__(base_dir, inst_data)
        self._event_log_storage = BatchingSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls.from_local(inst_data=inst_data, **config_value)
