"""Data-quality checks: Great Expectations 1.x suites per asset, and the Dagster checks made of them.

Modules, one job each:

* ``suites``: the ``raw_crimes`` and ``crime_features`` suites as code (names, severities, why).
* ``validate``: ``validate_raw_crimes`` / ``validate_crime_features`` -> ``ValidationOutcome``.
* ``dagster_results``: ``quality_check_specs`` and ``asset_check_results`` for the assets.
* ``decide``: per-day decisions (written or quarantined) from the outcomes of a step.
* ``history``, ``ids``, ``profile``: learnt day bounds, id reconciliation, and the categories
  and coordinate box learnt from each city's own history.
* ``gx_runtime``, ``gx_expectations``: the shared ephemeral GX context and a custom expectation.

Great Expectations is imported lazily, on the first validation, never when these modules load.
"""
