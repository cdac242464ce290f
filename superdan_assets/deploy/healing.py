"""Bring a crashed local endpoint back: one call, for the CLI and for a Dagster sensor.

The local endpoint's processes outlive the run that started them, so nothing watches them: a
model server killed by the out-of-memory killer, or a proxy that died with a reboot, stays
dead until someone notices. :func:`ensure_endpoint` is that someone, run every minute by the
endpoint health sensor (``superdan_assets.endpoint_sensor``) or by hand as ``superdan endpoint
ensure``. It is cheap when all is well (a state-file read, two process checks, one ``/ping``
through the stable URL) and takes the roll lock only to restart something, briefly: a roll in
progress leaves a serving endpoint itself, so waiting for it would only delay the next check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from superdan_assets.deploy.local import EndpointStatus, LocalEndpoint
from superdan_assets.deploy.result import DeploymentError
from superdan_assets.deploy.state import DeploymentInProgress

#: How long a heal waits for a roll in progress before leaving the endpoint to it.
DEFAULT_HEAL_LOCK_TIMEOUT_S = 5.0

NOT_DEPLOYED = "not_deployed"
HEALTHY = "healthy"
RESTARTED = "restarted"
BUSY = "busy"
FAILED = "failed"


@dataclass(frozen=True)
class HealOutcome:
    """What :func:`ensure_endpoint` found and did.

    ``action`` is one of ``not_deployed``, ``healthy``, ``restarted`` (``restarted`` names the
    processes that were dead), ``busy`` (a roll holds the lock) or ``failed`` (``message`` says
    why; the endpoint is down).
    """

    action: str
    message: str
    restarted: tuple[str, ...] = ()
    status: EndpointStatus | None = field(default=None, compare=False)

    @property
    def serving(self) -> bool:
        """Whether a model answers at the stable URL now (or nothing was meant to)."""
        return self.action in (NOT_DEPLOYED, HEALTHY, RESTARTED, BUSY)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["restarted"] = list(self.restarted)
        out["status"] = self.status.to_dict() if self.status else None
        return out


def ensure_endpoint(
    endpoint: LocalEndpoint, *, lock_timeout_s: float = DEFAULT_HEAL_LOCK_TIMEOUT_S
) -> HealOutcome:
    """Restart whatever of the endpoint's proxy and model server has died; say what was done."""
    status = endpoint.status()
    if not status.deployed or status.model_version is None:
        return HealOutcome(NOT_DEPLOYED, f"no model has been deployed from {endpoint.state_dir}")
    if status.healthy and status.proxy_alive and status.server_alive:
        return HealOutcome(
            HEALTHY, f"model {status.model_version} serves at {status.url}", status=status
        )
    dead = tuple(
        name
        for name, alive in (("proxy", status.proxy_alive), ("server", status.server_alive))
        if not alive
    )
    try:
        healed = endpoint.ensure_running(lock_timeout_s=lock_timeout_s)
    except DeploymentInProgress:
        return HealOutcome(
            BUSY, "a roll is in progress; it leaves a serving endpoint itself", status=status
        )
    except DeploymentError as exc:
        return HealOutcome(
            FAILED,
            f"endpoint at {status.url} is down and could not be restarted: {exc}",
            status=endpoint.status(),
        )
    if not healed.healthy:
        return HealOutcome(
            FAILED,
            f"restarted {', '.join(dead) or 'nothing'} but {healed.url}/ping still fails",
            dead,
            healed,
        )
    return HealOutcome(
        RESTARTED,
        f"restarted the dead {' and '.join(dead) or 'unresponsive endpoint'}: model "
        f"{healed.model_version} serves at {healed.url} again",
        dead,
        healed,
    )
