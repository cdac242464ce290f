"""The smoke test a new model server must pass before it receives traffic.

Why more than ``/ping``: ping only says a model loaded. A server can load a model and still
answer nonsense (a different version than the one deployed, probabilities outside [0, 1], a
prediction count that does not match the input, labels that disagree with the manifest's
decision threshold). One request with a few realistic incidents, checked against the manifest,
catches those before a single client sees them. Both backends use :func:`check_predictions`.
"""

from __future__ import annotations

import http.client
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from superdan_assets.deploy.result import DeploymentError

#: Incidents for a model whose manifest carries no ``example_incidents`` of its own (models
#: trained before manifests had them). They hold only fields every city has, so they fit any
#: city's model: a day-time and a night-time one with a location type, and one with only the
#: required ``date`` (the server must accept missing fields). Models trained now are smoke
#: tested on two real incidents of their own test period instead.
SMOKE_INCIDENTS: tuple[dict[str, Any], ...] = (
    {"date": "2018-03-04T13:00:00", "location_description": "RESIDENCE"},
    {"date": "2018-07-21T02:30:00", "location_description": "STREET"},
    {"date": "2018-11-30T18:45:00"},
)

BURGLARY = "BURGLARY"
THEFT = "THEFT"


class SmokeTestError(DeploymentError):
    """The new model answered, but not as its manifest says it must."""


def check_predictions(
    payload: Any, *, manifest: Mapping[str, Any], expected_count: int
) -> list[float]:
    """Validate an ``/invocations`` JSON response against the manifest; return the probabilities.

    Checks: the served ``model_version`` is the manifest's, one prediction per incident, each
    probability finite and in [0, 1], and each ``predicted_type`` the one the manifest's
    threshold implies.
    """
    if not isinstance(payload, dict):
        raise SmokeTestError(f"response is not a JSON object: {str(payload)[:200]!r}")
    version = str(manifest["version"])
    if str(payload.get("model_version")) != version:
        raise SmokeTestError(
            f"endpoint serves model_version {payload.get('model_version')!r}, expected {version!r}"
        )
    predictions = payload.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != expected_count:
        got = len(predictions) if isinstance(predictions, list) else type(predictions).__name__
        raise SmokeTestError(f"expected {expected_count} predictions, got {got}")
    threshold = float(manifest["threshold"])
    probabilities = []
    for row, prediction in enumerate(predictions):
        probability = (
            prediction.get("burglary_probability") if isinstance(prediction, dict) else None
        )
        if (
            not isinstance(probability, int | float)
            or isinstance(probability, bool)
            or not math.isfinite(probability)
            or not 0.0 <= probability <= 1.0
        ):
            raise SmokeTestError(
                f"row {row}: burglary_probability {probability!r} is not in [0, 1]"
            )
        expected_type = BURGLARY if probability >= threshold else THEFT
        if prediction.get("predicted_type") != expected_type:
            raise SmokeTestError(
                f"row {row}: predicted_type {prediction.get('predicted_type')!r} but probability "
                f"{probability:.4f} and threshold {threshold:.4f} imply {expected_type!r}"
            )
        probabilities.append(float(probability))
    return probabilities


def invocation_body(incidents: Sequence[Mapping[str, Any]]) -> bytes:
    return json.dumps({"instances": list(incidents)}).encode()


def smoke_test_http(
    host: str,
    port: int,
    *,
    manifest: Mapping[str, Any],
    incidents: Sequence[Mapping[str, Any]] = SMOKE_INCIDENTS,
    timeout_s: float = 30.0,
) -> float:
    """POST ``incidents`` to ``http://host:port/invocations``, check the answer; return ms taken."""
    body = invocation_body(incidents)
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    started = time.perf_counter()
    try:
        connection.request(
            "POST",
            "/invocations",
            body=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        response = connection.getresponse()
        raw = response.read()
    except OSError as exc:
        raise SmokeTestError(f"smoke request to {host}:{port} failed: {exc}") from exc
    finally:
        connection.close()
    latency_ms = (time.perf_counter() - started) * 1000.0
    if response.status != 200:
        raise SmokeTestError(
            f"smoke request answered HTTP {response.status}: {raw[:300].decode(errors='replace')}"
        )
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SmokeTestError(f"smoke response is not JSON: {raw[:200]!r}") from exc
    check_predictions(payload, manifest=manifest, expected_count=len(incidents))
    return latency_ms
