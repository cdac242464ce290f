"""model_endpoint: promote the gated crime_model and serve it (locally or on SageMaker).

Dagster runs this asset only when ``crime_model``'s blocking gates passed in the same run. It
also re-checks the gate record the training step wrote to the registry, so materializing
``model_endpoint`` on its own later can never deploy a version that failed a gate. The
registry's ``production`` pointer moves only after the endpoint answered its smoke test: a
failed deployment leaves the previous model both serving and registered as production.
"""

import json

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from superdan_assets.assets.city import City
from superdan_assets.assets.street_risk import endpoint_bundle
from superdan_assets.assets.training import GATES_FILE
from superdan_assets.resources.endpoint import EndpointResource
from superdan_assets.resources.storage import StorageResource
from superdan_assets.storage.blobstore import BlobNotFound


class GateNotPassedError(RuntimeError):
    """The candidate model failed (or never ran) a blocking quality gate."""


def latest_model_version(context: AssetExecutionContext, key: AssetKey) -> str:
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        raise GateNotPassedError("crime_model has never been materialized: train a model first")
    version = event.asset_materialization.metadata.get("model_version")
    if version is None:
        raise GateNotPassedError("the latest crime_model materialization records no model_version")
    return str(version.value)


def _example_incidents(artifact_dir) -> list[dict]:
    """Held-out incidents the model's manifest carries (older models have none)."""
    from pathlib import Path

    try:
        manifest = json.loads((Path(artifact_dir) / "model.json").read_text())
    except (OSError, ValueError):
        return []
    examples = manifest.get("example_incidents") or []
    return [e for e in examples if isinstance(e, dict) and e.get("date")]


def require_gates_passed(storage: StorageResource, city: str, version: str) -> dict:
    """The gate record of ``version``; raises unless every gate passed."""
    try:
        gates = json.loads(storage.blobs(city).read_bytes(f"models/{version}/{GATES_FILE}"))
    except BlobNotFound as exc:
        raise GateNotPassedError(
            f"model {version} has no gate record: it was not produced by crime_model"
        ) from exc
    failed = {name: g["summary"] for name, g in gates.items() if not g["passed"]}
    if failed:
        raise GateNotPassedError(f"refusing to deploy model {version}: failed gates {failed}")
    return gates


def build_model_endpoint(city: City):
    """The city's ``model_endpoint`` asset."""

    @asset(
        key=city.key("model_endpoint"),
        deps=[city.key("crime_model")],
        kinds={"docker", "sagemaker"},
        group_name=city.group,
        tags=city.tags,
        description=f"The endpoint serving {city.spec.title}'s promoted crime_model (SageMaker "
        "/ping + /invocations contract), rolled with zero downtime; the previous model keeps "
        "serving if this fails.",
    )
    def model_endpoint(
        context: AssetExecutionContext, storage: StorageResource, endpoint: EndpointResource
    ) -> MaterializeResult:
        version = latest_model_version(context, city.key("crime_model"))
        require_gates_passed(storage, city.name, version)
        registry = storage.registry(city.name)
        artifact_dir = registry.fetch(version)  # verified copy (sha256 checked)
        # The city's deployed street-risk model and its recent forecasts travel with the
        # classifier, so the endpoint answers /risk as well (the bundle keeps the
        # classifier's files unchanged: its sha256 still verifies).
        artifact_dir = endpoint_bundle(
            storage, city.name, artifact_dir, storage.scratch_dir("bundles") / city.name / version
        )
        context.log.info(f"deploying model {version} to the {endpoint.backend} endpoint")
        backend = endpoint.build(city.name, city.spec.serving.port)
        examples = _example_incidents(artifact_dir)
        if examples:
            # Smoke-test (and show how to call) the endpoint with the city's own incidents.
            backend.smoke_incidents = list(examples)
        result = backend.deploy(artifact_dir)
        promotion = registry.promote(version, reason=f"deployed by run {context.run_id}")
        context.log.info(f"model {version} serving at {result.url}; promoted to production")
        return MaterializeResult(
            metadata={
                "url": MetadataValue.url(result.url),
                "city": city.name,
                "backend": result.backend,
                "model_version": result.model_version,
                "previous_version": result.previous_version or "none",
                "smoke_latency_ms": round(float(result.smoke_latency_ms), 1),
                "how_to_call": MetadataValue.md(f"```bash\n{result.example}\n```"),
                "example": MetadataValue.text(result.example),
                "promoted_at": promotion["promoted_at"],
                **({"pid": result.pid} if result.pid else {}),
                **({"endpoint_name": result.endpoint_name} if result.endpoint_name else {}),
                **({"model_data_url": result.model_data_url} if result.model_data_url else {}),
            }
        )

    return model_endpoint
