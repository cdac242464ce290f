import pytest

from superdan_assets.resources.endpoint import EndpointResource
from superdan_assets.settings import Settings


def test_defaults_are_the_embedded_ones(monkeypatch, tmp_path):
    for name in ("SUPERDAN_SOURCE", "SUPERDAN_EXPORT_PATH", "SUPERDAN_STORAGE",
                 "SUPERDAN_ENDPOINT_BACKEND", "SUPERDAN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SUPERDAN_HOME", str(tmp_path))
    settings = Settings.from_env()
    assert settings.source == "soda" and settings.storage == "local"
    assert settings.data_dir == tmp_path / "data"
    assert settings.endpoint_backend == "local" and settings.refetch_days == 7


def test_export_path_switches_the_default_source(monkeypatch):
    monkeypatch.delenv("SUPERDAN_SOURCE", raising=False)
    monkeypatch.setenv("SUPERDAN_EXPORT_PATH", "/data/chicago")
    assert Settings.from_env().source == "export"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SUPERDAN_SOURCE": "carrier-pigeon"}, "SUPERDAN_SOURCE"),
        ({"SUPERDAN_SOURCE": "export"}, "SUPERDAN_EXPORT_PATH"),
        ({"SUPERDAN_STORAGE": "s3"}, "SUPERDAN_S3_BUCKET"),
        ({"SUPERDAN_ENDPOINT_BACKEND": "kubernetes"}, "SUPERDAN_ENDPOINT_BACKEND"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, env, message):
    monkeypatch.delenv("SUPERDAN_EXPORT_PATH", raising=False)
    monkeypatch.delenv("SUPERDAN_S3_BUCKET", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        Settings.from_env()


def test_sagemaker_backend_lists_missing_settings():
    with pytest.raises(ValueError, match="SUPERDAN_SAGEMAKER_IMAGE_URI.*ROLE_ARN"):
        EndpointResource(backend="sagemaker", sagemaker_bucket="b").build()
