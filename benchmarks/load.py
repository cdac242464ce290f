"""Zero-downtime evidence: steady mixed load on a LocalEndpoint while the model is rolled.

Usage: python benchmarks/load.py [--duration 60] [--rate 50] [--batch-share 0.2]
                                 [--batch-size 100] [--load-processes 2] [--roll-at 0.5]
                                 [--server-workers 1] [--export-path ../shared/data/chicago]

What it does:

1. Trains two models with ``ml.training.train_and_evaluate`` on the real Chicago export: v1 on
   Jan-Feb 2018, v2 on Jan-Mar 2018. The requests are April 2018 incidents, which neither model
   saw. Without the export it stops with an error naming the missing file (no generated data:
   figures from a stand-in would not be comparable).
2. Deploys v1 with ``LocalEndpoint`` (proxy + ``superdan serve``) on 127.0.0.1.
3. Separate load processes send an open-loop schedule at ``--rate`` requests/s in total:
   ``1 - batch_share`` of them one incident, the rest ``--batch-size`` incidents, over
   keep-alive connections. Requests are sent at their scheduled time whatever happened to
   earlier ones (no coordinated omission); ``lag`` is how late a request left.
4. At ``--roll-at`` of the duration the endpoint is rolled to v2 (``LocalEndpoint.deploy``).
5. Every answer is checked: HTTP 200, JSON, one prediction per incident, a known version.
   Anything else, or a broken connection, is a failure.

Loopback only, bounded in time. Prints a summary, then one JSON object as its last line;
exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import queue
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EXPORT = REPO.parent / "shared" / "data" / "chicago"
HTTP_TIMEOUT_S = 30.0


# -- models and request bodies ---------------------------------------------------------------
def load_incidents(export_path: Path):
    """Canonical incidents Jan-Apr 2018 from the real export, and a description."""
    import pandas as pd

    from superdan_assets.sources.export import ExportSource

    require_export(export_path)
    frame = ExportSource(export_path).fetch(pd.Timestamp("2018-01-01"), pd.Timestamp("2018-05-01"))
    return frame, "chicago export 2018-01..04"


def require_export(export_path: Path) -> None:
    """Stop with a message naming the missing file: the figures are only valid on real data."""
    needed = export_path / "crimes_2018.csv.gz"
    if not needed.is_file():
        sys.exit(
            f"load.py needs the real Chicago export: {needed} not found; "
            "pass --export-path FOLDER (the folder holding crimes_2018.csv.gz)"
        )


def train_model(incidents, model_dir: Path, label: str) -> str:
    """Train on ``incidents`` through the project's ML code, save as version ``label``."""
    from superdan_assets.ml.artifact import save_model
    from superdan_assets.ml.training import split_holdout, train_and_evaluate

    train_raw, test_raw = split_holdout(incidents, 14)
    result = train_and_evaluate(train_raw, test_raw)
    save_model(result.pipeline, {**result.manifest, "version": label}, model_dir)
    return "ml.training.train_and_evaluate"


def request_bodies(incidents, batch_size: int) -> tuple[list[bytes], list[tuple[bytes, int]]]:
    """JSON bodies from real rows: 200 with one incident, 20 (body, rows) with ``batch_size``."""
    from superdan_assets.ml.labels import MODEL_INPUT_COLUMNS

    sample = incidents[list(MODEL_INPUT_COLUMNS)].tail(max(2000, batch_size * 20)).copy()
    sample["date"] = sample["date"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    records = json.loads(sample.to_json(orient="records"))
    records = [{k: v for k, v in record.items() if v is not None} for record in records]
    singles = [json.dumps({"instances": [r]}).encode() for r in records[:200]]
    chunks = [records[i * batch_size : (i + 1) * batch_size] for i in range(20)]
    batches = [(json.dumps({"instances": chunk}).encode(), len(chunk)) for chunk in chunks if chunk]
    return singles, batches


# -- load (runs in separate processes) -------------------------------------------------------
def load_process(
    index: int,
    port: int,
    start_at: float,
    duration: float,
    rate: float,
    batch_share: float,
    bodies: tuple[list[bytes], list[tuple[bytes, int]]],
    connections: int,
    results: multiprocessing.Queue,
) -> None:
    """Send this process's share of the open-loop schedule; put one list of records on ``results``.

    A record is ``[scheduled_s, kind, latency_ms, lag_ms, version, error]`` with times
    relative to ``start_at`` (``time.monotonic`` is system-wide, so all processes agree).
    """
    singles, batches = bodies
    rng = random.Random(index)
    jobs: queue.Queue = queue.Queue()
    records: list[list] = []
    lock = threading.Lock()

    def sender() -> None:
        connection = None
        while (job := jobs.get()) is not None:
            scheduled, kind, body, rows = job
            sent = time.monotonic()
            version = error = None
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        "127.0.0.1", port, timeout=HTTP_TIMEOUT_S
                    )
                connection.request(
                    "POST", "/invocations", body=body, headers={"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                raw = response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status} {raw[:120]!r}")
                payload = json.loads(raw)
                if len(payload["predictions"]) != rows:
                    raise RuntimeError(f"{len(payload['predictions'])} predictions for {rows} rows")
                version = payload["model_version"]
            except Exception as exc:  # every failure is a data point
                error = f"{type(exc).__name__}: {exc}"
                if connection is not None:
                    connection.close()
                connection = None
            done = time.monotonic()
            with lock:
                records.append(
                    [
                        round(scheduled - start_at, 4),
                        kind,
                        round((done - sent) * 1000, 3),
                        round((sent - scheduled) * 1000, 3),
                        version,
                        error,
                    ]
                )
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    interval = 1.0 / rate
    scheduled = start_at + rng.random() * interval
    while scheduled < start_at + duration:
        delay = scheduled - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if rng.random() < batch_share:
            body, rows = batches[rng.randrange(len(batches))]
            jobs.put((scheduled, "batch", body, rows))
        else:
            jobs.put((scheduled, "single", singles[rng.randrange(len(singles))], 1))
        scheduled += interval
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join(timeout=HTTP_TIMEOUT_S + 5)
    results.put(records)


def proxy_overhead(proxy_port: int, server_port: int, bodies: list[bytes], pairs: int) -> dict:
    """Median latency of the same single-incident requests sent direct and through the proxy.

    Sequential and interleaved (direct, proxied, direct, ...) on keep-alive connections, so
    machine noise hits both sides alike; the difference is what the stable URL costs.
    """
    direct = http.client.HTTPConnection("127.0.0.1", server_port, timeout=HTTP_TIMEOUT_S)
    proxied = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=HTTP_TIMEOUT_S)
    timings: dict[str, list[float]] = {"direct": [], "proxy": []}
    for i in range(pairs):
        for name, connection in (("direct", direct), ("proxy", proxied)):
            started = time.perf_counter()
            connection.request(
                "POST",
                "/invocations",
                body=bodies[i % len(bodies)],
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"overhead probe answered HTTP {response.status}")
            timings[name].append((time.perf_counter() - started) * 1000)
    direct.close()
    proxied.close()
    direct_p50 = percentiles(timings["direct"])["p50_ms"]
    proxy_p50 = percentiles(timings["proxy"])["p50_ms"]
    return {
        "pairs": pairs,
        "direct_p50_ms": direct_p50,
        "proxy_p50_ms": proxy_p50,
        "added_p50_ms": round(proxy_p50 - direct_p50, 2),
    }


# -- report ----------------------------------------------------------------------------------
def percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def pick(q: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else None

    return {"p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99), "max_ms": pick(1.0)}


def summarise(
    records: list[list], roll: tuple[float, float], args, versions: tuple[str, str]
) -> dict:
    roll_start, roll_end = roll
    ok = [r for r in records if r[5] is None]
    failures = [r for r in records if r[5] is not None]
    during = [r for r in records if roll_start <= r[0] <= roll_end]
    old, new = versions
    return {
        "duration_s": args.duration,
        "target_rate_rps": args.rate,
        "achieved_rate_rps": round(len(records) / args.duration, 2),
        "requests": len(records),
        "failures": len(failures),
        "failure_examples": sorted({r[5] for r in failures})[:5],
        "single": {
            "requests": sum(r[1] == "single" for r in records),
            **percentiles([r[2] for r in ok if r[1] == "single"]),
        },
        "batch": {
            "requests": sum(r[1] == "batch" for r in records),
            "rows": args.batch_size,
            **percentiles([r[2] for r in ok if r[1] == "batch"]),
        },
        "all": percentiles([r[2] for r in ok]),
        "max_send_lag_ms": round(max((r[3] for r in records), default=0.0), 2),
        "roll": {
            "started_s": round(roll_start, 2),
            "took_s": round(roll_end - roll_start, 2),
            "requests_during": len(during),
            "failures_during": sum(r[5] is not None for r in during),
            **percentiles([r[2] for r in during if r[5] is None]),
        },
        "versions": {
            old: sum(r[4] == old for r in records),
            new: sum(r[4] == new for r in records),
            # An old-version answer to a request scheduled after the roll returned = stale routing.
            f"{old}_after_roll": sum(r[4] == old and r[0] > roll_end for r in records),
        },
    }


# -- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second, in total")
    parser.add_argument("--batch-share", type=float, default=0.2, help="share of batch requests")
    parser.add_argument("--batch-size", type=int, default=100, help="incidents per batch request")
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument(
        "--connections", type=int, default=8, help="keep-alive connections per process"
    )
    parser.add_argument(
        "--roll-at", type=float, default=0.5, help="when to roll, as a share of the duration"
    )
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument(
        "--overhead-pairs",
        type=int,
        default=50,
        help="direct/proxied request pairs before the load",
    )
    parser.add_argument("--export-path", type=Path, default=DEFAULT_EXPORT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from superdan_assets.serving.threads import training_thread_policy

    training_thread_policy()
    import pandas as pd

    from superdan_assets.deploy.local import LocalEndpoint

    with tempfile.TemporaryDirectory(prefix="superdan-load-") as scratch:
        scratch = Path(scratch)
        started = time.monotonic()
        incidents, data = load_incidents(args.export_path)
        april = pd.Timestamp("2018-04-01")
        versions = ("load-v1", "load-v2")
        trained = train_model(
            incidents[incidents["date"] < pd.Timestamp("2018-03-01")], scratch / "v1", versions[0]
        )
        train_model(incidents[incidents["date"] < april], scratch / "v2", versions[1])
        bodies = request_bodies(incidents[incidents["date"] >= april], args.batch_size)
        print(
            f"trained {versions} with {trained} on {data} in {time.monotonic() - started:.1f} s",
            flush=True,
        )

        endpoint = LocalEndpoint(scratch / "endpoint", workers=args.server_workers)
        try:
            first = endpoint.deploy(scratch / "v1")
            print(f"deployed {first.model_version} at {first.url}", flush=True)
            port = int(first.url.rsplit(":", 1)[1])
            overhead = proxy_overhead(
                port, first.details["server_port"], bodies[0], args.overhead_pairs
            )
            print(f"proxy overhead (sequential, p50): {overhead}", flush=True)
            context = multiprocessing.get_context("spawn")
            results = context.Queue()
            start_at = time.monotonic() + 2.0  # time for the load processes to start
            share = args.rate / args.load_processes
            workers = [
                context.Process(
                    target=load_process,
                    args=(
                        i,
                        port,
                        start_at,
                        args.duration,
                        share,
                        args.batch_share,
                        bodies,
                        args.connections,
                        results,
                    ),
                    daemon=True,
                )
                for i in range(args.load_processes)
            ]
            for worker in workers:
                worker.start()
            time.sleep(max(0.0, start_at + args.duration * args.roll_at - time.monotonic()))
            roll_start = time.monotonic() - start_at
            second = endpoint.deploy(scratch / "v2")
            roll_end = time.monotonic() - start_at
            print(f"rolled to {second.model_version} in {roll_end - roll_start:.2f} s", flush=True)
            records: list[list] = []
            for _ in workers:
                records.extend(results.get(timeout=args.duration + HTTP_TIMEOUT_S + 60))
            for worker in workers:
                worker.join(timeout=10)
        finally:
            endpoint.stop()

    summary = {
        "benchmark": "load_during_roll",
        "model": trained,
        "data": data,
        "load_processes": args.load_processes,
        "server_workers": args.server_workers,
        "proxy_overhead": overhead,
        **summarise(records, (roll_start, roll_end), args, versions),
    }
    print(
        f"{summary['requests']} requests, {summary['failures']} failures; "
        f"single p50/p95/p99 {summary['single']['p50_ms']}/{summary['single']['p95_ms']}/"
        f"{summary['single']['p99_ms']} ms; batch p50/p95/p99 {summary['batch']['p50_ms']}/"
        f"{summary['batch']['p95_ms']}/{summary['batch']['p99_ms']} ms; "
        f"{summary['roll']['requests_during']} requests during the {summary['roll']['took_s']} s roll"
    )
    print(json.dumps(summary))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
