"""Waiting on a condition with a deadline: the one way tests here wait for another process.

Never ``sleep(n)`` and hope: the condition is what the test needs, checked every ``interval_s``
until it holds; the deadline only bounds a failure, it is not a guess at how long things take.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout_s: float, what: str, interval_s: float = 0.02
) -> T:
    """Return ``condition()``'s first truthy value; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)
