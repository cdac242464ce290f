"""A local endpoint on 127.0.0.1 with a stable URL, rolled to a new model with zero downtime.

Two kinds of process run detached from the run that started them:

- the **proxy** (:mod:`superdan_assets.deploy.proxy`) owns the stable port for the endpoint's
  whole life; clients only ever connect to it;
- one **model server** (``superdan serve``) per model version, on a private ephemeral port.

A roll starts the new version beside the old one, waits for its ``/ping``, smoke-tests its
``/invocations`` against the manifest, switches the proxy, waits until the proxy has no request
left in flight to the old server, and only then SIGTERMs the old server, which drains. No
request is refused or reset at any point (the tests and ``benchmarks/load.py`` count them).
Anything that fails before the switch (a tampered artifact, a server that never answers
``/ping``, a failed smoke test) stops the new server and leaves the old one serving.

``state.json`` in the state directory lets a later run, in another process, find the endpoint,
roll it, notice that a process died and restart it, or stop it; ``roll.lock`` keeps two runs
from rolling at once. Each model is served from a verified copy under ``models/``, so changes
to the registry cannot alter a running model.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from superdan_assets.deploy import processes
from superdan_assets.deploy.packaging import stage_artifact, version_slug
from superdan_assets.deploy.processes import ProcessHandle
from superdan_assets.deploy.proxy import TOKEN_ENV
from superdan_assets.deploy.proxy_control import ProxyControl, ProxyControlError
from superdan_assets.deploy.result import DeploymentError, DeploymentResult
from superdan_assets.deploy.smoke import SMOKE_INCIDENTS, invocation_body, smoke_test_http
from superdan_assets.deploy.state import EndpointState, ProxyRecord, ServerRecord, StateStore
from superdan_assets.ml.artifact import ModelIntegrityError, verify_artifact
from superdan_assets.serving.settings import SettingsError, max_payload_bytes

#: Loading pandas, scikit-learn, LightGBM and the model takes seconds; more on a busy machine.
DEFAULT_PING_TIMEOUT_S = 120.0
#: How long the proxy may take to finish requests already sent to the old server.
DEFAULT_DRAIN_TIMEOUT_S = 30.0
#: The server drains for up to 30 s after SIGTERM (SageMaker's grace period); then it is killed.
DEFAULT_STOP_GRACE_S = 35.0
DEFAULT_LOCK_TIMEOUT_S = 600.0
_PROXY_READY_TIMEOUT_S = 15.0
_PORT_ATTEMPTS = 3
_HISTORY_LENGTH = 20
_LOG_TAIL_CHARS = 2000
#: In every model server's command line (forked workers keep their master's).
_SERVER_MARKER = "superdan_assets.cli serve"


@dataclass(frozen=True)
class EndpointStatus:
    """What runs now, as seen from the state file and one ``/ping`` through the stable URL."""

    deployed: bool
    url: str | None = None
    healthy: bool = False
    model_version: str | None = None
    previous_version: str | None = None
    model_dir: str | None = None
    proxy_pid: int | None = None
    proxy_alive: bool = False
    server_pid: int | None = None
    server_alive: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LocalEndpoint:
    """Deploy, roll, heal and stop a local ``superdan serve`` endpoint behind a stable URL.

    ``port`` is the stable public port; ``None`` picks a free one at the first deploy and keeps
    it. Construct one per Dagster run with the same ``state_dir``: all state is on disk.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        workers: int = 1,
        ping_timeout_s: float = DEFAULT_PING_TIMEOUT_S,
        drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S,
        stop_grace_s: float = DEFAULT_STOP_GRACE_S,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        smoke_incidents: Sequence[Mapping[str, Any]] = SMOKE_INCIDENTS,
        keep_versions: int = 3,
        server_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ):
        self.state_dir = Path(state_dir).expanduser().resolve()
        self.port = port
        self.host = host
        self.workers = workers
        self.ping_timeout_s = ping_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self.stop_grace_s = stop_grace_s
        self.lock_timeout_s = lock_timeout_s
        self.smoke_incidents = list(smoke_incidents)
        self.keep_versions = max(1, keep_versions)
        self.server_env = dict(server_env or {})
        self.python = python
        self._store = StateStore(self.state_dir)

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    # -- public API ------------------------------------------------------------------------

    def deploy(self, model_dir: str | os.PathLike) -> DeploymentResult:
        """Serve the artifact in ``model_dir`` at the stable URL, replacing what runs now.

        Raises :class:`DeploymentError` (with what still serves) if the artifact fails its
        sha256 check, the new server does not answer ``/ping`` in time, or the smoke test fails.
        """
        with self._store.lock(self.lock_timeout_s):
            state = self._load_or_create()
            try:
                staged, manifest = stage_artifact(model_dir, self.models_dir)
            except (ModelIntegrityError, OSError) as exc:
                raise DeploymentError(
                    f"refusing to deploy {str(model_dir)!r}: {exc}. {self._still_serving(state)}"
                ) from exc
            version = str(manifest["version"])
            control = self._ensure_proxy(state)
            old = state.server
            try:
                new, latency_ms = self._launch(staged, manifest, control)
            except DeploymentError as exc:
                raise DeploymentError(
                    f"model {version} was not deployed: {exc}. {self._still_serving(state)}"
                ) from exc
            previous_version = state.server.model_version if state.server else None
            state.previous_version = previous_version
            state.server = new
            state.history = [
                *state.history,
                {"version": version, "pid": new.pid, "port": new.port, "deployed_at": time.time()},
            ][-_HISTORY_LENGTH:]
            self._store.save(state)
            retired = self._retire(control, old) if old else {}
            self._prune_models(state)
        return DeploymentResult(
            backend="local",
            url=state.url,
            model_version=version,
            previous_version=previous_version,
            smoke_latency_ms=round(latency_ms, 2),
            example=self._curl_example(state.url),
            pid=new.pid,
            model_dir=str(staged),
            details={
                "state_dir": str(self.state_dir),
                "proxy_pid": state.proxy.pid if state.proxy else None,
                "server_port": new.port,
                "model_sha256": manifest["sha256"],
                **retired,
            },
        )

    def status(self) -> EndpointStatus:
        """The endpoint as it is now; never starts or stops anything."""
        state = self._store.load()
        if state is None:
            return EndpointStatus(deployed=False)
        proxy_alive = bool(state.proxy and processes.is_alive(state.proxy.handle))
        server_alive = bool(state.server and processes.is_alive(state.server.handle))
        return EndpointStatus(
            deployed=True,
            url=state.url,
            healthy=proxy_alive and _ping(state.host, state.port, timeout_s=2.0),
            model_version=state.server.model_version if state.server else None,
            previous_version=state.previous_version,
            model_dir=state.server.model_dir if state.server else None,
            proxy_pid=state.proxy.pid if state.proxy else None,
            proxy_alive=proxy_alive,
            server_pid=state.server.pid if state.server else None,
            server_alive=server_alive,
        )

    def ensure_running(self, *, lock_timeout_s: float | None = None) -> EndpointStatus:
        """Restart a dead proxy or model server with the model deployed last; return the status.

        ``lock_timeout_s`` (default: the endpoint's) bounds the wait for a roll in progress;
        past it :class:`DeploymentInProgress` is raised (see ``deploy.healing``).
        """
        timeout_s = self.lock_timeout_s if lock_timeout_s is None else lock_timeout_s
        with self._store.lock(timeout_s):
            state = self._store.load()
            if state is None or state.server is None:
                raise DeploymentError(f"nothing has been deployed from {self.state_dir}")
            control = self._ensure_proxy(state)
            if not processes.is_alive(state.server.handle):
                staged = Path(state.server.model_dir)
                try:
                    manifest = _verified_manifest(staged, state.server.model_sha256)
                except (ModelIntegrityError, OSError) as exc:
                    raise DeploymentError(
                        f"cannot restart model {state.server.model_version}: {exc}"
                    ) from exc
                try:
                    new, _ = self._launch(staged, manifest, control)
                except DeploymentError as exc:
                    raise DeploymentError(
                        f"restarting model {state.server.model_version} failed: {exc}"
                    ) from exc
                old, state.server = state.server, new
                self._store.save(state)
                self._retire(control, old)
        return self.status()

    def stop(self) -> None:
        """Stop the proxy (draining it) and the model server; forget the endpoint."""
        with self._store.lock(self.lock_timeout_s):
            state = self._store.load()
            if state is None:
                return
            if state.proxy:
                processes.terminate(state.proxy.handle, grace_s=self.drain_timeout_s + 5.0)
            if state.server:
                processes.terminate(state.server.handle, grace_s=self.stop_grace_s)
                processes.kill_orphans(state.server.handle, _SERVER_MARKER)
            shutil.rmtree(self.models_dir, ignore_errors=True)
            self._store.clear()

    # -- proxy -----------------------------------------------------------------------------

    def _load_or_create(self) -> EndpointState:
        state = self._store.load()
        if state is None:
            port = self.port or processes.free_port(self.host)
            state = EndpointState(host=self.host, port=port, token=secrets.token_urlsafe(32))
            self._store.save(state)
        elif self.port and self.port != state.port:
            raise DeploymentError(
                f"the endpoint in {self.state_dir} serves on port {state.port}, not {self.port}: "
                "stop() it first to move it (its URL would change)"
            )
        return state

    def _ensure_proxy(self, state: EndpointState) -> ProxyControl:
        """A working proxy for ``state``: the running one, or a new one on the same port."""
        if state.proxy and processes.is_alive(state.proxy.handle):
            control = ProxyControl(state.proxy.control_port, state.token)
            try:
                control.status(timeout_s=2.0)
                return control
            except ProxyControlError:
                processes.terminate(state.proxy.handle, grace_s=5.0)  # alive but not answering
        state.proxy = self._start_proxy(state)
        self._store.save(state)
        control = ProxyControl(state.proxy.control_port, state.token)
        if state.server and processes.is_alive(state.server.handle):
            control.set_upstream(self.host, state.server.port, label=state.server.model_version)
        return control

    def _start_proxy(self, state: EndpointState) -> ProxyRecord:
        if processes.port_in_use(state.host, state.port):
            raise DeploymentError(
                f"cannot start the endpoint proxy: port {state.port} on {state.host} is taken "
                "by another process"
            )
        ready = self.state_dir / "run" / "proxy.ready"
        ready.unlink(missing_ok=True)
        log = self.logs_dir / "proxy.log"
        handle = processes.spawn(
            [
                self.python,
                "-m",
                "superdan_assets.deploy.proxy",
                "--host",
                state.host,
                "--port",
                str(state.port),
                "--ready-file",
                str(ready),
                # So the proxy offers bodies the server will refuse instead of sending them.
                "--upstream-max-body-bytes",
                str(self._server_max_payload_bytes()),
            ],
            log_path=log,
            env={**os.environ, TOKEN_ENV: state.token},
        )
        deadline = time.monotonic() + _PROXY_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not processes.is_alive(handle):
                raise DeploymentError(f"the endpoint proxy exited at start: {_tail(log)}")
            try:
                info = json.loads(ready.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                info = None
            if info and info.get("pid") == handle.pid:
                return ProxyRecord(handle.pid, handle.start_time, int(info["control_port"]))
            time.sleep(0.05)
        processes.terminate(handle, grace_s=2.0)
        raise DeploymentError(
            f"the endpoint proxy did not start within {_PROXY_READY_TIMEOUT_S:.0f} s: {_tail(log)}"
        )

    def _server_max_payload_bytes(self) -> int:
        """The body limit the model servers get from their environment."""
        try:
            return max_payload_bytes({**os.environ, **self.server_env})
        except SettingsError as exc:
            raise DeploymentError(f"cannot start the endpoint: {exc}") from exc

    # -- model servers ---------------------------------------------------------------------

    def _start_server(self, model_dir: Path, manifest: Mapping[str, Any]) -> ServerRecord:
        """Start ``superdan serve`` on a free private port and wait for ``/ping`` to say 200."""
        version = str(manifest["version"])
        for attempt in range(_PORT_ATTEMPTS):
            port = processes.free_port(self.host)
            log = self.logs_dir / f"server-{version_slug(version)}-{int(time.time())}-{port}.log"
            handle = processes.spawn(
                [
                    self.python,
                    "-m",
                    "superdan_assets.cli",
                    "serve",
                    "--model-dir",
                    str(model_dir),
                    "--host",
                    self.host,
                    "--port",
                    str(port),
                    "--workers",
                    str(self.workers),
                ],
                log_path=log,
                env={**os.environ, **self.server_env},
            )
            outcome = self._wait_for_ping(handle, port)
            if outcome == "ready":
                return ServerRecord(
                    pid=handle.pid,
                    start_time=handle.start_time,
                    port=port,
                    model_version=version,
                    model_dir=str(model_dir),
                    model_sha256=str(manifest["sha256"]),
                    started_at=time.time(),
                )
            tail = _tail(log)
            if (
                outcome == "exited"
                and "address already in use" in tail.lower()
                and attempt + 1 < _PORT_ATTEMPTS
            ):
                continue  # another process took the free port first: try another
            if outcome == "timeout":
                processes.terminate(handle, grace_s=5.0)
                raise DeploymentError(
                    f"model server for {version} did not answer /ping with 200 within "
                    f"{self.ping_timeout_s:.0f} s (log {log}): {tail}"
                )
            raise DeploymentError(
                f"model server for {version} exited with code {processes.exit_code(handle)} before "
                f"it was ready (log {log}): {tail}"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch(
        self, staged: Path, manifest: Mapping[str, Any], control: ProxyControl
    ) -> tuple[ServerRecord, float]:
        """Start a server, smoke-test it, switch the proxy to it; return it and the smoke ms.

        Whatever goes wrong before the switch (even an interrupt), the new server is stopped,
        so a failed roll never leaves a stray process and never touches the serving one.
        """
        new: ServerRecord | None = None
        try:
            new = self._start_server(staged, manifest)
            latency_ms = smoke_test_http(
                self.host, new.port, manifest=manifest, incidents=self.smoke_incidents
            )
            control.set_upstream(self.host, new.port, label=new.model_version)
        except BaseException:
            if new is not None:
                processes.terminate(new.handle, grace_s=5.0)
            raise
        return new, latency_ms

    def _wait_for_ping(self, handle: ProcessHandle, port: int) -> str:
        """``"ready"``, ``"exited"`` or ``"timeout"``."""
        deadline = time.monotonic() + self.ping_timeout_s
        while time.monotonic() < deadline:
            if not processes.is_alive(handle):
                return "exited"
            if _ping(self.host, port, timeout_s=2.0):
                return "ready"
            time.sleep(0.1)
        return "timeout"

    def _retire(self, control: ProxyControl, server: ServerRecord) -> dict[str, Any]:
        """Drain the old server through the proxy, then stop it gracefully.

        A server whose master already died may have left workers serving on its port: after
        the drain they are killed, so nothing is left behind either way.
        """
        try:
            drained = control.drain(self.host, server.port, timeout_s=self.drain_timeout_s)
            left = int(drained.get("inflight", 0))
        except ProxyControlError:
            left = -1  # unknown; the server's own SIGTERM drain still finishes what it has
        if processes.is_alive(server.handle):
            graceful = processes.terminate(server.handle, grace_s=self.stop_grace_s)
            orphans: list[int] = []
        else:
            graceful = False
            orphans = processes.kill_orphans(server.handle, _SERVER_MARKER)
        return {
            "retired_pid": server.pid,
            "retired_inflight_left": left,
            "retired_gracefully": graceful,
            "retired_orphans_killed": len(orphans),
        }

    def _prune_models(self, state: EndpointState) -> None:
        """Keep the serving copy and the newest ``keep_versions`` others, for a quick roll back."""
        if not self.models_dir.is_dir():
            return
        keep = {Path(state.server.model_dir).name} if state.server else set()
        copies = sorted(
            (p for p in self.models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        keep.update(p.name for p in copies[: self.keep_versions])
        for path in copies:
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    # -- messages --------------------------------------------------------------------------

    def _still_serving(self, state: EndpointState) -> str:
        server, proxy = state.server, state.proxy
        if (
            server
            and processes.is_alive(server.handle)
            and proxy
            and processes.is_alive(proxy.handle)
        ):
            return (
                f"Model {server.model_version} (pid {server.pid}) is still serving at {state.url}."
            )
        return f"No model is being served at {state.url}."

    def _curl_example(self, url: str) -> str:
        body = invocation_body(self.smoke_incidents[:1]).decode()
        return f"curl -s -X POST {url}/invocations -H 'Content-Type: application/json' -d '{body}'"


def _verified_manifest(model_dir: Path, sha256: str) -> dict[str, Any]:
    manifest = verify_artifact(model_dir)
    if manifest["sha256"] != sha256:
        raise ModelIntegrityError(f"{model_dir} now holds a different model than was deployed")
    return manifest


def _ping(host: str, port: int, *, timeout_s: float) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("GET", "/ping")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _tail(path: Path) -> str:
    """The end of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-_LOG_TAIL_CHARS:].strip() or "(empty log)"
