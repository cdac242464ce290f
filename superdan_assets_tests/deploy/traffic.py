"""Background traffic against an endpoint that records every answer, for zero-downtime tests.

Two kinds of client run at once, because they fail differently during a switch: a keep-alive
client (its idle connection may be closed under it) and a client that opens a new connection
per request (it may land in a closing socket's accept backlog).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

INCIDENTS = [
    {
        "date": "2018-05-01T09:15:00",
        "block": "0000X W MADISON ST",
        "latitude": 41.88,
        "longitude": -87.63,
    },
    {"date": "2018-05-01T23:50:00", "location_description": "APARTMENT", "latitude": 41.75},
]
BODY = json.dumps({"instances": INCIDENTS}).encode()
HEADERS = {"Content-Type": "application/json"}


@dataclass
class Outcome:
    """One request: which client, when it finished, and either the served version or an error."""

    client: str
    finished: float
    version: str | None = None
    error: str | None = None


@dataclass
class Traffic:
    """Posts to ``url``/invocations from two threads until stopped."""

    url: str
    pause_s: float = 0.005
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Traffic:
        for name, keep_alive in (("keep-alive", True), ("new-connection", False)):
            thread = threading.Thread(target=self._run, args=(name, keep_alive), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def wait_for(self, count: int, timeout_s: float = 30.0) -> None:
        """Block until at least ``count`` requests have finished (so traffic spans an event)."""
        deadline = time.monotonic() + timeout_s
        start = len(self.outcomes)
        while len(self.outcomes) - start < count and time.monotonic() < deadline:
            time.sleep(0.01)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]

    def versions(self, client: str) -> list[str]:
        """Versions a client saw, in order, with consecutive repeats collapsed."""
        seen: list[str] = []
        for outcome in self.outcomes:
            if (
                outcome.client == client
                and outcome.version
                and (not seen or seen[-1] != outcome.version)
            ):
                seen.append(outcome.version)
        return seen

    def _run(self, name: str, keep_alive: bool) -> None:
        parsed = urlparse(self.url)
        connection = None
        while not self._stop.is_set():
            if connection is None or not keep_alive:
                connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            try:
                connection.request("POST", "/invocations", body=BODY, headers=HEADERS)
                response = connection.getresponse()
                raw = response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {raw[:200]!r}")
                payload = json.loads(raw)
                if len(payload["predictions"]) != len(INCIDENTS):
                    raise RuntimeError(f"wrong prediction count in {payload}")
                self.outcomes.append(
                    Outcome(name, time.monotonic(), version=payload["model_version"])
                )
            except Exception as exc:  # every failure is evidence: record it, keep going
                self.outcomes.append(
                    Outcome(name, time.monotonic(), error=f"{type(exc).__name__}: {exc}")
                )
                connection.close()
                connection = None
            if not keep_alive and connection is not None:
                connection.close()
            time.sleep(self.pause_s)
        if connection is not None:
            connection.close()
