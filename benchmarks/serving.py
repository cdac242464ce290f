"""Serving throughput and latency: the project's endpoint against the classic SageMaker server.

Usage: python benchmarks/serving.py [--duration 10] [--workers 2] [--export-path ../shared/data/chicago]
                                    [--compare-no-batching]

What it measures, in one run and on one machine:

1. A model is trained through the project's ML code on a slice of the real Chicago export
   (Jan-Apr 2018, last 28 days held out). Without the export it stops with an error naming
   the missing file (no generated data: figures from a stand-in would not be comparable).
2. The project's server (``superdan serve``) and a reference server built like SageMaker's
   scikit-learn bring-your-own-container example (a Flask app on sync gunicorn workers that
   runs ``pandas.read_csv`` on every request; nginx omitted) serve that same artifact with the
   same number of workers, each worker pinned to one OpenMP/BLAS thread.
3. A separate load process (asyncio, keep-alive connections, raw HTTP/1.1) posts one real
   incident per request as ``text/csv`` to each server: a warm-up, then a fixed duration at
   concurrency 1 and at concurrency 16. Every non-200 answer or broken connection counts as an
   error. Finally one request with 10,000 incidents measures a bulk call (``batch_10000_ms``,
   median of three).

Only 127.0.0.1 is loaded, and every phase is bounded in time. Prints one JSON object as its
last line.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_EXPORT = REPO.parent / "shared" / "data" / "chicago"
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "passive",
}


# -- the model ------------------------------------------------------------------------------
def load_incidents(export_path: Path):
    """Canonical incidents: a real slice of the export (Jan-Apr 2018), and a description."""
    import pandas as pd

    from superdan_assets.sources.export import ExportSource

    needed = export_path / "crimes_2018.csv.gz"
    if not needed.is_file():
        sys.exit(
            f"serving.py needs the real Chicago export: {needed} not found; "
            "pass --export-path FOLDER (the folder holding crimes_2018.csv.gz)"
        )
    source = ExportSource(export_path)
    return source.fetch(
        pd.Timestamp("2018-01-01"), pd.Timestamp("2018-05-01")
    ), "chicago 2018-01..04"


def train_model(model_dir: Path, incidents) -> str:
    """Train through the project's ML code and save the artifact; returns how it was trained."""
    from superdan_assets.ml.artifact import save_model
    from superdan_assets.ml.training import split_holdout, train_and_evaluate

    train_raw, test_raw = split_holdout(incidents, 28)
    result = train_and_evaluate(train_raw, test_raw, include_seed_protocol=False)
    save_model(result.pipeline, result.manifest, model_dir)
    return "ml.training.train_and_evaluate"


def request_bodies(incidents, count: int = 256) -> list[bytes]:
    """One CSV body (header + one incident) per real incident, to be sent round-robin."""
    from superdan_assets.ml.labels import MODEL_INPUT_COLUMNS

    sample = incidents.tail(count)[list(MODEL_INPUT_COLUMNS)].copy()
    sample["date"] = sample["date"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    bodies = []
    for i in range(len(sample)):
        out = io.StringIO()
        sample.iloc[[i]].to_csv(out, index=False, na_rep="")
        bodies.append(out.getvalue().encode())
    if not bodies:
        raise RuntimeError("no incidents to build requests from")
    return bodies


def bulk_body(incidents, rows: int = 10_000) -> bytes:
    """One JSON body with ``rows`` incidents (repeated when the data has fewer)."""
    from superdan_assets.ml.labels import MODEL_INPUT_COLUMNS

    sample = incidents[list(MODEL_INPUT_COLUMNS)].head(rows).copy()
    sample["date"] = sample["date"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    records = json.loads(sample.to_json(orient="records"))
    records = (records * (rows // max(len(records), 1) + 1))[:rows]
    return json.dumps({"instances": records}).encode()


# -- the reference server (SageMaker scikit-learn bring-your-own-container pattern) -----------
def create_baseline_app():
    """Flask app like the example's ``predictor.py``: lazy model, ``pd.read_csv`` per request.

    Adapted only where the model demands it: the CSV has a header row, and the frame is put
    into the canonical schema (``to_canonical``) the pipeline takes.
    """
    import flask
    import pandas as pd

    from superdan_assets.ml.artifact import load_model
    from superdan_assets.ml.schema import to_canonical

    app = flask.Flask("baseline")
    state: dict = {}

    def get_model():
        if "model" not in state:
            state["model"] = load_model(os.environ["BASELINE_MODEL_DIR"])
        return state["model"]

    @app.route("/ping", methods=["GET"])
    def ping():
        healthy = get_model() is not None
        return flask.Response(
            response="\n", status=200 if healthy else 404, mimetype="application/json"
        )

    @app.route("/invocations", methods=["POST"])
    def invocations():
        if flask.request.content_type != "text/csv":
            return flask.Response(
                response="This predictor only supports CSV data", status=415, mimetype="text/plain"
            )
        data = pd.read_csv(io.StringIO(flask.request.data.decode("utf-8")))
        model = get_model()
        probabilities = model.predict_proba(to_canonical(data, "chicago", required=("date",)))
        out = io.StringIO()
        pd.DataFrame({"results": probabilities}).to_csv(out, header=False, index=False)
        return flask.Response(response=out.getvalue(), status=200, mimetype="text/csv")

    return app


# -- load generation (runs in its own process) -----------------------------------------------
async def _connection(host, port, bodies, offset, deadline, latencies, errors):
    import itertools

    requests = [
        b"POST /invocations HTTP/1.1\r\nHost: %s\r\nContent-Type: text/csv\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (host.encode(), len(body), body)
        for body in bodies
    ]
    cycle = itertools.islice(itertools.cycle(requests), offset, None)
    reader = writer = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            started = time.perf_counter()
            writer.write(next(cycle))
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("server closed the connection")
            status = int(status_line.split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"status {status}")
            if close:
                writer.close()
                writer = None
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def _drive(host, port, bodies, concurrency, duration):
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(
        *(
            _connection(host, port, bodies, i * 7, deadline, latencies, errors)
            for i in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def load_main(argv: list[str]) -> None:
    """``serving.py _load HOST PORT CONCURRENCY DURATION BODIES_JSON``: print one summary."""
    host, port, concurrency, duration, bodies_file = argv
    import uvloop  # a base dependency: without it the client, not the server, is measured

    uvloop.install()
    bodies = [b.encode() for b in json.loads(Path(bodies_file).read_text())]
    latencies, errors, elapsed = asyncio.run(
        _drive(host, int(port), bodies, int(concurrency), float(duration))
    )
    ordered = sorted(latencies)

    def pct(q):
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None

    print(
        json.dumps(
            {
                "requests": len(latencies),
                "rps": len(latencies) / elapsed,
                "p50_ms": pct(0.50),
                "p99_ms": pct(0.99),
                "errors": len(errors),
                "error_examples": sorted(set(errors))[:5],
            }
        )
    )


def run_load(port: int, bodies_file: Path, concurrency: int, duration: float) -> dict:
    """Drive 127.0.0.1:``port`` from a separate process; the summary it printed."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "_load",
            "127.0.0.1",
            str(port),
            str(concurrency),
            str(duration),
            str(bodies_file),
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- servers ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} not ready after {timeout:.0f} s")


def start_server(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(
        command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
    )


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def measure(name, command, env, port, bodies_file, duration, log_dir, bulk=None) -> dict:
    """Start a server, warm it up, load it at concurrency 1 and 16, stop it."""
    process = start_server(command, env, log_dir / f"{name}.log")
    try:
        wait_ready(port, process)
        run_load(port, bodies_file, 16, min(2.0, duration))  # warm-up, not counted
        c1 = run_load(port, bodies_file, 1, duration)
        c16 = run_load(port, bodies_file, 16, duration)
        result = {"c1": c1, "c16": c16}
        if bulk is not None:
            result["bulk_ms"] = bulk_call_ms(port, bulk)
        return result
    finally:
        stop_server(process)


def bulk_call_ms(port: int, body: bytes, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as answer:
            answer.read()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_load":
        load_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load phase")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--export-path", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument(
        "--compare-no-batching",
        action="store_true",
        help="also measure the project's server with micro-batching off",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    os.environ.update(SINGLE_THREAD_ENV)
    work = Path(tempfile.mkdtemp(prefix="superdan-bench-serving-"))
    started = time.perf_counter()
    incidents, data_source = load_incidents(args.export_path)
    trained_with = train_model(work / "model", incidents)
    train_s = time.perf_counter() - started
    bodies_file = work / "bodies.json"
    bodies_file.write_text(json.dumps([b.decode() for b in request_bodies(incidents)]))
    bulk = bulk_body(incidents)

    env = {
        **os.environ,
        **SINGLE_THREAD_ENV,
        "PYTHONPATH": str(REPO),
        "BASELINE_MODEL_DIR": str(work / "model"),
    }
    serve = [
        sys.executable,
        "-m",
        "superdan_assets.cli",
        "serve",
        "--model-dir",
        str(work / "model"),
        "--workers",
        str(args.workers),
    ]
    port = free_port()
    ours = measure(
        "superdan",
        [*serve, "--port", str(port)],
        env,
        port,
        bodies_file,
        args.duration,
        work,
        bulk=bulk,
    )
    port = free_port()
    baseline = measure(
        "baseline",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(args.workers),
            "--worker-class",
            "sync",
            "--timeout",
            "60",
            "--bind",
            f"127.0.0.1:{port}",
            "--pythonpath",
            f"{BENCH_DIR},{REPO}",
            "serving:create_baseline_app()",
        ],
        env,
        port,
        bodies_file,
        args.duration,
        work,
    )
    extra = {}
    if args.compare_no_batching:
        port = free_port()
        nobatch = measure(
            "superdan-no-batching",
            [*serve, "--port", str(port), "--no-micro-batching"],
            env,
            port,
            bodies_file,
            args.duration,
            work,
        )
        extra = {
            "no_batching_rps_c1": nobatch["c1"]["rps"],
            "no_batching_rps_c16": nobatch["c16"]["rps"],
            "no_batching_p99_ms_c16": nobatch["c16"]["p99_ms"],
        }
    result = {
        "rps_c1": ours["c1"]["rps"],
        "p50_ms_c1": ours["c1"]["p50_ms"],
        "p99_ms_c1": ours["c1"]["p99_ms"],
        "rps_c16": ours["c16"]["rps"],
        "p50_ms_c16": ours["c16"]["p50_ms"],
        "p99_ms_c16": ours["c16"]["p99_ms"],
        "baseline_rps_c1": baseline["c1"]["rps"],
        "baseline_p99_ms_c1": baseline["c1"]["p99_ms"],
        "baseline_rps_c16": baseline["c16"]["rps"],
        "baseline_p99_ms_c16": baseline["c16"]["p99_ms"],
        "ratio_rps_c16": ours["c16"]["rps"] / baseline["c16"]["rps"],
        "errors": ours["c1"]["errors"] + ours["c16"]["errors"],
        "baseline_errors": baseline["c1"]["errors"] + baseline["c16"]["errors"],
        "error_examples": ours["c1"]["error_examples"] + ours["c16"]["error_examples"],
        "batch_10000_ms": ours["bulk_ms"],
        **extra,
        "workers": args.workers,
        "duration_s": args.duration,
        "data": data_source,
        "model": trained_with,
        "train_s": round(train_s, 1),
        "logs": str(work),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
