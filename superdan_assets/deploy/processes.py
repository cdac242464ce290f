"""Detached local processes that outlive the run that started them, and how to stop them safely.

A local endpoint is started by one Dagster run and rolled or stopped by a later one, in a
different process. So its processes run in their own session (a terminal's Ctrl-C or the end of
the run does not reach them), are found again by pid from the state file, and are identified by
pid *and* start time: a pid recorded days ago may since have been reused by an unrelated
process, which must never be signalled.

Process identity, liveness and the process-group walk come from psutil rather than from parsing
``/proc/<pid>/stat`` by hand: the same code then works where there is no ``/proc`` (macOS), where
it used to fall back to trusting a bare pid and could not find orphans at all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

_POLL_S = 0.05
#: Children started by this process, kept so they can be reaped (a dead child that is not
#: waited for stays a zombie, which ``kill(pid, 0)`` still reports as alive).
_CHILDREN: dict[int, subprocess.Popen] = {}
#: Exit codes of reaped children, for error messages.
_EXIT_CODES: dict[int, int] = {}


@dataclass(frozen=True)
class ProcessHandle:
    """A process found again later: its pid and, where known, its start time (see
    :func:`start_time`)."""

    pid: int
    start_time: str | None

    @classmethod
    def of(cls, pid: int) -> ProcessHandle:
        return cls(pid, start_time(pid))


def start_time(pid: int) -> str | None:
    """When the process started, in seconds since the epoch (as text), or ``None`` if gone."""
    try:
        return repr(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _started_at(recorded: str) -> float:
    """A recorded start time in seconds since the epoch.

    State files written before psutil hold clock ticks since boot (Linux ``/proc``): those are
    converted, so an endpoint started by an older version is still recognised, not taken for
    dead (which would start a second proxy on its port, or kill its live server as an orphan).
    """
    if recorded.isdigit():
        return psutil.boot_time() + int(recorded) / os.sysconf("SC_CLK_TCK")
    return float(recorded)


def _is(process: psutil.Process, handle: ProcessHandle) -> bool:
    """Whether ``process`` is the one ``handle`` recorded (not a later one with its pid)."""
    if handle.start_time is None:
        return True
    # Start times are clock ticks (10 ms) under the hood; allow one.
    return abs(process.create_time() - _started_at(handle.start_time)) < 0.011


def is_alive(handle: ProcessHandle) -> bool:
    """Whether the process still runs: not exited, not a zombie, and not a reused pid."""
    child = _CHILDREN.get(handle.pid)
    if child is not None and child.poll() is not None:
        _reap(handle.pid)
        return False
    try:
        process = psutil.Process(handle.pid)
        return process.status() != psutil.STATUS_ZOMBIE and _is(process, handle)
    except psutil.Error:  # gone, or someone else's process: certainly not ours any more
        return False


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
) -> ProcessHandle:
    """Start ``argv`` in a new session, output appended to ``log_path``; return its handle."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[process.pid] = process
    return ProcessHandle.of(process.pid)


def exit_code(handle: ProcessHandle) -> int | None:
    """The exit status of a child of this process that has exited, else ``None``.

    Waits a moment: a process whose main thread has exited shows as a zombie while its other
    threads are still finishing, before the kernel reports its exit status.
    """
    if handle.pid in _CHILDREN and not is_alive(handle):
        _reap(handle.pid, timeout_s=5.0)
    return _EXIT_CODES.get(handle.pid)


def wait_exit(handle: ProcessHandle, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for the process to exit; return whether it did."""
    deadline = time.monotonic() + timeout_s
    while is_alive(handle):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def terminate(handle: ProcessHandle, *, grace_s: float) -> bool:
    """SIGTERM the process and wait ``grace_s`` for it to drain and exit, else SIGKILL its group.

    Returns ``True`` when it exited on its own within the grace period. On timeout the whole
    process group is killed (while its leader is alive, so the group is certainly this one),
    so pre-forked workers cannot outlive their master.
    """
    if not is_alive(handle):
        _reap(handle.pid)
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(handle.pid, signal.SIGTERM)
    if wait_exit(handle, grace_s):
        _reap(handle.pid)
        return True
    if is_alive(handle):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(handle.pid, signal.SIGKILL)
    wait_exit(handle, 5.0)
    _reap(handle.pid)
    return False


def kill_orphans(handle: ProcessHandle, marker: str) -> list[int]:
    """SIGKILL what is left of a dead leader's process group; return the pids killed.

    A pre-forked server's master can die (``kill -9``, out of memory) leaving its workers
    serving on a port nobody routes to. They are found by process group *and* command line
    (forked workers keep their master's), so an unrelated process that reused the pid is never
    touched. Does nothing while the leader itself is alive.
    """
    if is_alive(handle):
        return []
    killed = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if os.getpgid(process.pid) != handle.pid or process.info["status"] == "zombie":
                continue
            if marker in " ".join(process.info["cmdline"] or ()):
                process.kill()
                killed.append(process.pid)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return killed


def _reap(pid: int, timeout_s: float = 1.0) -> None:
    """Wait for an exited child of ours (so it is no zombie) and remember its exit code."""
    child = _CHILDREN.get(pid)
    if child is None:
        return
    try:
        _EXIT_CODES[pid] = child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return  # still finishing its threads: reaped by a later call
    _CHILDREN.pop(pid, None)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the caller retries if another process takes it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False
