import boto3
import pytest
from moto import mock_aws
from sklearn.dummy import DummyClassifier

from superdan_assets.ml.artifact import ModelIntegrityError, save_model
from superdan_assets.storage.blobstore import LocalBlobStore, S3BlobStore
from superdan_assets.storage.registry import ModelNotFound, ModelRegistry


def _artifact(tmp_path, version):
    model = DummyClassifier(strategy="prior").fit([[0], [1], [1]], [0, 1, 1])
    return tmp_path / version, save_model(
        model, {"version": version, "threshold": 0.5}, tmp_path / version
    )


@pytest.fixture(params=["local", "s3"])
def registry(request, tmp_path):
    if request.param == "local":
        yield ModelRegistry(LocalBlobStore(tmp_path / "store"), tmp_path / "cache")
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="models")
        yield ModelRegistry(S3BlobStore("models", "reg", client=client), tmp_path / "cache")


def test_register_fetch_promote_round_trip(registry, tmp_path):
    d1, m1 = _artifact(tmp_path / "a", "v1")
    d2, _ = _artifact(tmp_path / "a", "v2")
    registry.register(d1)
    registry.register(d2)
    assert registry.versions() == ["v1", "v2"]
    assert registry.production_version() is None
    registry.promote("v1", "first")
    record = registry.promote("v2", "better")
    assert record["previous"] == "v1" and registry.production_version() == "v2"
    loaded = registry.load("v1")
    assert loaded.version == "v1" and loaded.manifest["sha256"] == m1["sha256"]
    assert loaded.predict_proba(__import__("numpy").zeros((2, 1))).tolist() == [2 / 3, 2 / 3]


def test_tampered_artifact_is_refused_on_fetch(registry, tmp_path):
    d1, _ = _artifact(tmp_path / "a", "v1")
    registry.register(d1)
    key = "models/v1/model.joblib"
    data = bytearray(registry.blobs.read_bytes(key))
    data[-10] ^= 0xFF
    registry.blobs.write_bytes(key, bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match"):
        registry.fetch("v1")
    assert not (tmp_path / "cache" / "v1").exists()  # nothing unverified left behind


def test_unknown_version_and_bad_names(registry):
    with pytest.raises(ModelNotFound, match="'v9'"):
        registry.fetch("v9")
    with pytest.raises(ModelNotFound):
        registry.promote("v9")
    with pytest.raises(ValueError, match="invalid model version"):
        registry.fetch("../etc")


def test_damaged_cache_copy_is_downloaded_again(tmp_path):
    registry = ModelRegistry(LocalBlobStore(tmp_path / "store"), tmp_path / "cache")
    d1, _ = _artifact(tmp_path / "a", "v1")
    registry.register(d1)
    cached = registry.fetch("v1")
    (cached / "model.joblib").write_bytes(b"garbage")
    assert registry.load("v1").version == "v1"
