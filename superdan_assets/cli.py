"""The ``superdan`` command: ``serve`` and ``train`` (the container entrypoints), ``pipeline``.

This module imports nothing heavy at the top: ``serve`` must pin the numeric libraries to one
thread before numpy loads, and neither ``serve`` nor ``train`` may import Dagster (the
container runs them without the orchestrator in a hot path). ``pipeline`` hands its arguments
to ``superdan_assets.runner``, which does use Dagster.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

#: Default listen address of ``serve``. The image sets it to 0.0.0.0, because SageMaker starts
#: the container as ``docker run IMAGE serve``, which replaces any arguments given in CMD.
HOST_ENV = "SUPERDAN_SERVE_HOST"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="superdan",
        description="Crime-type model platform: serve or train the model (SageMaker layout), "
        "or run the data pipeline.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the inference endpoint (SageMaker contract: /ping, /invocations)",
        description="Serve the model over HTTP. Port, workers, timeout and body limit default to "
        "SAGEMAKER_BIND_TO_PORT (8080), SAGEMAKER_MODEL_SERVER_WORKERS (CPU count), "
        "SAGEMAKER_MODEL_SERVER_TIMEOUT (60 s) and SAGEMAKER_MAX_PAYLOAD_IN_MB (5); "
        "SUPERDAN_BATCH_WAIT_MS (3) bounds how long a request waits to share a model call.",
    )
    serve.add_argument("--model-dir", default=None, help="artifact directory (/opt/ml/model)")
    serve.add_argument(
        "--host",
        default=os.environ.get(HOST_ENV) or "127.0.0.1",
        help=f"address to listen on ({HOST_ENV}, else 127.0.0.1; the image sets 0.0.0.0)",
    )
    serve.add_argument("--port", type=int, default=None, help="TCP port (8080)")
    serve.add_argument("--workers", type=int, default=None, help="worker processes (CPU count)")
    serve.add_argument(
        "--no-micro-batching",
        dest="micro_batching",
        action="store_false",
        help="score every request on its own instead of batching concurrent ones",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--city",
        default=None,
        help="refuse to serve a model trained for another city (its manifest's city)",
    )

    train = commands.add_parser(
        "train",
        help="train and evaluate a model (SageMaker training layout)",
        description="Train on the training channel's bulk export files, holding out the last "
        "holdout_days (28) for evaluation, and write the model artifact. Paths default to "
        "SM_CHANNEL_TRAINING, SM_MODEL_DIR, SM_OUTPUT_DIR, then the /opt/ml layout.",
    )
    train.add_argument(
        "--training-dir", default=None, help="input data (/opt/ml/input/data/training)"
    )
    train.add_argument("--model-dir", default=None, help="artifact output (/opt/ml/model)")
    train.add_argument(
        "--hyperparameters",
        default=None,
        help="hyper-parameters JSON (/opt/ml/input/config/hyperparameters.json)",
    )
    train.add_argument(
        "--output-dir", default=None, help="where the failure file goes (/opt/ml/output)"
    )
    train.add_argument(
        "--city",
        default=None,
        help="the city whose files the channel holds: a packaged name or a spec path "
        "(default: SUPERDAN_CITY, else chicago)",
    )

    city = commands.add_parser(
        "city",
        help="check a city spec against its source before any backfill",
        description="Read a sample of the city's feed through its spec and report columns "
        "found, dates parsed and their range, label values (with near misses), the share of "
        "rows with coordinates and rows per day. Exit 1 when something is wrong.",
    )
    city.add_argument("action", choices=("check",))
    city.add_argument("spec", help="a packaged city name or the path of a spec (.toml)")
    city.add_argument("--sample", type=int, default=5000, help="rows to read (default 5000)")
    city.add_argument("--json", action="store_true", help="print the report as JSON")

    alerts = commands.add_parser(
        "alerts",
        help="list alert deliveries, or requeue the dead ones once their cause is fixed",
        description="Alert deliveries live in the ledger under $SUPERDAN_ALERT_STATE_DIR (default "
        "$SUPERDAN_HOME/alerts). 'list' shows them (--status dead for the dead letters); "
        "'requeue' gives every dead delivery (or one sink's) a fresh set of attempts, sent by "
        "the delivery sensor's next tick.",
    )
    alerts.add_argument("action", choices=("list", "requeue"))
    alerts.add_argument("--state-dir", default=None, help="the ledger's folder")
    alerts.add_argument("--sink", default=None, help="requeue only this sink (e.g. webhook)")
    alerts.add_argument(
        "--status", default=None, choices=("pending", "delivered", "dead"), help="list only these"
    )

    endpoint = commands.add_parser(
        "endpoint",
        help="status, ensure or stop of the local endpoint the pipeline deployed",
        description="The local endpoint (model_endpoint's 'local' backend) keeps running after "
        "the pipeline ends; this shows it, restarts its dead processes with the model deployed "
        "last ('ensure': exit 0 when it serves again or nothing was deployed, 1 when it could "
        "not be brought back), or stops it. State lives in $SUPERDAN_HOME/endpoint.",
    )
    endpoint.add_argument("action", choices=("status", "ensure", "stop"))
    endpoint.add_argument("--state-dir", default=None, help="endpoint state folder")
    endpoint.add_argument(
        "--city", default=None, help="whose endpoint (default: SUPERDAN_CITY, else chicago)"
    )

    commands.add_parser(
        "pipeline",
        help="run the data pipeline (arguments are passed to superdan_assets.runner)",
        add_help=False,
    )
    return parser


def _serve(args: argparse.Namespace) -> int:
    # Before anything imports numpy: one thread per worker for OpenMP/BLAS.
    from superdan_assets.serving.threads import pin_numeric_threads

    pin_numeric_threads()
    from superdan_assets.serving.settings import SettingsError, resolve_settings

    try:
        settings = resolve_settings(
            model_dir=args.model_dir,
            host=args.host,
            port=args.port,
            workers=args.workers,
            micro_batching=args.micro_batching,
            access_log=args.access_log,
        )
    except SettingsError as exc:
        print(f"superdan serve: {exc}", file=sys.stderr)
        return 2
    if args.city:
        problem = _city_mismatch(settings.model_dir, args.city)
        if problem:
            print(f"superdan serve: {problem}", file=sys.stderr)
            return 2
    from superdan_assets.serving.supervisor import serve

    return serve(settings)


def _city_mismatch(model_dir, city: str) -> str | None:
    """Why the model in ``model_dir`` is not ``city``'s (None when it is). Reads only the
    manifest: the model file itself is loaded (and its sha256 verified) by the server."""
    import json
    from pathlib import Path

    manifest = Path(model_dir) / "model.json"
    try:
        trained_for = json.loads(manifest.read_text()).get("city")
    except (OSError, ValueError) as exc:
        return f"cannot read {manifest}: {exc}"
    if trained_for != city:
        return f"the model in {model_dir} was trained for city {trained_for!r}, not {city!r}"
    return None


#: What a broken spec or feed raises while checking (kept lazy: no pandas import at start-up).
SchemaErrorLike = (ValueError, OSError)


def _train(args: argparse.Namespace) -> int:
    from superdan_assets.serving.threads import training_thread_policy

    training_thread_policy()
    from superdan_assets.serving import training_job

    paths = training_job.TrainingPaths.resolve(
        training_dir=args.training_dir,
        model_dir=args.model_dir,
        hyperparameters_file=args.hyperparameters,
        output_dir=args.output_dir,
    )
    return training_job.main(paths, city=args.city)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``superdan`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "pipeline":
        return _with_platform("pipeline", lambda: _pipeline(argv[1:]))
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "endpoint":
        return _with_platform("endpoint", lambda: _endpoint(args))
    if args.command == "city":
        return _with_platform("city", lambda: _city(args))
    if args.command == "alerts":
        return _with_platform("alerts", lambda: _alerts(args))
    return _train(args)


#: Top-level modules of the ``platform`` extra: the container installs the base package only.
_PLATFORM_MODULES = frozenset(
    {
        "dagster",
        "great_expectations",
        "wandb",
        "boto3",
        "botocore",
        "requests",
        "scipy",
        "matplotlib",
        "folium",
        "psutil",
        "h11",
    }
)


def _with_platform(command: str, run) -> int:
    """Run a command that needs the ``platform`` extra; without it, say so instead of a trace."""
    try:
        return int(run() or 0)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _PLATFORM_MODULES:
            raise
        print(
            f"superdan {command}: needs the 'platform' extra (missing module {exc.name!r}); "
            "install it with: bash scripts/setup.sh   or   pip install '.[platform]'",
            file=sys.stderr,
        )
        return 2


def _pipeline(argv: list[str]) -> int:
    from superdan_assets import runner

    return int(runner.main(argv) or 0)


def _city(args: argparse.Namespace) -> int:
    import json

    from superdan_assets.cities import SpecError, resolve_spec
    from superdan_assets.cities.check import check_spec, sample_source_rows

    try:
        spec = resolve_spec(args.spec)
        report = check_spec(spec, sample_source_rows(spec, args.sample))
    except (SpecError, SchemaErrorLike) as exc:
        print(f"superdan city check: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), default=str) if args.json else report.text())
    return 0 if report.ok else 1


def _alerts(args: argparse.Namespace) -> int:
    import time

    from superdan_assets.alerts.ledger import DeliveryLedger, DeliveryStatus
    from superdan_assets.alerts.sinks import default_state_dir

    ledger = DeliveryLedger(args.state_dir or default_state_dir())
    if args.action == "requeue":
        requeued = ledger.requeue_dead(time.time(), sink=args.sink)
        for delivery in requeued:
            print(
                f"requeued {delivery.sink}: {delivery.alert.key} (last error: "
                f"{delivery.last_error})"
            )
        print(
            f"{len(requeued)} dead deliver{'y' if len(requeued) == 1 else 'ies'} requeued; "
            "the delivery sensor sends them on its next tick"
        )
        return 0
    status = DeliveryStatus(args.status) if args.status else None
    deliveries = ledger.deliveries(status=status)
    for d in deliveries:
        error = f"  last error: {d.last_error}" if d.last_error else ""
        print(f"{d.status.value:9s} {d.sink:8s} attempts={d.attempts} {d.alert.key}{error}")
    print(f"{len(deliveries)} deliveries in {ledger.path}")
    return 0


def _endpoint(args: argparse.Namespace) -> int:
    import json

    from superdan_assets.cities.catalog import default_city_name, resolve_spec
    from superdan_assets.deploy.local import LocalEndpoint
    from superdan_assets.settings import project_home

    city = resolve_spec(args.city or default_city_name()).name
    local = LocalEndpoint(args.state_dir or project_home() / "endpoint" / city)
    if args.action == "stop":
        local.stop()
        print("local endpoint stopped")
        return 0
    if args.action == "ensure":
        from superdan_assets.deploy.healing import ensure_endpoint

        outcome = ensure_endpoint(local)
        print(json.dumps(outcome.to_dict(), indent=2))
        return 0 if outcome.serving else 1
    status = local.status()
    print(json.dumps(status.to_dict(), indent=2))
    return 0 if status.healthy else 1


if __name__ == "__main__":
    sys.exit(main())
