"""Freeze a verified model artifact for a backend: a private copy (local) or ``model.tar.gz``.

Why copy at all: the registry directory a model came from can be overwritten by the next
training run. A running endpoint must keep serving exactly the bytes it was smoke-tested with,
and a restart after a crash must load the same model, so each backend serves from its own
copy, checked against the manifest's sha256 *after* copying (a file that changed between the
check and the copy is caught).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from superdan_assets.ml.artifact import MODEL_FILE, ModelIntegrityError, verify_artifact

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def version_slug(version: str, max_length: int = 40) -> str:
    """A model version usable in file and resource names."""
    return (_UNSAFE.sub("-", str(version)).strip("-.") or "model")[:max_length]


def stage_artifact(
    model_dir: str | os.PathLike, root: str | os.PathLike
) -> tuple[Path, dict[str, Any]]:
    """Copy a verified artifact to ``root/<version>-<sha12>`` (reused if already intact).

    Returns the copy and its manifest. Raises ``ModelIntegrityError`` if the source or the
    copy does not match its manifest.
    """
    manifest = verify_artifact(model_dir)
    root = Path(root)
    target = root / f"{version_slug(manifest['version'])}-{manifest['sha256'][:12]}"
    if target.is_dir():
        try:
            if verify_artifact(target)["sha256"] == manifest["sha256"]:
                return target, manifest
        except ModelIntegrityError:
            pass
        shutil.rmtree(target)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        copied = verify_artifact(staging)
        if copied["sha256"] != manifest["sha256"]:
            raise ModelIntegrityError(f"{model_dir} changed while it was being copied")
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, copied


def package_tarball(
    model_dir: str | os.PathLike, destination: str | os.PathLike
) -> tuple[Path, dict[str, Any]]:
    """Write ``model.tar.gz`` with the artifact's files at the archive root; return it and the manifest.

    SageMaker extracts the archive into ``/opt/ml/model``, so ``model.json`` must be a root
    member, not ``<dir>/model.json``. The model member inside the finished archive is hashed
    again, so the archive provably holds the verified bytes.
    """
    manifest = verify_artifact(model_dir)
    source = Path(model_dir)
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    with tarfile.open(destination, "w:gz") as archive:
        for path in files:
            archive.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
    model_member = manifest.get("model_file", MODEL_FILE)
    with tarfile.open(destination, "r:gz") as archive:
        extracted = archive.extractfile(model_member)
        if extracted is None:
            raise ModelIntegrityError(f"{model_member} missing from {destination}")
        digest = hashlib.sha256()
        with extracted:
            for chunk in iter(lambda: extracted.read(io.DEFAULT_BUFFER_SIZE * 64), b""):
                digest.update(chunk)
    if digest.hexdigest() != manifest["sha256"]:
        raise ModelIntegrityError(f"{model_dir} changed while {destination} was being written")
    return destination, manifest
