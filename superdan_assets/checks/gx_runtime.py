"""The process-wide Great Expectations runtime: one ephemeral context, reused by every validation.

Why one per process: importing GX costs 3-10 s and building a context and suites a little
more; a backfill validates hundreds of partitions in one process, so all of that is paid once
and each validation costs only the checks themselves (~0.1 s for a day of ~700 rows).

Data Docs: each ``docs_dir`` gets its own site *and* its own filesystem validation-results
store inside it (``<docs_dir>/.validation_results``). Why the store: GX rebuilds the index from
the results store and deletes pages whose result it cannot find, so with the ephemeral context's
in-memory store every new process would wipe the pages of earlier runs. Only the new result's
page and the index (latest :data:`INDEX_RESULTS_LIMIT` results) are rebuilt per validation.
GX's context is not thread-safe: all use goes through :data:`RUNTIME_LOCK`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from superdan_assets.checks.suites import SUITE_SPECS, build_gx_suite, suite_specs

#: Serialises every use of the shared GX context.
RUNTIME_LOCK = threading.RLock()
#: How many of the latest validation results the Data Docs index lists (bounds rebuild cost).
INDEX_RESULTS_LIMIT = 60
DATASOURCE_NAME = "superdan"

_runtime: GxRuntime | None = None


class GxRuntime:
    """An ephemeral GX context with the project's pandas datasource and both suites."""

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        self._datasource = self.context.data_sources.add_pandas(DATASOURCE_NAME)
        self._batch_definitions = {}
        # Every suite is registered up front: the docs index deletes pages of suites missing
        # from the context, so a process that validates one asset must still know the other.
        self.suites = {
            asset: self.context.suites.add(build_gx_suite(asset, suite_specs(asset)))
            for asset in SUITE_SPECS
        }
        self._sites: dict[Path, tuple[str, str]] = {}

    def batch_definition(self, asset: str):
        """The whole-dataframe batch definition of ``asset`` (created on first use)."""
        if asset not in self._batch_definitions:
            data_asset = self._datasource.add_dataframe_asset(asset)
            self._batch_definitions[asset] = data_asset.add_batch_definition_whole_dataframe(
                "partition"
            )
        return self._batch_definitions[asset]

    def validate(self, asset: str, frame, parameters: dict, result_format: dict):
        """Validate ``frame`` against ``asset``'s suite; returns ``(result, batch_id)``."""
        batch = self.batch_definition(asset).get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            self.suites[asset], result_format=result_format, expectation_parameters=parameters
        )
        return result, batch.id

    def _site_for(self, docs_dir: Path) -> tuple[str, str]:
        """``(site_name, results_store_name)`` for ``docs_dir``, registering both once."""
        docs_dir = docs_dir.expanduser().resolve()
        if docs_dir not in self._sites:
            digest = hashlib.sha1(str(docs_dir).encode()).hexdigest()[:12]
            site_name, store_name = f"superdan_docs_{digest}", f"superdan_results_{digest}"
            docs_dir.mkdir(parents=True, exist_ok=True)
            self.context.add_store(
                store_name,
                {
                    "class_name": "ValidationResultsStore",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(docs_dir / ".validation_results"),
                    },
                },
            )
            self.context.add_data_docs_site(
                site_name,
                {
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(docs_dir),
                    },
                    "site_index_builder": {
                        "class_name": "DefaultSiteIndexBuilder",
                        "validation_results_limit": INDEX_RESULTS_LIMIT,
                        "show_cta_footer": False,
                    },
                    "site_section_builders": {
                        "validations": {"source_store_name": store_name},
                        "profiling": "None",
                    },
                },
            )
            self._sites[docs_dir] = (site_name, store_name)
        return self._sites[docs_dir]

    def publish(self, docs_dir: Path, asset: str, result, batch_id: str, run_name: str) -> str:
        """Store ``result`` under ``docs_dir`` and render its page; returns the page's URL."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        site_name, store_name = self._site_for(Path(docs_dir))
        run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
        result.meta["run_id"] = run_id
        result.meta["validation_time"] = run_id.run_time
        suite_id = ExpectationSuiteIdentifier(name=asset)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=batch_id
        )
        self.context.stores[store_name].set(key, result)
        self.context.build_data_docs(site_names=[site_name], resource_identifiers=[key, suite_id])
        urls = self.context.get_docs_sites_urls(resource_identifier=key, site_names=[site_name])
        return urls[0]["site_url"]


def get_runtime() -> GxRuntime:
    """The process's :class:`GxRuntime`, created (and GX imported) on first call."""
    global _runtime
    with RUNTIME_LOCK:
        if _runtime is None:
            _runtime = GxRuntime()
        return _runtime


def url_to_path(url: str) -> str | None:
    """The local path of a ``file://`` URL (``None`` for other schemes)."""
    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme == "file" else None
