"""Make the platform-only packages unimportable, as they are in the serving image.

The Dockerfile installs only the base dependencies (no Dagster, Great Expectations, W&B, boto3,
requests, matplotlib; pydantic is a base dependency, for the city specs). The serving tests
start ``superdan`` through :func:`install`, so any code path of ``serve`` or ``train`` that reaches for one of them fails the tests here
instead of failing in the container.
"""

import importlib.abc
import sys

PLATFORM_ONLY = frozenset(
    {
        "dagster",
        "dagster_webserver",
        "dagster_graphql",
        "great_expectations",
        "wandb",
        "boto3",
        "botocore",
        "requests",
        "matplotlib",
        "flask",
        "gunicorn",
        "moto",
    }
)


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PLATFORM_ONLY:
            raise ImportError(f"{name} is not installed in the serving image (platform extra)")
        return None


def install() -> None:
    if not any(isinstance(f, _Blocker) for f in sys.meta_path):
        sys.meta_path.insert(0, _Blocker())
