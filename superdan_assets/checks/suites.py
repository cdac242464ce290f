"""The expectation suites, as code: one per asset, ``raw_crimes`` and ``crime_features``.

Each expectation is an :class:`ExpectationSpec`: a stable name, a severity, the GX expectation
class and arguments, and why it exists. The specs are plain data (no GX import), so the
catalogue can be listed, documented and tested cheaply; :func:`build_gx_suite` turns them into
a GX ``ExpectationSuite`` lazily.

Why parameters: everything that changes per partition (the day's bounds, the row-count and
burglary-share bounds learnt from history, the ids stored before) is a GX suite parameter
(``{"$PARAMETER": name}``), so each asset has exactly one suite per process, its Data Docs page
is stable, and a validation only passes values in.

Severity policy. ERROR (blocking): anything that would corrupt the model or the training set:
schema or dtype changes, required fields missing, duplicated ids, rows outside the partition's
day, an empty feature day, labels other than 0/1, most coordinates missing or outside the city.
WARN (non-blocking, alerted): anything only unusual: a category the city's stored history never
had, a few coordinates outside the city, more missing coordinates than usual, a row count or
burglary share outside the bounds learnt from history, reports that moved days or vanished since
the last fetch.

Nothing here is any one city's: the known categories and the coordinate box are parameters too,
learnt from the city's own stored history (:mod:`superdan_assets.checks.profile`) or read from
its spec's ``[bounds]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from superdan_assets.checks.outcome import Severity
from superdan_assets.ml.labels import FEATURE_ROW_DTYPES, LABEL_COLUMN
from superdan_assets.ml.schema import CANONICAL_DTYPES, REQUIRED_COLUMNS

RAW_CRIMES = "raw_crimes"
CRIME_FEATURES = "crime_features"

#: More than this share of rows without coordinates corrupts the geography features: ERROR.
MAX_MISSING_COORDINATES_SHARE = 0.25
#: More than this share without coordinates is unusual (the 99th percentile of 2012-2018 days
#: is 5.7 %): WARN.
USUAL_MISSING_COORDINATES_SHARE = 0.06
#: More than this share of located rows outside the city box means a projection or feed bug:
#: ERROR. Any row outside is reported as WARN (2012-2018 has ~1 a week, the (0, 0) placeholder).
MAX_OUT_OF_CITY_SHARE = 0.05

#: Suite parameter names (values are passed per validation).
P_START = "partition_start"
P_END = "partition_end"
P_ROWS_MIN = "row_count_min"
P_ROWS_MAX = "row_count_max"
P_SHARE_MIN = "burglary_share_min"
P_SHARE_MAX = "burglary_share_max"
P_IDS_ELSEWHERE = "ids_stored_on_other_days"
P_IDS_BEFORE = "ids_previously_in_partition"

#: What needs which input; without it the expectation passes with ``evaluated=False``.
NEEDS_ROW_HISTORY = "row_history"
#: Per-column needs: ``known:<column>`` (values seen before), ``box:<column>`` (a coordinate
#: range from the spec, the history or, failing both, the batch itself).
NEEDS_KNOWN_PREFIX = "known:"
NEEDS_BOX_PREFIX = "box:"


def known_param(column: str) -> str:
    return f"known_{column}"


def box_params(column: str) -> tuple[str, str]:
    return f"{column}_min", f"{column}_max"


NEEDS_SHARE_HISTORY = "share_history"
NEEDS_PREVIOUS = "previous"

#: What an ERROR failure stops, per asset (reported in check metadata).
BLOCKS = {
    RAW_CRIMES: "crime_features for this partition (blocking check) and training on it",
    CRIME_FEATURES: "training crime_model on this partition and its drift_report",
}


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite, independent of GX."""

    name: str
    severity: Severity
    expectation: str
    kwargs: Mapping[str, Any]
    why: str
    needs: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")


def _param(name: str) -> dict[str, str]:
    return {"$PARAMETER": name}


def _schema_specs(dtypes: Mapping[str, str], what: str) -> list[ExpectationSpec]:
    return [
        ExpectationSpec(
            "columns_match_schema",
            Severity.ERROR,
            "ExpectTableColumnsToMatchOrderedList",
            {"column_list": list(dtypes)},
            f"{what} must have exactly the fixed columns, in order; a renamed or missing column "
            "would silently become nulls downstream.",
        ),
        ExpectationSpec(
            "dtypes_match_schema",
            Severity.ERROR,
            "ExpectTableColumnDtypesToEqual",
            {"dtypes": dict(dtypes)},
            "Exact pandas dtypes: codes as strings keep leading zeros, nullable booleans keep "
            "unknowns unknown, timestamps compare with the partition bounds.",
        ),
    ]


def _not_null(column: str, why: str) -> ExpectationSpec:
    return ExpectationSpec(
        f"{column}_not_null",
        Severity.ERROR,
        "ExpectColumnValuesToNotBeNull",
        {"column": column},
        why,
    )


def _date_within_partition() -> ExpectationSpec:
    return ExpectationSpec(
        "date_within_partition",
        Severity.ERROR,
        "ExpectColumnValuesToBeBetween",
        {
            "column": "date",
            "min_value": _param(P_START),
            "max_value": _param(P_END),
            "strict_max": True,
        },
        "Every row occurred inside the partition's local day; a row from another day is "
        "counted twice (here and in its own day) or leaks a future day into training.",
    )


def _coordinate_specs() -> list[ExpectationSpec]:
    specs = []
    for column in ("latitude", "longitude"):
        lo, hi = box_params(column)
        box = {"min_value": _param(lo), "max_value": _param(hi)}
        specs += [
            ExpectationSpec(
                f"{column}_present_for_most_rows",
                Severity.ERROR,
                "ExpectColumnValuesToNotBeNull",
                {"column": column, "mostly": 1 - MAX_MISSING_COORDINATES_SHARE},
                f"More than {MAX_MISSING_COORDINATES_SHARE:.0%} of rows without coordinates "
                "would corrupt the location features (Chicago 2012-2018 worst day: 19 %).",
            ),
            ExpectationSpec(
                f"{column}_present_as_usual",
                Severity.WARN,
                "ExpectColumnValuesToNotBeNull",
                {"column": column, "mostly": 1 - USUAL_MISSING_COORDINATES_SHARE},
                f"More than {USUAL_MISSING_COORDINATES_SHARE:.0%} of rows without coordinates is "
                "unusual (Chicago's typical day: 0.4 %).",
            ),
            ExpectationSpec(
                f"{column}_in_city_for_most_rows",
                Severity.ERROR,
                "ExpectColumnValuesToBeBetween",
                {"column": column, **box, "mostly": 1 - MAX_OUT_OF_CITY_SHARE},
                f"More than {MAX_OUT_OF_CITY_SHARE:.0%} of located rows outside the city's box "
                "(its spec's [bounds], or learnt from its history) means a projection or feed "
                "bug, not crime.",
                needs=NEEDS_BOX_PREFIX + column,
            ),
            ExpectationSpec(
                f"{column}_in_city",
                Severity.WARN,
                "ExpectColumnValuesToBeBetween",
                {"column": column, **box},
                "A located row outside the city's box (usually a (0, 0) geocoding placeholder).",
                needs=NEEDS_BOX_PREFIX + column,
            ),
        ]
    return specs


def _xy_specs() -> list[ExpectationSpec]:
    specs = []
    for column in ("x_coordinate", "y_coordinate"):
        lo, hi = box_params(column)
        specs.append(
            ExpectationSpec(
                f"{column}_in_city",
                Severity.WARN,
                "ExpectColumnValuesToBeBetween",
                {"column": column, "min_value": _param(lo), "max_value": _param(hi)},
                "Projected coordinate outside the range learnt from the city's history (x = y "
                "= 0 is Chicago's placeholder for an address that could not be geocoded).",
                needs=NEEDS_BOX_PREFIX + column,
            )
        )
    return specs


def _known_specs(columns: tuple[str, ...]) -> list[ExpectationSpec]:
    return [
        ExpectationSpec(
            f"{column}_known",
            Severity.WARN,
            "ExpectColumnValuesToBeInSet",
            {"column": column, "value_set": _param(known_param(column))},
            f"A {column} value the city's stored history never had: a new code or a renamed "
            "category; the model treats it as unseen.",
            needs=NEEDS_KNOWN_PREFIX + column,
        )
        for column in columns
    ]


def _row_count_specs(empty_severity: Severity, empty_why: str) -> list[ExpectationSpec]:
    return [
        ExpectationSpec(
            "row_count_not_zero",
            empty_severity,
            "ExpectTableRowCountToBeBetween",
            {"min_value": 1, "max_value": None},
            empty_why,
        ),
        ExpectationSpec(
            "row_count_within_history",
            Severity.WARN,
            "ExpectTableRowCountToBeBetween",
            {"min_value": _param(P_ROWS_MIN), "max_value": _param(P_ROWS_MAX)},
            "The day's volume is outside the Tukey fences of recent partitions of the same "
            "weekday: a partial fetch, a duplicated page or a real event.",
            needs=NEEDS_ROW_HISTORY,
        ),
    ]


def raw_crimes_specs() -> list[ExpectationSpec]:
    """The ``raw_crimes`` suite: one day of reports as the source gave them."""
    why_required = {
        "id": "Without an id a report cannot be de-duplicated or reconciled across re-fetches.",
        "date": "Without an occurrence time a report cannot be partitioned or featurised.",
        "primary_type": "Without a primary type a report cannot be labelled.",
    }
    return [
        *_schema_specs(CANONICAL_DTYPES, "raw_crimes"),
        *(
            _not_null(column, why_required.get(column, "Required by the canonical schema."))
            for column in REQUIRED_COLUMNS
        ),
        ExpectationSpec(
            "id_unique",
            Severity.ERROR,
            "ExpectColumnValuesToBeUnique",
            {"column": "id"},
            "A duplicated report would be counted (and trained on) twice.",
        ),
        _date_within_partition(),
        *_row_count_specs(
            Severity.WARN,
            "No reports at all for a day: the feed is probably down (an empty day is a valid "
            "raw partition; the empty feature day downstream is the blocking error).",
        ),
        *_known_specs(
            ("primary_type", "location_description", "district", "beat", "ward", "community_area"),
        ),
        *_coordinate_specs(),
        *_xy_specs(),
        ExpectationSpec(
            "ids_not_moved_from_other_days",
            Severity.WARN,
            "ExpectColumnValuesToNotBeInSet",
            {"column": "id", "value_set": _param(P_IDS_ELSEWHERE)},
            "A report stored earlier on another day now has this day's date: the other day's "
            "partition still holds it, so re-materialise that day.",
            needs=NEEDS_PREVIOUS,
        ),
        ExpectationSpec(
            "previously_stored_ids_present",
            Severity.WARN,
            "ExpectColumnDistinctValuesToContainSet",
            {"column": "id", "value_set": _param(P_IDS_BEFORE)},
            "Reports stored for this day before are missing from the re-fetch: moved to another "
            "day, deleted by the city, or a partial fetch.",
            needs=NEEDS_PREVIOUS,
        ),
    ]


def crime_features_specs() -> list[ExpectationSpec]:
    """The ``crime_features`` suite: labelled THEFT/BURGLARY rows with model inputs."""
    return [
        *_schema_specs(FEATURE_ROW_DTYPES, "crime_features"),
        _not_null(LABEL_COLUMN, "A row without a label cannot be trained or evaluated on."),
        _not_null("date", "Without an occurrence time a row cannot be featurised or partitioned."),
        ExpectationSpec(
            "label_is_binary",
            Severity.ERROR,
            "ExpectColumnValuesToBeInSet",
            {"column": LABEL_COLUMN, "value_set": [0, 1]},
            "The label is 1 = burglary, 0 = theft; anything else means the labelling broke.",
        ),
        _date_within_partition(),
        *_row_count_specs(
            Severity.ERROR,
            "A day without a single theft or burglary: the upstream data is broken (or the "
            "spec's label words match nothing), and training on it would bias the time "
            "features.",
        ),
        ExpectationSpec(
            "burglary_share_within_history",
            Severity.WARN,
            "ExpectColumnMeanToBeBetween",
            {
                "column": LABEL_COLUMN,
                "min_value": _param(P_SHARE_MIN),
                "max_value": _param(P_SHARE_MAX),
            },
            "The day's burglary share is outside the Tukey fences of recent days: label drift "
            "or a labelling change.",
            needs=NEEDS_SHARE_HISTORY,
        ),
        *_known_specs(("location_description", "district", "beat", "ward", "community_area")),
        *_coordinate_specs(),
    ]


SUITE_SPECS = {RAW_CRIMES: raw_crimes_specs, CRIME_FEATURES: crime_features_specs}


def suite_specs(asset: str) -> list[ExpectationSpec]:
    """The specs of ``asset``'s suite; ValueError naming the known assets."""
    try:
        return SUITE_SPECS[asset]()
    except KeyError:
        raise ValueError(f"no suite for asset {asset!r}; known: {sorted(SUITE_SPECS)}") from None


def build_gx_suite(asset: str, specs: list[ExpectationSpec]):
    """A GX ``ExpectationSuite`` named ``asset`` from ``specs`` (imports GX)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from superdan_assets.checks import gx_expectations

    suite = gx.ExpectationSuite(name=asset)
    for spec in specs:
        cls = getattr(gxe, spec.expectation, None) or getattr(gx_expectations, spec.expectation)
        suite.add_expectation(
            cls(
                **spec.kwargs,
                severity="critical" if spec.severity is Severity.ERROR else "warning",
                notes=spec.why,
                meta={"name": spec.name, "severity": spec.severity.value, **spec.meta},
            )
        )
    return suite
