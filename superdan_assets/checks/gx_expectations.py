"""A custom GX expectation: every column has exactly the pandas dtype the schema fixes.

Why not ``ExpectColumnValuesToBeOfType``: for pandas it compares the dtype's scalar *type*, so
the nullable ``string`` dtype and pandas 3's default ``str`` dtype (both ``str``), or
``boolean`` and numpy ``bool``, look the same to it. The canonical schema and the feature
rows depend on the exact dtype (nullable booleans, zero-padded string codes surviving Parquet),
so this expectation compares ``str(dtype)`` exactly.

This module imports Great Expectations at import time: import it only inside functions
(``checks.gx_runtime`` does), never from a module the Dagster definitions import eagerly.
"""

from __future__ import annotations

from typing import ClassVar

from great_expectations.expectations.expectation import BatchExpectation


class ExpectTableColumnDtypesToEqual(BatchExpectation):
    """Expect each listed column that is present to have exactly the given pandas dtype.

    Missing or extra columns are the job of ``ExpectTableColumnsToMatchOrderedList``; this
    one reports, per present column, the expected and the found dtype.
    """

    dtypes: dict[str, str]

    metric_dependencies: ClassVar[tuple[str, ...]] = ("table.column_types",)
    success_keys: ClassVar[tuple[str, ...]] = ("dtypes",)
    args_keys: ClassVar[tuple[str, ...]] = ("dtypes",)

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        found = {str(c["name"]): str(c["type"]) for c in metrics["table.column_types"]}
        expected = self.configuration.kwargs["dtypes"]
        mismatched = [
            {"column": column, "expected": dtype, "found": found[column]}
            for column, dtype in expected.items()
            if column in found and found[column] != dtype
        ]
        return {
            "success": not mismatched,
            "result": {"observed_value": found, "details": {"mismatched": mismatched}},
        }
