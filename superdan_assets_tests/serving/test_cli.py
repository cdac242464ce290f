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
