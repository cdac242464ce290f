"""Process identity across runs: a pid is ours only if its start time matches, and a dead
leader's forked children are found by process group and command line."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from superdan_assets.deploy import processes
from superdan_assets.deploy.processes import ProcessHandle
from superdan_assets_tests.waiting import wait_until


def test_a_pid_is_ours_only_with_its_start_time():
    me = ProcessHandle.of(os.getpid())
    assert processes.is_alive(me)
    assert processes.is_alive(ProcessHandle(os.getpid(), None))
    reused = ProcessHandle(os.getpid(), repr(float(me.start_time) - 5.0))
    assert not processes.is_alive(reused), "a pid reused by another process is not ours"


def test_start_times_recorded_as_clock_ticks_by_older_versions_are_still_recognised():
    stat = Path(f"/proc/{os.getpid()}/stat").read_text()
    ticks = stat[stat.rfind(")") + 2 :].split()[19]
    assert processes.is_alive(ProcessHandle(os.getpid(), ticks))
    assert not processes.is_alive(ProcessHandle(os.getpid(), str(int(ticks) + 500)))


def test_an_exited_child_is_dead_with_its_exit_code(tmp_path):
    handle = processes.spawn(
        [sys.executable, "-c", "raise SystemExit(3)"], log_path=tmp_path / "child.log"
    )
    wait_until(lambda: not processes.is_alive(handle), timeout_s=20, what="the child to exit")
    assert processes.exit_code(handle) == 3


def test_orphans_of_a_killed_leader_are_found_by_group_and_marker(tmp_path):
    ready = tmp_path / "child.pid"
    code = (
        "import os, time, sys\n"
        "# superdan-orphan-test\n"
        "if os.fork() == 0:\n"
        f"    open({str(ready)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(120)\n"
    )
    leader = processes.spawn([sys.executable, "-c", code], log_path=tmp_path / "leader.log")
    child = int(wait_until(lambda: ready.exists() and ready.read_text(), timeout_s=20, what="fork"))
    child_handle = ProcessHandle.of(child)
    assert processes.kill_orphans(leader, "superdan-orphan-test") == [], "leader still alive"
    os.kill(leader.pid, signal.SIGKILL)
    wait_until(lambda: not processes.is_alive(leader), timeout_s=10, what="the leader to die")
    assert processes.kill_orphans(leader, "no-such-marker") == []
    assert processes.kill_orphans(leader, "superdan-orphan-test") == [child]
    wait_until(lambda: not processes.is_alive(child_handle), timeout_s=10, what="the orphan to die")
