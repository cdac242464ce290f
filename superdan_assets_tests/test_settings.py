import pytest

from superdan_assets.cities import SpecError, load_cities, load_city
from superdan_assets.resources.endpoint import (
    LocalEndpointResource,
    SageMakerEndpointResource,
)
from superdan_assets.settings import Settings

CITY_VARIABLES = ("SUPERDAN_CITY", "SUPERDAN_CITIES", "SUPERDAN_EXPORT_PATH")


@pytest.fixture(autouse=True)
def _no_city_overrides(monkeypatch):
    for name in CITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_embedded_ones(monkeypatch, tmp_path):
    for name in ("SUPERDAN_STORAGE", "SUPERDAN_ENDPOINT_BACKEND", "SUPERDAN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SUPERDAN_HOME", str(tmp_path))
    settings = Settings.from_env()
    assert settings.storage == "local"
    assert settings.data_dir == tmp_path / "data"
    assert settings.endpoint_backend == "local" and settings.refetch_days == 7
    # The default city is Chicago on its live feed; the location serves it alone.
    city = load_city()
    assert city.name == "chicago" and city.source.kind == "soda"
    assert [spec.name for spec in load_cities()] == ["chicago"]


def test_export_path_switches_the_default_source(monkeypatch, tmp_path):
    monkeypatch.setenv("SUPERDAN_EXPORT_PATH", str(tmp_path / "chicago"))
    monkeypatch.setenv("SUPERDAN_CITIES", "rochester")
    city = load_city()
    assert city.source.kind == "csv" and city.source.path == str(tmp_path / "chicago")
    # Only the default city's: another city keeps its own feed.
    assert load_city("rochester").source.kind == "arcgis"
    assert {spec.name: spec.source.kind for spec in load_cities()} == {
        "chicago": "csv",
        "rochester": "arcgis",
    }


def test_superdan_city_names_the_default_city(monkeypatch):
    monkeypatch.setenv("SUPERDAN_CITY", "rochester")
    assert load_city().name == "rochester"
    assert [spec.name for spec in load_cities()] == ["rochester"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SUPERDAN_STORAGE": "s3"}, "SUPERDAN_S3_BUCKET"),
        ({"SUPERDAN_STORAGE": "floppy"}, "SUPERDAN_STORAGE"),
        ({"SUPERDAN_ENDPOINT_BACKEND": "kubernetes"}, "SUPERDAN_ENDPOINT_BACKEND"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, env, message):
    monkeypatch.delenv("SUPERDAN_S3_BUCKET", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        Settings.from_env()


@pytest.mark.parametrize("variable", ["SUPERDAN_CITY", "SUPERDAN_CITIES"])
def test_an_unknown_city_lists_the_packaged_ones(monkeypatch, variable):
    monkeypatch.setenv(variable, "atlantis")
    with pytest.raises(SpecError, match=r"unknown city 'atlantis'.*\['chicago', 'rochester'\]"):
        load_cities()


def test_sagemaker_backend_lists_missing_settings(monkeypatch):
    from superdan_assets.resources.factory import endpoint_resource

    monkeypatch.setenv("SUPERDAN_ENDPOINT_BACKEND", "sagemaker")
    monkeypatch.setenv("SUPERDAN_STORAGE", "s3")
    monkeypatch.setenv("SUPERDAN_S3_BUCKET", "b")
    with pytest.raises(ValueError, match="SUPERDAN_SAGEMAKER_IMAGE_URI.*ROLE_ARN"):
        endpoint_resource(Settings.from_env(), "chicago")


def test_each_backend_has_its_own_typed_resource_with_env_values_as_env_vars(monkeypatch):
    from dagster import EnvVar

    from superdan_assets.resources.factory import endpoint_resource

    assert isinstance(endpoint_resource(Settings.from_env(), "chicago"), LocalEndpointResource)
    env = {
        "SUPERDAN_ENDPOINT_BACKEND": "sagemaker",
        "SUPERDAN_STORAGE": "s3",
        "SUPERDAN_S3_BUCKET": "superdan-bucket",
        "SUPERDAN_SAGEMAKER_IMAGE_URI": "1.dkr.ecr.us-east-1.amazonaws.com/superdan:1",
        "SUPERDAN_SAGEMAKER_ROLE_ARN": "arn:aws:iam::1:role/sm",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    resource = endpoint_resource(Settings.from_env(), "chicago")
    assert isinstance(resource, SageMakerEndpointResource) and resource.backend == "sagemaker"
    # The UI shows the variables' names, never their values.
    assert resource.role_arn == EnvVar("SUPERDAN_SAGEMAKER_ROLE_ARN")
    assert resource.bucket == EnvVar("SUPERDAN_S3_BUCKET")


def test_sagemaker_endpoint_per_city():
    resource = SageMakerEndpointResource(
        bucket="b", image_uri="i", role_arn="r", default_city="chicago"
    )
    assert resource.endpoint_name_for("chicago") == "superdan-crime-model"
    assert resource.endpoint_name_for("rochester") == "superdan-crime-model-rochester"


def test_local_port_setting_applies_to_the_default_city_only(tmp_path):
    resource = LocalEndpointResource(state_dir=str(tmp_path), port=9000, default_city="chicago")
    chicago = resource.build("chicago", spec_port=8080)
    rochester = resource.build("rochester", spec_port=8081)
    assert (chicago.port, rochester.port) == (9000, 8081)
    # Each city's endpoint keeps its state apart.
    assert (chicago.state_dir, rochester.state_dir) == (
        tmp_path / "chicago",
        tmp_path / "rochester",
    )
