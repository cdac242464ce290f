"""Saving an artifact into a directory that cannot be renamed (``/opt/ml/model`` mounted).

Found by running ``train`` in a real container (scripts/container-check.sh): with the model
directory mounted, swapping the directory failed with ``EBUSY`` and the job failed after
training. A real mount needs privileges, so the tests make ``os.path.ismount`` say so and make
renaming that directory fail the way the kernel does.
"""

from __future__ import annotations

import errno
import os

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from superdan_assets.ml import artifact
from superdan_assets.ml.artifact import MANIFEST_FILE, MODEL_FILE, load_model, save_model


def _fitted(prior: float) -> DummyClassifier:
    share = round(prior * 10)
    return DummyClassifier(strategy="prior").fit([[0]] * 10, [1] * share + [0] * (10 - share))


@pytest.fixture
def mounted(tmp_path, monkeypatch):
    """A model directory that behaves like a mount point: renaming it is EBUSY."""
    target = tmp_path / "opt" / "ml" / "model"
    target.mkdir(parents=True)
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if os.fspath(src) == os.fspath(target):
            raise OSError(errno.EBUSY, "Device or resource busy", os.fspath(src))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(artifact.os.path, "ismount", lambda p: os.fspath(p) == os.fspath(target))
    monkeypatch.setattr(artifact.os, "replace", replace)
    return target


def test_a_mounted_model_dir_gets_the_files_and_keeps_its_identity(mounted):
    inode = mounted.stat().st_ino
    save_model(_fitted(0.3), {"version": "v1", "threshold": 0.5}, mounted)
    assert mounted.stat().st_ino == inode
    assert sorted(p.name for p in mounted.iterdir()) == [MODEL_FILE, MANIFEST_FILE]
    assert sorted(p.name for p in mounted.parent.iterdir()) == ["model"]  # nothing beside it
    loaded = load_model(mounted)
    assert loaded.version == "v1"
    assert loaded.predict_proba(pd.DataFrame({"x": [0]}))[0] == pytest.approx(0.3)


def test_a_second_save_into_the_mount_replaces_the_model(mounted):
    save_model(_fitted(0.3), {"version": "v1", "threshold": 0.5}, mounted)
    save_model(_fitted(0.7), {"version": "v2", "threshold": 0.5}, mounted)
    loaded = load_model(mounted)
    assert loaded.version == "v2"
    assert sorted(p.name for p in mounted.iterdir()) == [MODEL_FILE, MANIFEST_FILE]


def test_an_ordinary_directory_is_still_swapped_whole(tmp_path):
    target = tmp_path / "model"
    save_model(_fitted(0.3), {"version": "v1", "threshold": 0.5}, target)
    first = target.stat().st_ino
    save_model(_fitted(0.7), {"version": "v2", "threshold": 0.5}, target)
    assert target.stat().st_ino != first  # a new directory renamed into place
    assert load_model(target).version == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_model_dir_whose_parent_is_read_only_is_written_in_place(tmp_path, monkeypatch):
    # SageMaker may mount /opt/ml as root while the image runs as its own user: the model
    # directory is writable, its parent is not (the tests run as root, so say so through access).
    target = tmp_path / "ml" / "model"
    target.mkdir(parents=True)
    real_access = os.access
    monkeypatch.setattr(
        artifact.os,
        "access",
        lambda p, mode: False if os.fspath(p) == os.fspath(target.parent) else real_access(p, mode),
    )
    inode = target.stat().st_ino
    save_model(_fitted(0.3), {"version": "v1", "threshold": 0.5}, target)
    assert target.stat().st_ino == inode
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]
    assert load_model(target).version == "v1"
