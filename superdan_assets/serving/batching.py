"""Micro-batching: requests that arrive together in one worker share one model call.

Why: the model pipeline costs 5-15 ms per call whether it scores one incident or sixteen
(pandas/scikit-learn overhead per call, not per row), so under concurrency most of a worker's
time would go to paying that fixed cost again and again. Here the requests waiting when the
worker becomes free are scored in one call.

When to call the model: a lone request is scored at once (``call_soon``: no added latency at
concurrency 1). Under concurrency, scoring whatever is queued the moment the worker is free
splits the clients into groups that take turns (the clients just answered come back a moment
after the next call started), so every request waits for two calls. So the batcher remembers
how many requests the last cycle saw (the batch it scored plus those that queued meanwhile)
and gathers until that many are queued, for at most ``max_wait_s`` (3 ms by default): the
groups merge into one batch per model call.

Where the model runs: on the event loop thread for small batches (the worker has one core for
numeric work, and a thread hand-off would only add latency), on a thread for large ones (from
``offload_rows`` incidents, ~0.1 s of work and up), so ``/ping`` keeps answering in milliseconds
while a multi-megabyte request is scored. Model calls never overlap: requests arriving during a
call queue for the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

import numpy as np

from superdan_assets.serving.incidents import IncidentColumns

logger = logging.getLogger(__name__)

#: A batch stops growing at this many incidents (a single larger request is its own batch),
#: so one model call, and the event loop pause it causes, stays bounded.
DEFAULT_MAX_BATCH_ROWS = 20_000
#: Longest a queued request waits for the others of its cycle before the model is called.
DEFAULT_MAX_WAIT_S = 0.003
#: Batches of at least this many incidents are scored on a thread (see the module docstring).
DEFAULT_OFFLOAD_ROWS = 2_000

#: Scores validated incidents: one P(burglary) per row, in order.
Scorer = Callable[[IncidentColumns], np.ndarray]
_Item = tuple[IncidentColumns, "asyncio.Future[np.ndarray]"]


class MicroBatcher:
    """Queue requests and score each batch of them with one call of ``scorer``.

    With ``enabled=False`` every request is its own call (same queueing and threading rules),
    which is what the benchmark compares against.
    """

    def __init__(
        self,
        scorer: Scorer,
        *,
        enabled: bool = True,
        max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        offload_rows: int = DEFAULT_OFFLOAD_ROWS,
        on_call: Callable[[int], None] | None = None,
    ):
        self._scorer = scorer
        self.enabled = enabled
        self.max_batch_rows = max_batch_rows
        self.max_wait_s = max_wait_s
        self.offload_rows = offload_rows
        self._on_call = on_call or (lambda rows: None)
        self._pending: deque[_Item] = deque()
        #: Requests the last cycle saw: how many to gather before calling the model.
        self._expected = 1
        self._timer: asyncio.TimerHandle | None = None
        self._flush_soon = False
        #: ``loop.time()`` when the running model call started, or None when idle.
        self._call_started: float | None = None

    def busy_seconds(self) -> float:
        """How long the current model call has been running (0 when none is)."""
        if self._call_started is None:
            return 0.0
        return asyncio.get_running_loop().time() - self._call_started

    async def score(self, incidents: IncidentColumns) -> np.ndarray:
        """P(burglary) for ``incidents``; raises what the scorer raised for this request."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append((incidents, future))
        self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._flush_soon or self._call_started is not None:
            return  # a flush is due, or the running call reschedules when it ends
        if (
            not self.enabled
            or len(self._pending) >= self._expected
            or self._queued_rows() >= self.max_batch_rows
        ):
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._flush_soon = True
            loop.call_soon(self._flush)
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._flush)

    def _queued_rows(self) -> int:
        return sum(incidents.rows for incidents, _ in self._pending)

    def _take_batch(self) -> list[_Item]:
        batch: list[_Item] = []
        rows = 0
        while self._pending:
            incidents, future = self._pending[0]
            if batch and (not self.enabled or rows + incidents.rows > self.max_batch_rows):
                break
            self._pending.popleft()
            if not future.cancelled():
                batch.append((incidents, future))
                rows += incidents.rows
        return batch

    def _flush(self) -> None:
        self._flush_soon = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._call_started is not None:
            return
        batch = self._take_batch()
        if not batch:
            return
        loop = asyncio.get_running_loop()
        self._call_started = loop.time()
        if sum(incidents.rows for incidents, _ in batch) < self.offload_rows:
            self._deliver(batch, self._score_batch(batch))
            self._finish(loop, len(batch))
        else:
            loop.create_task(self._score_offloaded(loop, batch))

    async def _score_offloaded(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        outcome = await asyncio.to_thread(self._score_batch, batch)
        self._deliver(batch, outcome)
        self._finish(loop, len(batch))

    def _finish(self, loop: asyncio.AbstractEventLoop, scored: int) -> None:
        self._call_started = None
        # Requests that queued while the model ran belong to this cycle too.
        self._expected = max(1, scored + len(self._pending))
        if self._pending:
            self._schedule(loop)

    def _score_batch(self, batch: list[_Item]) -> list[np.ndarray | BaseException]:
        """One model call for the whole batch: each request's rows, or its exception."""
        try:
            merged = IncidentColumns.concat([incidents for incidents, _ in batch])
            self._on_call(merged.rows)
            probabilities = self._scorer(merged)
        except Exception as exc:
            if len(batch) == 1:
                logger.exception("model call failed")
                return [exc]
            # One request's data broke the shared call: score them one by one, so only that
            # request fails and the others still get their answers.
            logger.warning("batched model call of %d requests failed; retrying singly", len(batch))
            return [self._score_batch([item])[0] for item in batch]
        results: list[np.ndarray | BaseException] = []
        start = 0
        for incidents, _ in batch:
            results.append(probabilities[start : start + incidents.rows])
            start += incidents.rows
        return results

    @staticmethod
    def _deliver(batch: list[_Item], outcome: list[np.ndarray | BaseException]) -> None:
        for (_, future), result in zip(batch, outcome, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
