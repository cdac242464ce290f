"""``superdan serve``: a pre-fork master that verifies the model, then runs the worker processes.

Why its own small master rather than gunicorn or uvicorn's ``--workers``:

- the model is verified (sha256) and unpickled *once, in the master, before anything listens*:
  a tampered or broken artifact stops the server at start with a clear error and a non-zero
  exit, and workers forked afterwards share the loaded model copy-on-write and start at once;
- a worker whose event loop is stuck longer than ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` is killed
  and replaced (gunicorn's ``--timeout`` semantics): workers beat a heartbeat from their event
  loop into shared memory, which a busy loop cannot fake;
- SIGTERM drains: the master closes the listening socket, each worker finishes its in-flight
  requests (uvicorn's graceful shutdown), and whatever is left after the grace period (30 s,
  SageMaker's) is killed.

gunicorn's bundled uvicorn worker is deprecated, and uvicorn's own supervisor spawns workers
(re-importing pandas, scikit-learn and LightGBM, and loading the model, in every one of them)
and exits 0 when a worker fails to start. Each worker here runs uvicorn (uvloop and httptools
when installed) on the inherited socket.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections import deque

import uvicorn

from superdan_assets.ml.artifact import LoadedModel, ModelIntegrityError, load_model
from superdan_assets.serving.app import AppSettings, InferenceApp
from superdan_assets.serving.incidents import columns_from_records, to_frame
from superdan_assets.serving.metrics import SharedMetrics
from superdan_assets.serving.settings import ServeSettings
from superdan_assets.serving.threads import single_threaded_estimators

logger = logging.getLogger("superdan.serve")

EXIT_OK = 0
EXIT_FAILED = 1
#: The model directory is missing, incomplete, tampered with or cannot be unpickled.
EXIT_BAD_MODEL = 2
#: A worker could not start (the same code uvicorn uses for a start-up failure).
EXIT_WORKER_BOOT = 3
#: More worker deaths than this per worker within a minute means a crash loop: give up.
_MAX_DEATHS_PER_WORKER_PER_MINUTE = 5
_POLL_S = 0.1


def configure_logging(level: int = logging.INFO) -> None:
    """One log format for master and workers, with the pid (a line says which process)."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s [pid %(process)d] %(name)s: %(message)s",
    )


def bind_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The listening socket, bound once in the master and shared by every worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def warm_up(model: LoadedModel) -> None:
    """Make the model single-threaded and score one incident, before any worker is forked.

    Scoring once in the master proves the artifact works on the frames the endpoint builds
    (a broken pipeline stops the server at start, not at the first request), and the lazy
    imports and caches it fills are inherited by every worker.
    """
    limited = single_threaded_estimators(model.pipeline)
    if limited:
        logger.info("set n_jobs=1 on %s (one thread per worker)", ", ".join(limited))
    sample = columns_from_records([{"date": "2018-01-01T12:00:00"}])
    probabilities = model.predict_proba(
        to_frame(sample, str(model.manifest.get("city") or "chicago"))
    )
    if len(probabilities) != 1:
        raise ValueError(f"model returned {len(probabilities)} probabilities for 1 incident")


def serve(settings: ServeSettings) -> int:
    """Run the endpoint until SIGTERM/SIGINT; return the process exit code.

    Call :func:`superdan_assets.serving.threads.pin_numeric_threads` before importing this
    module (``superdan serve`` does).
    """
    configure_logging()
    try:
        model = load_model(settings.model_dir)
    except ModelIntegrityError as exc:
        logger.error("refusing to serve: %s", exc)
        return EXIT_BAD_MODEL
    except Exception as exc:  # unpickling runs arbitrary code: anything can come out
        logger.error(
            "cannot load the model in %s: %s: %s", settings.model_dir, type(exc).__name__, exc
        )
        return EXIT_BAD_MODEL
    try:
        warm_up(model)
    except Exception as exc:
        logger.error(
            "the model in %s cannot score a canonical incident: %s: %s",
            settings.model_dir,
            type(exc).__name__,
            exc,
        )
        return EXIT_BAD_MODEL
    logger.info("model %s verified and loaded from %s", model.version, settings.model_dir)
    try:
        sock = bind_socket(settings.host, settings.port)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        return EXIT_FAILED
    return Master(settings, model, sock).run()


class Master:
    """Forks the workers, replaces dead or stuck ones, and drains them on SIGTERM."""

    def __init__(self, settings: ServeSettings, model: LoadedModel, sock: socket.socket):
        self.settings = settings
        self.model = model
        self.sock = sock
        self.metrics = SharedMetrics(settings.workers)
        self.children: dict[int, int] = {}  # pid -> worker index
        self.stopping = False
        self.exit_code = EXIT_OK
        self._deaths: deque[float] = deque()

    def run(self) -> int:
        # The model's objects never die: move them out of the collector's sight, so workers
        # neither pause to traverse them nor copy their pages by touching GC headers.
        gc.collect()
        gc.freeze()
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        for index in range(self.settings.workers):
            self._spawn(index)
        host, port = self.sock.getsockname()[:2]
        logger.info(
            "listening on http://%s:%d with %d worker(s) (micro-batching %s)",
            host,
            port,
            self.settings.workers,
            "on" if self.settings.micro_batching else "off",
        )
        while not self.stopping:
            self._reap()
            self._watchdog()
            time.sleep(_POLL_S)
        self._drain()
        return self.exit_code

    def _request_stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            logger.info("received %s: draining", signal.Signals(signum).name)
        self.stopping = True

    # -- workers ----------------------------------------------------------------------
    def _spawn(self, index: int) -> None:
        self.metrics.reset_heartbeat(index)
        pid = os.fork()
        if pid == 0:  # the worker
            code = EXIT_FAILED
            try:
                code = run_worker(index, self.settings, self.model, self.sock, self.metrics)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else EXIT_FAILED
            except BaseException:
                logger.exception("worker %d crashed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = index

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            index = self.children.pop(pid, None)
            if index is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == EXIT_WORKER_BOOT:
                logger.error("worker %d (pid %d) failed to start; stopping", index, pid)
                self.exit_code = EXIT_WORKER_BOOT
                self.stopping = True
                continue
            now = time.monotonic()
            self._deaths.append(now)
            while self._deaths and now - self._deaths[0] > 60:
                self._deaths.popleft()
            if len(self._deaths) > _MAX_DEATHS_PER_WORKER_PER_MINUTE * self.settings.workers:
                logger.error("workers keep dying (%d in a minute); stopping", len(self._deaths))
                self.exit_code = EXIT_FAILED
                self.stopping = True
                continue
            logger.warning("worker %d (pid %d) exited with %s; replacing it", index, pid, code)
            self._spawn(index)

    def _watchdog(self) -> None:
        for pid, index in list(self.children.items()):
            age = self.metrics.heartbeat_age(index)
            if age > self.settings.timeout_s:
                logger.error(
                    "worker %d (pid %d) unresponsive for %.0f s (SAGEMAKER_MODEL_SERVER_TIMEOUT"
                    "=%g); killing it",
                    index,
                    pid,
                    age,
                    self.settings.timeout_s,
                )
                _signal(pid, signal.SIGKILL)
                self.metrics.reset_heartbeat(index)

    def _drain(self) -> None:
        """Stop accepting, let workers finish in-flight requests, kill stragglers."""
        self.sock.close()
        for pid in self.children:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.graceful_timeout_s
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        for pid in list(self.children):
            logger.error("worker pid %d did not finish in time; killing it", pid)
            _signal(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.children.pop(pid, None)
        logger.info("stopped")


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def run_worker(
    index: int,
    settings: ServeSettings,
    model: LoadedModel,
    sock: socket.socket,
    metrics: SharedMetrics,
) -> int:
    """Serve on ``sock`` until told to stop; the exit code for the master."""
    failures: list[BaseException] = []
    worker_metrics = metrics.worker(index)

    def on_load_failure(exc: BaseException) -> None:
        failures.append(exc)
        server.should_exit = True

    app = InferenceApp(
        loader=lambda: model,
        settings=AppSettings(
            max_payload_bytes=settings.max_payload_bytes,
            micro_batching=settings.micro_batching,
            batch_wait_s=settings.batch_wait_s,
        ),
        metrics=metrics,
        worker_index=index,
        on_load_failure=on_load_failure,
    )

    master = os.getppid()

    async def heartbeat() -> None:
        # A large batch is scored on a thread while the loop stays free: a model call running
        # longer than the timeout must still stop the beat, or a hung call would never be seen.
        if app.busy_seconds() <= settings.timeout_s:
            worker_metrics.heartbeat()
        if os.getppid() != master:
            # The master died without draining us: stop rather than serve on unsupervised.
            logger.error("master process %d is gone; worker %d stopping", master, index)
            server.should_exit = True

    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=settings.access_log,
        server_header=False,
        # Longer than the 60 s idle timeout of load balancers in front, so they close first.
        timeout_keep_alive=75,
        timeout_graceful_shutdown=max(1, int(settings.graceful_timeout_s) - 2),
        callback_notify=heartbeat,
        timeout_notify=1.0,
    )
    server = uvicorn.Server(config)

    def stop(_signum: int, _frame: object) -> None:
        server.should_exit = True

    # Replace the master's handlers inherited through fork; uvicorn installs its own while
    # it serves and restores these afterwards.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker_metrics.heartbeat()
    server.run(sockets=[sock])
    if failures or not server.started:
        return EXIT_WORKER_BOOT
    return EXIT_OK
