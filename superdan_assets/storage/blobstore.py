"""Byte storage on a local directory or S3, with atomic writes on both.

Why atomic: a crash in the middle of writing a partition must never leave a file that looks
like data. Locally a write goes to a hidden temporary file in the same directory, is fsynced
and renamed over the target (rename is atomic on POSIX). On S3 an object only becomes visible
once ``PutObject`` (or the multipart upload ``upload_fileobj`` uses for large bodies) completes,
which is atomic by S3's own contract.

No Dagster import: the model registry, the serving container and the benchmarks use this too.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Protocol


class BlobNotFound(FileNotFoundError):
    """The key does not exist in the store."""


class BlobStore(Protocol):
    """Flat key -> bytes storage with ``/``-separated keys."""

    def write_bytes(self, key: str, data: bytes) -> None: ...
    def read_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str) -> list[str]: ...
    def uri(self, key: str) -> str: ...


def _check_key(key: str) -> str:
    parts = key.rstrip("/").split("/")  # a trailing slash names a folder (for URIs)
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid storage key {key!r}: use relative '/'-separated names")
    return key


class LocalBlobStore:
    """Keys are paths below ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def write_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(f"{self.uri(key)} does not exist") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        folder = base if base.is_dir() else base.parent
        if not folder.exists():
            return []
        keys = []
        for path in folder.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def uri(self, key: str) -> str:
        return str(self._path(key))


class S3BlobStore:
    """Keys are object keys below ``s3://bucket/prefix/``.

    The client comes from boto3's default chain (environment, profile, instance role), so no
    credential ever passes through superdan's config. ``AWS_ENDPOINT_URL`` (honoured by boto3
    itself) points it at moto or MinIO.
    """

    def __init__(self, bucket: str, prefix: str = "", client=None):
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or boto3.client("s3")

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def write_bytes(self, key: str, data: bytes) -> None:
        # upload_fileobj switches to multipart above 8 MiB; either way the object appears
        # only when the upload completes.
        self.client.upload_fileobj(io.BytesIO(data), self.bucket, self._key(key))

    def read_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobNotFound(f"{self.uri(key)} does not exist") from exc
            raise

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        keys = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                keys.append(key[len(self.prefix) + 1 :] if self.prefix else key)
        return sorted(keys)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def make_blob_store(
    storage: str, local_root: str | os.PathLike, bucket: str | None = None, prefix: str = ""
) -> BlobStore:
    """The store a setting names: ``local`` (below ``local_root``) or ``s3``."""
    if storage == "local":
        return LocalBlobStore(local_root)
    if storage == "s3":
        if not bucket:
            raise ValueError("S3 storage needs a bucket name (SUPERDAN_S3_BUCKET)")
        return S3BlobStore(bucket, prefix)
    raise ValueError(f"unknown storage {storage!r}: use 'local' or 's3'")
