"""Deployment backends the ``model_endpoint`` asset calls. No Dagster import.

Modules, one job each:

- ``result``: :class:`DeploymentResult` and the errors every backend shares;
- ``local``: :class:`~superdan_assets.deploy.local.LocalEndpoint`, ``superdan serve`` on
  127.0.0.1 behind a stable URL, rolled with zero downtime;
- ``sagemaker``: :class:`~superdan_assets.deploy.sagemaker.SageMakerEndpoint`, the same
  artifact on a SageMaker real-time endpoint, rolled back on failure;
- ``proxy`` / ``proxy_control`` / ``http1``: the local endpoint's always-on reverse proxy and
  its control client;
- ``processes`` / ``state``: detached processes and the state file a later run finds them by;
- ``packaging``: verified private copies and ``model.tar.gz`` of an artifact;
- ``smoke``: the check a new model must pass before it gets traffic.

Backends are imported from their modules (``superdan_assets.deploy.local`` does not load boto3,
and the proxy process loads neither).
"""

from superdan_assets.deploy.result import DeploymentError, DeploymentResult, RollbackError

__all__ = ["DeploymentError", "DeploymentResult", "RollbackError"]
