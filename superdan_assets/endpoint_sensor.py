"""The sensor that keeps the local endpoint up: every minute, restart what of it has died.

A thin Dagster wrapper around :func:`superdan_assets.deploy.healing.ensure_endpoint`; the
decisions live there (and in ``superdan endpoint ensure``, which runs the same function). It
never launches a run: each tick says what it found in its skip reason, which is what the UI
shows under the sensor's ticks. A restart is logged as a warning; an endpoint that cannot be
brought back fails the tick (red in the UI, with the reason) and is tried again next tick.
Running by default, because a crashed endpoint should not wait for someone to switch this on.
A SageMaker endpoint is left alone: SageMaker replaces its own unhealthy instances.
"""

from __future__ import annotations

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from superdan_assets.deploy.healing import RESTARTED, ensure_endpoint
from superdan_assets.resources.endpoint import EndpointResource

DEFAULT_INTERVAL_S = 60


class EndpointDownError(RuntimeError):
    """The local endpoint is down and could not be restarted (fails the sensor tick)."""


def build_endpoint_health_sensor(
    endpoint: EndpointResource,
    city: str,
    spec_port: int | None = None,
    *,
    name: str | None = None,
    minimum_interval_seconds: int = DEFAULT_INTERVAL_S,
) -> SensorDefinition:
    """A sensor that heals ``city``'s local endpoint (``endpoint.build(city, spec_port)``).

    Given the configured resource itself, the same object the deployment asset gets, rather
    than a resource key: there is one endpoint per city, so one sensor per city
    (``<city>__endpoint_health``), and nothing to keep in step between a key and a name.
    """
    name = name or f"{city}__endpoint_health"

    @sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Restarts the dead processes of {city}'s local endpoint "
        f"(state in {getattr(endpoint, 'state_dir', '?')}/{city}); a SageMaker endpoint heals "
        "itself.",
    )
    def _endpoint_health(context: SensorEvaluationContext) -> SkipReason:
        if endpoint.backend != "local":
            return SkipReason(f"a {endpoint.backend} endpoint heals itself")
        outcome = ensure_endpoint(endpoint.build(city, spec_port))
        if not outcome.serving:
            context.log.error(outcome.message)
            raise EndpointDownError(outcome.message)
        if outcome.action == RESTARTED:
            context.log.warning(outcome.message)
        return SkipReason(outcome.message)

    return _endpoint_health
