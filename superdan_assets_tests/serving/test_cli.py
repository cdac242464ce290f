"""The ``superdan`` command's dispatch (the subcommands themselves are tested over processes)."""

from __future__ import annotations

import sys
import types

import pytest

from superdan_assets import cli


def test_pipeline_passes_every_remaining_argument_to_the_runner(monkeypatch):
    seen = []
    fake = types.ModuleType("superdan_assets.runner")
    fake.main = lambda argv: seen.append(argv) or 7
    monkeypatch.setitem(sys.modules, "superdan_assets.runner", fake)
    monkeypatch.setattr("superdan_assets.runner", fake, raising=False)
    assert cli.main(["pipeline", "backfill", "--help", "--start", "2018-01-01"]) == 7
    assert seen == [["backfill", "--help", "--start", "2018-01-01"]]


def test_a_subcommand_is_required(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main([])
    assert caught.value.code == 2
    assert "serve" in capsys.readouterr().err


def test_a_platform_command_without_the_platform_extra_says_how_to_install_it(monkeypatch, capsys):
    # A base-only install (the container's): importing psutil fails.
    monkeypatch.setitem(sys.modules, "psutil", None)
    monkeypatch.delitem(sys.modules, "superdan_assets.deploy.processes", raising=False)
    monkeypatch.delitem(sys.modules, "superdan_assets.deploy.local", raising=False)
    monkeypatch.delitem(sys.modules, "superdan_assets.deploy.state", raising=False)
    assert cli.main(["endpoint", "status", "--city", "chicago"]) == 2
    err = capsys.readouterr().err
    assert "needs the 'platform' extra" in err and "psutil" in err


def test_a_missing_module_that_is_not_the_platform_extra_is_not_hidden(monkeypatch):
    fake = types.ModuleType("superdan_assets.runner")

    def main(argv):
        raise ModuleNotFoundError("No module named 'superdan_plugin'", name="superdan_plugin")

    fake.main = main
    monkeypatch.setitem(sys.modules, "superdan_assets.runner", fake)
    monkeypatch.setattr("superdan_assets.runner", fake, raising=False)
    with pytest.raises(ModuleNotFoundError):
        cli.main(["pipeline"])
