"""The model artifact: one fitted pipeline file plus a manifest, verified before loading.

Layout of an artifact directory (what SageMaker calls ``/opt/ml/model``)::

    model.joblib   the fitted scikit-learn pipeline: canonical incident frame -> P(burglary)
    model.json     the manifest: version, sha256 of model.joblib, training window, metrics,
                   decision threshold, feature list, library versions

Why the hash: unpickling executes code. The manifest's sha256 is checked before a single byte
of ``model.joblib`` is unpickled, and a mismatch is refused, so a tampered or half-copied file
can never run. The directory is written to a temporary sibling and renamed into place, so a
crash never leaves a directory that looks complete but is not. A directory that cannot be
renamed (a mount point, as ``/opt/ml/model`` is in a container) is staged inside itself and
its two files are renamed into place, the manifest last.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "model.json"
MANIFEST_SCHEMA_VERSION = 1
_CHUNK = 1 << 20


class ModelIntegrityError(RuntimeError):
    """The artifact is incomplete, or its model file does not match the manifest's hash."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, streamed (model files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions that must match between training and serving for the pickle to behave."""
    import sklearn

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
    }
    try:
        import lightgbm

        versions["lightgbm"] = lightgbm.__version__
    except ImportError:  # pragma: no cover - lightgbm is a dependency, but stay loadable
        pass
    return versions


@dataclass
class LoadedModel:
    """A verified pipeline and its manifest."""

    pipeline: Any
    manifest: dict[str, Any]
    directory: Path | None = field(default=None)

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"])

    def predict_proba(self, incidents: pd.DataFrame) -> np.ndarray:
        """P(burglary) per row of a canonical incident frame."""
        proba = self.pipeline.predict_proba(incidents)
        return np.asarray(proba)[:, 1]


def save_model(pipeline: Any, manifest: dict[str, Any], directory: str | os.PathLike) -> dict:
    """Write ``pipeline`` and its manifest to ``directory`` atomically; return the manifest.

    ``manifest`` must hold at least ``version`` and ``threshold``; ``sha256``,
    ``model_file``, ``library_versions`` and ``schema_version`` are filled in here.
    """
    import joblib

    for key in ("version", "threshold"):
        if key not in manifest:
            raise ValueError(f"manifest lacks required key {key!r}")
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    in_place = _replace_files_in_place(target)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", dir=target if in_place else target.parent)
    )
    try:
        model_path = staging / MODEL_FILE
        joblib.dump(pipeline, model_path, compress=3)
        full = dict(manifest)
        full.update(
            schema_version=MANIFEST_SCHEMA_VERSION,
            model_file=MODEL_FILE,
            sha256=sha256_file(model_path),
            size_bytes=model_path.stat().st_size,
        )
        full.setdefault("library_versions", library_versions())
        (staging / MANIFEST_FILE).write_text(
            json.dumps(full, indent=2, sort_keys=True, default=str)
        )
        if in_place:
            # The manifest last: until it is replaced, the old manifest's sha256 no longer
            # matches the new model file, so a reader in between is refused, never misled.
            os.replace(model_path, target / MODEL_FILE)
            os.replace(staging / MANIFEST_FILE, target / MANIFEST_FILE)
            staging.rmdir()
        elif target.exists():
            backup = target.with_name(f".{target.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(target, backup)
            os.replace(staging, target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, target)
        return full
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace_files_in_place(target: Path) -> bool:
    """Whether ``target`` must keep its identity: write its files, do not swap the directory.

    A mount point cannot be renamed (EBUSY): SageMaker and ``docker run -v HOST:/opt/ml/model``
    mount the model directory, and ``/opt/ml`` itself may not be writable by the image's user.
    """
    if not target.is_dir():
        return False
    return os.path.ismount(target) or not os.access(target.parent, os.W_OK | os.X_OK)


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The manifest of an artifact directory, or a clear error saying what is missing."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise ModelIntegrityError(f"no {MANIFEST_FILE} in model directory {str(directory)!r}")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelIntegrityError(f"{path} is not valid JSON: {exc}") from exc
    for key in ("version", "sha256", "threshold"):
        if key not in manifest:
            raise ModelIntegrityError(f"{path} lacks required key {key!r}")
    return manifest


def verify_artifact(directory: str | os.PathLike) -> dict[str, Any]:
    """Check the model file against the manifest's sha256; return the manifest."""
    manifest = read_manifest(directory)
    model_path = Path(directory) / manifest.get("model_file", MODEL_FILE)
    if not model_path.is_file():
        raise ModelIntegrityError(f"model file {str(model_path)!r} is missing")
    actual = sha256_file(model_path)
    if actual != manifest["sha256"]:
        raise ModelIntegrityError(
            f"refusing to load {str(model_path)!r}: sha256 {actual} does not match the "
            f"manifest's {manifest['sha256']} (file changed or corrupted)"
        )
    return manifest


def load_model(directory: str | os.PathLike) -> LoadedModel:
    """Verify, then unpickle. Never unpickles a file whose hash did not match."""
    import joblib

    manifest = verify_artifact(directory)
    pipeline = joblib.load(Path(directory) / manifest.get("model_file", MODEL_FILE))
    return LoadedModel(pipeline=pipeline, manifest=manifest, directory=Path(directory))
