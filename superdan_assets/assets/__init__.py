"""The software-defined assets, built per city from its spec."""

from superdan_assets.assets.city import City
from superdan_assets.assets.deployment import build_model_endpoint
from superdan_assets.assets.features import build_crime_features
from superdan_assets.assets.ingestion import build_raw_crimes
from superdan_assets.assets.monitoring import build_drift_report
from superdan_assets.assets.street_risk import build_street_risk
from superdan_assets.assets.training import build_crime_model


def build_city_assets(city: City) -> list:
    """raw_crimes -> crime_features -> crime_model -> model_endpoint, drift_report, and the
    street_risk forecast."""
    return [
        build_raw_crimes(city),
        build_crime_features(city),
        build_crime_model(city),
        build_model_endpoint(city),
        build_drift_report(city),
        build_street_risk(city),
    ]


__all__ = ["City", "build_city_assets"]
