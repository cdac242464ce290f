"""The local endpoint's state file and the lock that serialises rolls.

Why a file: the run that deploys a model and the run that rolls it next are different
processes, often days apart; everything the second needs (the stable port, the pids of the
proxy and the model server, which model version runs from which directory) is in
``state.json``. It is replaced atomically, so a reader never sees half a file, and it is
readable by its owner only, because it holds the proxy's control token.

Why a lock: two runs rolling at once would each start a server and each switch the proxy,
leaving one server orphaned. ``fcntl.flock`` on ``roll.lock`` is released by the kernel when
its holder dies, so a crashed run never leaves the endpoint locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from superdan_assets.deploy.processes import ProcessHandle
from superdan_assets.deploy.result import DeploymentError

STATE_FILE = "state.json"
LOCK_FILE = "roll.lock"
STATE_VERSION = 1


class DeploymentInProgress(DeploymentError):
    """Another process holds the roll lock."""


@dataclass
class ProxyRecord:
    """The always-on proxy: its process and its loopback control port."""

    pid: int
    start_time: str | None
    control_port: int

    @property
    def handle(self) -> ProcessHandle:
        return ProcessHandle(self.pid, self.start_time)


@dataclass
class ServerRecord:
    """One model server process and the model it serves."""

    pid: int
    start_time: str | None
    port: int
    model_version: str
    model_dir: str
    model_sha256: str
    started_at: float

    @property
    def handle(self) -> ProcessHandle:
        return ProcessHandle(self.pid, self.start_time)


@dataclass
class EndpointState:
    """Everything a later run needs to find, roll, heal or stop the endpoint."""

    host: str
    port: int
    token: str
    proxy: ProxyRecord | None = None
    server: ServerRecord | None = None
    previous_version: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {"state_version": STATE_VERSION, "url": self.url, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointState:
        proxy = data.get("proxy")
        server = data.get("server")
        return cls(
            host=data["host"],
            port=int(data["port"]),
            token=data["token"],
            proxy=ProxyRecord(**proxy) if proxy else None,
            server=ServerRecord(**server) if server else None,
            previous_version=data.get("previous_version"),
            history=list(data.get("history", [])),
        )


class StateStore:
    """``state.json`` and ``roll.lock`` in one state directory."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.path = self.directory / STATE_FILE

    def load(self) -> EndpointState | None:
        """The saved state, or ``None`` when nothing was deployed from this directory."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as exc:
            raise DeploymentError(f"endpoint state {self.path} is not valid JSON: {exc}") from exc
        return EndpointState.from_json(data)

    def save(self, state: EndpointState) -> None:
        """Replace the state file atomically, readable by the owner only (it holds a token)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{STATE_FILE}.", dir=self.directory)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(state.to_json(), fh, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @contextlib.contextmanager
    def lock(self, timeout_s: float) -> Iterator[None]:
        """Hold the roll lock, waiting up to ``timeout_s`` for another holder to finish."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / LOCK_FILE, "a+") as fh:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise DeploymentInProgress(
                            f"another process is rolling the endpoint in {self.directory} "
                            f"(lock {fh.name} held for more than {timeout_s:.0f} s)"
                        ) from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
