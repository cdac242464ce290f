"""The code location: the one place that wires assets, checks, resources and automation.

One set of assets, jobs and a daily schedule per city the location serves (``SUPERDAN_CITY``
plus ``SUPERDAN_CITIES``; see :mod:`superdan_assets.cities.catalog`); resources are shared
(each asset scopes storage and its endpoint by its city).
"""

from superdan_assets.settings import apply_runtime_defaults

apply_runtime_defaults()

from dagster import Definitions  # noqa: E402

from superdan_assets.alerts import build_check_alert_sensors  # noqa: E402
from superdan_assets.assets import City, build_city_assets  # noqa: E402
from superdan_assets.automation import build_city_automation  # noqa: E402
from superdan_assets.cities import load_cities  # noqa: E402
from superdan_assets.endpoint_sensor import build_endpoint_health_sensor  # noqa: E402
from superdan_assets.resources.factory import build_resources  # noqa: E402
from superdan_assets.retraining import (  # noqa: E402
    build_retraining_outcome_sensors,
    build_retraining_sensor,
)
from superdan_assets.settings import Settings  # noqa: E402

_settings = Settings.from_env()
_cities = [City(spec) for spec in load_cities()]
_automation = [build_city_automation(city) for city in _cities]
_resources = build_resources(_settings, default_city=_cities[0].name)

defs = Definitions(
    assets=[asset for city in _cities for asset in build_city_assets(city)],
    jobs=[job for auto in _automation for job in auto.jobs],
    schedules=[auto.schedule for auto in _automation],
    sensors=[
        *build_check_alert_sensors(),
        *(
            build_endpoint_health_sensor(_resources["endpoint"], c.name, c.spec.serving.port)
            for c in _cities
        ),
        *(build_retraining_sensor(c) for c in _cities),
        *(sensor for auto in _automation for sensor in auto.sensors),
        *build_retraining_outcome_sensors(),
    ],
    resources=_resources,
)
