"""The delivery ledger: which alerts are open, and each one's delivery state per sink.

Why per sink: an alert that reached the log but not the webhook has not been delivered to the
people who read the webhook. Each (alert, sink) pair is its own row with its attempts, last
error and next-attempt time, so a failed webhook POST is retried on a later sensor tick while
the log and the file are not written twice.

Why SQLite: the daemon's sensors run in separate threads or processes, and a tick may die in
the middle of a send. Claiming due deliveries takes a short lease inside ``BEGIN IMMEDIATE``,
so two ticks never send the same delivery at once, and a lease left by a dead tick expires and
the delivery is tried again (at least once, never silently dropped).

An alert stays *open* per (asset, check, partition) until its check passes again
(:meth:`DeliveryLedger.resolve`); a new failure of an open key is a duplicate. Resolving does
not cancel pending deliveries: the failure happened and is still reported.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from superdan_assets.alerts.model import Alert, AlertKey

LEDGER_FILE = "alerts.sqlite"
#: Executed one by one (``executescript`` would commit the surrounding transaction).
SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        asset_key TEXT NOT NULL, check_name TEXT NOT NULL, partition TEXT NOT NULL,
        severity TEXT, run_id TEXT, payload TEXT NOT NULL,
        opened_at REAL NOT NULL, resolved_at REAL)
    """,
    """
    CREATE UNIQUE INDEX IF NOT EXISTS one_open_alert_per_key
        ON alerts (asset_key, check_name, partition) WHERE resolved_at IS NULL
    """,
    """
    CREATE TABLE IF NOT EXISTS deliveries (
        alert_id INTEGER NOT NULL REFERENCES alerts (id), sink TEXT NOT NULL,
        status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL, lease_until REAL, last_error TEXT,
        updated_at REAL NOT NULL, dead_reported INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (alert_id, sink))
    """,
    """
    CREATE INDEX IF NOT EXISTS due ON deliveries (status, next_attempt_at)
    """,
)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not yet delivered; ``next_attempt_at`` says when to try
    DELIVERED = "delivered"
    DEAD = "dead"  # gave up: a dead-letter record was written


@dataclass(frozen=True)
class RetrySchedule:
    """How often and how long to retry a delivery that failed for a transient reason.

    The ``n``-th failure waits ``min(max_delay, base_delay * 2 ** (n - 1))``, scaled by a
    random factor in ``[1 - jitter, 1 + jitter]`` so that many alerts that failed together do
    not hit a recovering receiver together, and never less than a ``Retry-After`` the receiver
    sent. After ``max_attempts`` failed attempts the delivery is dead-lettered. The defaults
    (1, 2, 4, 8, 16 minutes) ride out about half an hour of webhook outage.
    """

    max_attempts: int = 6
    base_delay: float = 60.0
    max_delay: float = 1800.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")

    def delay(
        self, failures: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after the ``failures``-th failed attempt."""
        base = min(self.max_delay, self.base_delay * 2 ** max(failures - 1, 0))
        factor = 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(base * factor, retry_after or 0.0)


@dataclass(frozen=True)
class Delivery:
    """One (alert, sink) delivery as the ledger holds it."""

    alert_id: int
    alert: Alert
    sink: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    updated_at: float

    @property
    def key(self) -> AlertKey:
        return self.alert.key


class DeliveryLedger:
    """The SQLite file ``<state_dir>/alerts.sqlite`` (see the module docstring)."""

    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LEDGER_FILE
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._transaction() as conn:
            for statement in SCHEMA:
                conn.execute(statement)
            self._migrate_sent_table(conn)

    # -- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def _transaction(self):
        """One ``BEGIN IMMEDIATE`` transaction: the write lock is taken before reading."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _migrate_sent_table(self, conn: sqlite3.Connection) -> None:
        """Keys alerted by the earlier single-table ledger stay open (they were delivered)."""
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sent'"
        ).fetchone():
            return
        now = time.time()
        for row in conn.execute("SELECT * FROM sent").fetchall():
            alert = Alert(
                row["asset_key"],
                row["check_name"],
                row["partition"] or None,
                row["severity"] or "WARN",
                run_id=row["run_id"],
            )
            conn.execute(
                "INSERT OR IGNORE INTO alerts (asset_key, check_name, partition, severity,"
                " run_id, payload, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*alert.key, alert.severity, alert.run_id, json.dumps(alert.to_dict()), now),
            )
        conn.execute("DROP TABLE sent")

    # -- alerts --------------------------------------------------------------------------------
    def open_alert(self, alert: Alert, sinks: Sequence[str], now: float) -> int | None:
        """Open ``alert`` with a pending delivery per sink, due at ``now``.

        Returns the new alert's id, or None when its key is already open (a duplicate).
        """
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO alerts (asset_key, check_name, partition, severity,"
                " run_id, payload, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*alert.key, alert.severity, alert.run_id, json.dumps(alert.to_dict()), now),
            )
            if cursor.rowcount != 1:
                return None
            alert_id = cursor.lastrowid
            conn.executemany(
                "INSERT INTO deliveries (alert_id, sink, status, next_attempt_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(alert_id, sink, DeliveryStatus.PENDING.value, now, now) for sink in sinks],
            )
            return alert_id

    def resolve(self, key: AlertKey, now: float) -> bool:
        """Close ``key``'s open alert because its check passed; True if one was open."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE alerts SET resolved_at = ? WHERE asset_key = ? AND check_name = ?"
                " AND partition = ? AND resolved_at IS NULL",
                (now, *key),
            )
            return cursor.rowcount > 0

    def is_open(self, key: AlertKey) -> bool:
        conn = self._connect()
        try:
            return (
                conn.execute(
                    "SELECT 1 FROM alerts WHERE asset_key = ? AND check_name = ? AND partition = ?"
                    " AND resolved_at IS NULL",
                    key,
                ).fetchone()
                is not None
            )
        finally:
            conn.close()

    # -- deliveries ----------------------------------------------------------------------------
    def claim_due(
        self,
        now: float,
        *,
        lease_seconds: float = 120.0,
        alert_ids: Iterable[int] | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Pending deliveries due at ``now`` (optionally only of ``alert_ids``), leased to the
        caller for ``lease_seconds`` so no other tick sends them meanwhile. Oldest first."""
        query = (
            "SELECT d.*, a.payload FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
            " WHERE d.status = ? AND d.next_attempt_at <= ?"
            " AND (d.lease_until IS NULL OR d.lease_until <= ?)"
        )
        params: list = [DeliveryStatus.PENDING.value, now, now]
        if alert_ids is not None:
            ids = list(alert_ids)
            if not ids:
                return []
            query += f" AND d.alert_id IN ({','.join('?' * len(ids))})"
            params += ids
        query += " ORDER BY d.next_attempt_at, d.alert_id LIMIT ?"
        params.append(limit)
        with self._transaction() as conn:
            rows = conn.execute(query, params).fetchall()
            conn.executemany(
                "UPDATE deliveries SET lease_until = ? WHERE alert_id = ? AND sink = ?",
                [(now + lease_seconds, r["alert_id"], r["sink"]) for r in rows],
            )
        return [_delivery(r) for r in rows]

    def mark_delivered(self, delivery: Delivery, now: float) -> Delivery:
        return self._update(
            delivery,
            DeliveryStatus.DELIVERED,
            delivery.attempts + 1,
            None,
            delivery.last_error,
            now,
        )

    def mark_failed(
        self,
        delivery: Delivery,
        error: str,
        *,
        retryable: bool,
        now: float,
        schedule: RetrySchedule,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> Delivery:
        """Record a failed attempt: pending again after the backoff, or dead when it was the
        last attempt or retrying cannot help."""
        attempts = delivery.attempts + 1
        if retryable and attempts < schedule.max_attempts:
            when = now + schedule.delay(attempts, retry_after, rng)
            return self._update(delivery, DeliveryStatus.PENDING, attempts, when, error, now)
        return self._update(delivery, DeliveryStatus.DEAD, attempts, None, error, now)

    def release(self, delivery: Delivery) -> None:
        """Give a leased delivery back untried (its sink was unavailable this tick)."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET lease_until = NULL WHERE alert_id = ? AND sink = ?",
                (delivery.alert_id, delivery.sink),
            )

    def _update(self, delivery, status, attempts, next_attempt_at, error, now) -> Delivery:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?,"
                " last_error = ?, lease_until = NULL, updated_at = ?"
                " WHERE alert_id = ? AND sink = ?",
                (
                    status.value,
                    attempts,
                    next_attempt_at,
                    error,
                    now,
                    delivery.alert_id,
                    delivery.sink,
                ),
            )
        return Delivery(
            delivery.alert_id,
            delivery.alert,
            delivery.sink,
            status,
            attempts,
            next_attempt_at,
            error,
            now,
        )

    def deliveries(
        self, key: AlertKey | None = None, status: DeliveryStatus | None = None
    ) -> list[Delivery]:
        """Every delivery (of ``key``'s alerts, in ``status``, when given), oldest alert first."""
        query = "SELECT d.*, a.payload FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
        where, params = [], []
        if key is not None:
            where.append("a.asset_key = ? AND a.check_name = ? AND a.partition = ?")
            params += list(key)
        if status is not None:
            where.append("d.status = ?")
            params.append(status.value)
        if where:
            query += " WHERE " + " AND ".join(where)
        conn = self._connect()
        try:
            rows = conn.execute(query + " ORDER BY d.alert_id, d.sink", params).fetchall()
        finally:
            conn.close()
        return [_delivery(r) for r in rows]

    def pending(self) -> list[Delivery]:
        return self.deliveries(status=DeliveryStatus.PENDING)

    def requeue_dead(self, now: float, sink: str | None = None) -> list[Delivery]:
        """Give dead deliveries (of ``sink`` only, when given) a fresh set of attempts, due at
        ``now``: for after the cause is fixed (a webhook URL corrected, an outage over). The
        next delivery tick sends them; their last error is kept until then."""
        query = (
            "SELECT d.*, a.payload FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
            " WHERE d.status = ?"
        )
        params: list = [DeliveryStatus.DEAD.value]
        if sink is not None:
            query += " AND d.sink = ?"
            params.append(sink)
        with self._transaction() as conn:
            rows = conn.execute(query + " ORDER BY d.alert_id, d.sink", params).fetchall()
            conn.executemany(
                "UPDATE deliveries SET status = ?, attempts = 0, next_attempt_at = ?,"
                " lease_until = NULL, dead_reported = 0, updated_at = ?"
                " WHERE alert_id = ? AND sink = ?",
                [(DeliveryStatus.PENDING.value, now, now, r["alert_id"], r["sink"]) for r in rows],
            )
        return [
            Delivery(d.alert_id, d.alert, d.sink, DeliveryStatus.PENDING, 0, now, d.last_error, now)
            for d in map(_delivery, rows)
        ]

    def take_unreported_dead(self) -> list[Delivery]:
        """Dead deliveries not yet reported to a person, marked reported as they are taken."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT d.*, a.payload FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
                " WHERE d.status = ? AND d.dead_reported = 0 ORDER BY d.updated_at",
                (DeliveryStatus.DEAD.value,),
            ).fetchall()
            conn.executemany(
                "UPDATE deliveries SET dead_reported = 1 WHERE alert_id = ? AND sink = ?",
                [(r["alert_id"], r["sink"]) for r in rows],
            )
        return [_delivery(r) for r in rows]


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        alert_id=row["alert_id"],
        alert=Alert.from_dict(json.loads(row["payload"])),
        sink=row["sink"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        updated_at=row["updated_at"],
    )
