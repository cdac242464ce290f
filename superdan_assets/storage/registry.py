"""The model registry: versioned artifacts plus a ``production`` pointer, on disk or S3.

Layout below the store's root::

    models/<version>/model.joblib
    models/<version>/model.json        the manifest (sha256 of model.joblib, metrics, ...)
    models/production.json             {"version": ..., "promoted_at": ..., "reason": ...}
    models/history.jsonl               one line per promotion (who was live when)

Why the model file is written before the manifest: a reader finds a version by its manifest,
so a crash between the two leaves an orphan file, never a manifest pointing at nothing. Why
fetching copies into a local cache and verifies there: the hash must be checked on the bytes
that will be unpickled, after they crossed the network.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from superdan_assets.ml.artifact import (
    MANIFEST_FILE,
    MODEL_FILE,
    LoadedModel,
    ModelIntegrityError,
    load_model,
    verify_artifact,
)
from superdan_assets.storage.blobstore import BlobNotFound, BlobStore

PRODUCTION_KEY = "models/production.json"
HISTORY_KEY = "models/history.jsonl"


class ModelNotFound(LookupError):
    """No such version in the registry (or nothing promoted yet)."""


class ModelRegistry:
    """Register, fetch (verified), promote and list model versions."""

    def __init__(self, blobs: BlobStore, cache_dir: str | os.PathLike):
        self.blobs = blobs
        self.cache_dir = Path(cache_dir)

    @staticmethod
    def _check_version(version: str) -> str:
        if not version or "/" in version or "\\" in version or version.startswith("."):
            raise ValueError(f"invalid model version {version!r}")
        return version

    @classmethod
    def _key(cls, version: str, name: str) -> str:
        return f"models/{cls._check_version(version)}/{name}"

    def register(self, artifact_dir: str | os.PathLike) -> dict[str, Any]:
        """Store a verified artifact directory under its manifest's version; return manifest."""
        manifest = verify_artifact(artifact_dir)
        version = str(manifest["version"])
        model_bytes = (Path(artifact_dir) / manifest.get("model_file", MODEL_FILE)).read_bytes()
        self.blobs.write_bytes(self._key(version, MODEL_FILE), model_bytes)
        self.blobs.write_bytes(
            self._key(version, MANIFEST_FILE),
            (Path(artifact_dir) / MANIFEST_FILE).read_bytes(),
        )
        return manifest

    def manifest(self, version: str) -> dict[str, Any]:
        try:
            return json.loads(self.blobs.read_bytes(self._key(version, MANIFEST_FILE)))
        except BlobNotFound as exc:
            raise ModelNotFound(f"model version {version!r} is not in the registry") from exc

    def fetch(self, version: str) -> Path:
        """A local, verified copy of ``version`` (downloaded once into the cache)."""
        target = self.cache_dir / self._check_version(version)
        if target.is_dir():
            try:
                verify_artifact(target)
                return target
            except ModelIntegrityError:
                shutil.rmtree(target, ignore_errors=True)  # re-download a damaged copy
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=self.cache_dir))
        try:
            manifest = self.manifest(version)
            model_file = manifest.get("model_file", MODEL_FILE)
            (staging / model_file).write_bytes(
                self.blobs.read_bytes(self._key(version, model_file))
            )
            (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            verify_artifact(staging)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def load(self, version: str) -> LoadedModel:
        return load_model(self.fetch(version))

    def production_version(self) -> str | None:
        try:
            return json.loads(self.blobs.read_bytes(PRODUCTION_KEY))["version"]
        except BlobNotFound:
            return None

    def promote(self, version: str, reason: str = "") -> dict[str, Any]:
        """Point ``production`` at ``version`` (which must exist and verify)."""
        self.fetch(version)  # refuses a version that is missing or fails its hash
        record = {
            "version": version,
            "previous": self.production_version(),
            "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "reason": reason,
        }
        self.blobs.write_bytes(PRODUCTION_KEY, json.dumps(record).encode())
        try:
            history = self.blobs.read_bytes(HISTORY_KEY)
        except BlobNotFound:
            history = b""
        self.blobs.write_bytes(HISTORY_KEY, history + json.dumps(record).encode() + b"\n")
        return record

    def versions(self) -> list[str]:
        return sorted(
            key.split("/")[1]
            for key in self.blobs.list("models/")
            if key.endswith(f"/{MANIFEST_FILE}") and key.count("/") == 2
        )
