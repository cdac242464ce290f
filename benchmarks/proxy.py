"""What the local endpoint's proxy costs per request, with the model server taken out.

Usage: python benchmarks/proxy.py [--requests 3000] [--concurrency 16] [--seconds 5]

The upstream is a minimal asyncio HTTP/1.1 server answering every request with the same small
JSON (what ``/invocations`` returns for one incident), so what is measured is the proxy alone:
the real ``python -m superdan_assets.deploy.proxy`` process, the code on ``PYTHONPATH``.

1. sequential: ``--requests`` POSTs of a one-incident body over one keep-alive connection,
   direct to the upstream and through the proxy, interleaved; p50/p99 of each and the added
   p50/p99;
2. concurrent: ``--concurrency`` keep-alive clients (threads) for ``--seconds`` through the
   proxy; requests per second.

Loopback only. Prints a summary, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BODY = json.dumps({"instances": [{"date": "2018-04-02T13:00:00", "block": "012XX S STATE ST"}]})
ANSWER = b'{"model_version":"bench","predictions":[{"burglary_probability":0.1,"predicted_type":"THEFT"}]}'
TOKEN = "bench-token"


async def _upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(
        ANSWER
    )
    try:
        while True:
            raw = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in raw.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(head + ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def start_upstream() -> int:
    """The fixed-answer upstream on a thread of its own; its port."""
    ready: list[int] = []
    event = threading.Event()

    async def serve() -> None:
        server = await asyncio.start_server(_upstream, "127.0.0.1", 0)
        ready.append(server.sockets[0].getsockname()[1])
        event.set()
        await asyncio.Event().wait()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    event.wait(10)
    return ready[0]


def start_proxy(upstream_port: int, scratch: Path):
    from superdan_assets.deploy import processes
    from superdan_assets.deploy.proxy import TOKEN_ENV
    from superdan_assets.deploy.proxy_control import ProxyControl

    port = processes.free_port()
    ready = scratch / "proxy.ready"
    handle = processes.spawn(
        [
            sys.executable,
            "-m",
            "superdan_assets.deploy.proxy",
            "--port",
            str(port),
            "--ready-file",
            str(ready),
        ],
        log_path=scratch / "proxy.log",
        env={**os.environ, TOKEN_ENV: TOKEN},
    )
    deadline = time.monotonic() + 15
    while not ready.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"proxy did not start: {(scratch / 'proxy.log').read_text()}")
        time.sleep(0.02)
    control = ProxyControl(json.loads(ready.read_text())["control_port"], TOKEN)
    control.set_upstream("127.0.0.1", upstream_port, label="bench")
    return handle, port


def post(connection: http.client.HTTPConnection) -> float:
    started = time.perf_counter()
    connection.request(
        "POST", "/invocations", body=BODY, headers={"Content-Type": "application/json"}
    )
    response = connection.getresponse()
    if response.read() != ANSWER or response.status != 200:
        raise RuntimeError(f"unexpected answer HTTP {response.status}")
    return (time.perf_counter() - started) * 1000


def pct(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100)[q - 1], 3)


def concurrent_rps(port: int, clients: int, seconds: float) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            post(connection)
            counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return round(sum(counts) / seconds, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    from superdan_assets.deploy import processes

    upstream_port = start_upstream()
    with tempfile.TemporaryDirectory() as scratch:
        handle, port = start_proxy(upstream_port, Path(scratch))
        try:
            direct = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
            proxied = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _ in range(200):  # warm both paths
                post(direct), post(proxied)
            direct_ms, proxy_ms = [], []
            for _ in range(args.requests):
                direct_ms.append(post(direct))
                proxy_ms.append(post(proxied))
            rps = concurrent_rps(port, args.concurrency, args.seconds)
        finally:
            processes.terminate(handle, grace_s=5.0)
    result = {
        "benchmark": "proxy_overhead",
        "requests": args.requests,
        "direct_p50_ms": pct(direct_ms, 50),
        "proxy_p50_ms": pct(proxy_ms, 50),
        "added_p50_ms": round(pct(proxy_ms, 50) - pct(direct_ms, 50), 3),
        "direct_p99_ms": pct(direct_ms, 99),
        "proxy_p99_ms": pct(proxy_ms, 99),
        "concurrency": args.concurrency,
        "proxy_rps": rps,
        "cpus": os.cpu_count(),
    }
    print(f"proxy adds {result['added_p50_ms']} ms at p50; {rps} requests/s at c{args.concurrency}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
