"""Submit and follow backfills on a running cluster, as the UI does (its GraphQL API).

Why GraphQL rather than writing a backfill row into the instance: a backfill submitted here
goes through exactly the path a person's click takes (the webserver validates it against the
code server and stores it; the daemon's backfill loop turns it into runs, the queued run
coordinator releases them and the Celery launcher hands them to workers), so scripts,
benchmarks and tests exercise the production path. Only the standard library is used for
HTTP; reading results back goes through the Dagster instance (Postgres).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence

#: Dagster's terminal backfill statuses (FAILING and CANCELING still wait for their runs).
TERMINAL_BACKFILL_STATUSES = frozenset(
    {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
)


class ClusterError(RuntimeError):
    """The webserver refused a request or answered with an error (the message says which)."""


def graphql(ui_url: str, query: str, variables: dict | None = None, timeout: float = 60.0) -> dict:
    """POST one GraphQL query to ``{ui_url}/graphql`` and return its ``data``."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{ui_url.rstrip('/')}/graphql",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ClusterError(
            f"{ui_url}/graphql answered HTTP {exc.code}: {exc.read()[:500]!r}"
        ) from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the webserver at {ui_url}: {exc}") from None
    if payload.get("errors"):
        raise ClusterError(f"GraphQL errors from {ui_url}: {payload['errors']}")
    return payload["data"]


def asset_keys(ui_url: str) -> list[list[str]]:
    """Every asset key the cluster's code location defines, as path lists."""
    data = graphql(ui_url, "{ assetNodes { assetKey { path } } }")
    return [node["assetKey"]["path"] for node in data["assetNodes"]]


def find_asset_key(ui_url: str, name: str) -> list[str]:
    """The one asset key whose last path component is ``name`` (``raw_crimes`` finds
    ``["raw_crimes"]`` or ``["chicago", "raw_crimes"]``); an error when none or several match."""
    found = [key for key in asset_keys(ui_url) if key[-1] == name]
    if len(found) != 1:
        raise ClusterError(
            f"expected exactly one asset named {name!r} on {ui_url}, found {found or 'none'}"
        )
    return found[0]


_LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidSubsetError { message }
  }
}
"""


def launch_backfill(
    ui_url: str,
    assets: Iterable[Sequence[str]],
    partition_keys: Sequence[str],
    title: str | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Submit an asset backfill of ``partition_keys`` for ``assets``; return its id."""
    params = {
        "assetSelection": [{"path": list(key)} for key in assets],
        "partitionNames": list(partition_keys),
        "fromFailure": False,
        "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
    }
    if title:
        params["title"] = title
    result = graphql(ui_url, _LAUNCH, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise ClusterError(f"backfill refused by {ui_url}: {result}")
    return result["backfillId"]


def wait_for_backfill(instance, backfill_id: str, timeout: float, poll: float = 1.0):
    """Wait until the backfill reaches a terminal status; return the ``PartitionBackfill``.

    Raises ``TimeoutError`` naming the last status when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    status = None
    while True:
        backfill = instance.get_backfill(backfill_id)
        if backfill is None:
            raise ClusterError(f"backfill {backfill_id} is not in the instance")
        status = backfill.status.value
        if status in TERMINAL_BACKFILL_STATUSES:
            return backfill
        if time.monotonic() >= deadline:
            raise TimeoutError(f"backfill {backfill_id} still {status} after {timeout:g} s")
        time.sleep(poll)
