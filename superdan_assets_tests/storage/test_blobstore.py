import os

import boto3
import pytest
from moto import mock_aws

from superdan_assets.storage.blobstore import (
    BlobNotFound,
    LocalBlobStore,
    S3BlobStore,
    make_blob_store,
)


@pytest.fixture
def s3_store():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="crimes")
        yield S3BlobStore("crimes", "env/prod", client=client)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        yield LocalBlobStore(tmp_path)
    else:
        yield request.getfixturevalue("s3_store")


def test_round_trip_replace_list_delete(store):
    store.write_bytes("raw_crimes/2018-01-01.parquet", b"one")
    store.write_bytes("raw_crimes/2018-01-01.parquet", b"two")
    store.write_bytes("raw_crimes/2018-01-02.parquet", b"three")
    assert store.read_bytes("raw_crimes/2018-01-01.parquet") == b"two"
    assert store.list("raw_crimes/") == [
        "raw_crimes/2018-01-01.parquet",
        "raw_crimes/2018-01-02.parquet",
    ]
    store.delete("raw_crimes/2018-01-02.parquet")
    assert not store.exists("raw_crimes/2018-01-02.parquet")
    with pytest.raises(BlobNotFound, match="2018-01-02"):
        store.read_bytes("raw_crimes/2018-01-02.parquet")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a"])
def test_keys_cannot_escape_the_root(tmp_path, key):
    with pytest.raises(ValueError, match="invalid storage key"):
        LocalBlobStore(tmp_path).write_bytes(key, b"x")


def test_s3_keys_live_under_the_prefix(s3_store):
    s3_store.write_bytes("a/b.bin", b"x")
    keys = [o["Key"] for o in s3_store.client.list_objects_v2(Bucket="crimes")["Contents"]]
    assert keys == ["env/prod/a/b.bin"]
    assert s3_store.uri("a/b.bin") == "s3://crimes/env/prod/a/b.bin"


def test_local_write_that_fails_midway_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    store = LocalBlobStore(tmp_path)
    store.write_bytes("p/day.parquet", b"good")

    def crash(_fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        store.write_bytes("p/day.parquet", b"half-written")
    assert store.read_bytes("p/day.parquet") == b"good"
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["day.parquet"]


def test_make_blob_store_validates_settings(tmp_path):
    assert isinstance(make_blob_store("local", tmp_path), LocalBlobStore)
    with pytest.raises(ValueError, match="bucket"):
        make_blob_store("s3", tmp_path)
    with pytest.raises(ValueError, match="unknown storage"):
        make_blob_store("ftp", tmp_path)
