"""The code location: the one place that wires assets, checks, resources and automation."""

from superdan_assets.settings import apply_runtime_defaults

apply_runtime_defaults()

from dagster import Definitions  # noqa: E402

from superdan_assets.assets.ingestion import raw_crimes  # noqa: E402
from superdan_assets.resources.factory import build_resources  # noqa: E402
from superdan_assets.settings import Settings  # noqa: E402

defs = Definitions(
    assets=[raw_crimes],
    resources=build_resources(Settings.from_env()),
)
