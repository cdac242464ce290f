"""``superdan city check SPEC``: try a city spec against its source before any backfill.

A new city's spec is written by hand against a feed its author has seen a few rows of; this
reads a sample of the real feed through the spec and reports what the platform will make of
it: which columns were found, whether the dates parse (and their range), which offence values
became burglary or theft (and which look like they should have: near misses), how many rows
have coordinates, and how many rows a day. It changes nothing.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from superdan_assets.cities.mapping import SpecMapper, normalise_header
from superdan_assets.cities.spec import CitySpec
from superdan_assets.ml.labels import LabelRule, incident_labels
from superdan_assets.ml.schema import SchemaError


@dataclass
class CheckReport:
    city: str
    source: str
    sample_rows: int
    columns_found: dict[str, str] = field(default_factory=dict)
    columns_missing: list[str] = field(default_factory=list)
    date_parse_share: float = 0.0
    date_range: tuple[str, str] | None = None
    label_values: dict[str, dict[str, int]] = field(default_factory=dict)
    near_misses: dict[str, str] = field(default_factory=dict)
    coordinates_share: float | None = None
    rows_per_day: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()} | {"ok": self.ok}

    def text(self) -> str:
        lines = [f"city {self.city} ({self.source}), {self.sample_rows} sample rows"]
        lines.append(
            "columns found: " + ", ".join(f"{f}={c!r}" for f, c in self.columns_found.items())
        )
        if self.columns_missing:
            lines.append(f"columns MISSING: {', '.join(self.columns_missing)}")
        lines.append(
            f"dates parsed: {self.date_parse_share:.1%}"
            + (f", {self.date_range[0]} .. {self.date_range[1]}" if self.date_range else "")
        )
        for cls in ("burglary", "theft", "other"):
            values = self.label_values.get(cls, {})
            shown = ", ".join(f"{v!r}: {n}" for v, n in list(values.items())[:12])
            lines.append(f"{cls}: {sum(values.values())} rows ({shown or 'none'})")
        for value, hint in self.near_misses.items():
            lines.append(f"near miss: {value!r} {hint}")
        if self.coordinates_share is not None:
            lines.append(f"rows with coordinates: {self.coordinates_share:.1%}")
        if self.rows_per_day:
            lines.append(
                "rows per day: " + ", ".join(f"{k} {v:g}" for k, v in self.rows_per_day.items())
            )
        lines += [f"PROBLEM: {p}" for p in self.problems]
        lines.append("OK" if self.ok else "NOT OK")
        return "\n".join(lines)


def sample_source_rows(spec: CitySpec, n: int) -> pd.DataFrame:
    """Up to ``n`` rows of the feed, with the source's own column names."""
    kind = spec.source.kind
    if kind == "csv":
        from superdan_assets.sources.export import list_export_files

        files = list_export_files(spec.resolve_path(spec.source.path), spec.source.exclude_files)
        per_file = max(1, n // len(files))
        frames = [
            pd.read_csv(f, dtype=str, nrows=per_file, keep_default_na=False, na_values=[""])
            for f in files
        ]
        return pd.concat(frames, ignore_index=True).head(n)
    from superdan_assets.sources.http import retrying_client

    client = retrying_client(
        spec.source.max_attempts, spec.source.timeout_seconds, spec.source.backoff_seconds, 30.0
    )
    if kind == "soda":
        mapper = SpecMapper(spec)
        records = client.get_json(
            spec.source.url,
            {"$limit": n, "$order": f"{mapper.date_column} DESC"},
            what="SODA sample",
        )
        return pd.DataFrame.from_records(records)
    payload = client.get_json(
        spec.source.url,
        {
            "where": "1=1",
            "outFields": "*",
            "returnGeometry": "true",
            "outSR": 4326,
            "resultRecordCount": min(n, 2000),
            "f": "json",
        },
        what="ArcGIS sample",
    )
    rows = [
        {
            **(f.get("attributes") or {}),
            "x": (f.get("geometry") or {}).get("x"),
            "y": (f.get("geometry") or {}).get("y"),
        }
        for f in payload.get("features") or []
    ]
    return pd.DataFrame.from_records(rows)


def check_spec(spec: CitySpec, sample: pd.DataFrame) -> CheckReport:
    """What the spec makes of ``sample`` (source columns)."""
    mapper = SpecMapper(spec)
    report = CheckReport(city=spec.name, source=spec.source.kind, sample_rows=len(sample))
    available = [str(c) for c in sample.columns]
    norm = {normalise_header(c): c for c in available}
    for field_name, source in mapper.columns.items():
        if source in available or normalise_header(source) in norm:
            report.columns_found[field_name] = source
        else:
            report.columns_missing.append(f"{source!r} (for {field_name})")
    if report.columns_missing:
        report.problems.append("columns named in the spec are missing from the data")
    if sample.empty:
        report.problems.append("the source returned no rows")
        return report
    date_col = norm.get(normalise_header(mapper.date_column), mapper.date_column)
    if date_col in sample.columns:
        from superdan_assets.cities.mapping import parse_dates

        ok = pd.Series(False, index=sample.index)
        parsed_all = []
        for i in sample.index:
            try:
                value = parse_dates(
                    sample.loc[[i], date_col],
                    spec.date.formats,
                    spec.date.timezone,
                    spec.timezone,
                    column=date_col,
                    where="sample",
                )
                ok[i] = value.notna().all()
                parsed_all.append(value)
            except SchemaError:
                pass
        report.date_parse_share = float(ok.mean())
        if parsed_all:
            dates = pd.concat(parsed_all).dropna()
            if len(dates):
                report.date_range = (str(dates.min()), str(dates.max()))
                per_day = dates.dt.normalize().value_counts()
                report.rows_per_day = {
                    "days": float(len(per_day)),
                    "median": float(per_day.median()),
                    "min": float(per_day.min()),
                    "max": float(per_day.max()),
                }
        if report.date_parse_share < 0.99:
            report.problems.append(
                f"only {report.date_parse_share:.1%} of dates parse with {list(spec.date.formats)}"
            )
    label_col = norm.get(normalise_header(spec.labels.column), spec.labels.column)
    if label_col in sample.columns:
        values = sample[label_col].astype("string")
        frame = pd.DataFrame({"primary_type": values})
        for fld, _ in LabelRule.from_spec(spec).exclude:
            src = mapper.columns.get(fld)
            if src and norm.get(normalise_header(src)) in sample.columns:
                frame[fld] = sample[norm[normalise_header(src)]].astype("string")
        labels = incident_labels(frame, LabelRule.from_spec(spec))
        for cls, mask in (
            ("burglary", labels == 1),
            ("theft", labels == 0),
            ("other", labels.isna()),
        ):
            counts = values[mask.fillna(False).astype(bool)].value_counts()
            report.label_values[cls] = {str(k): int(v) for k, v in counts.items()}
        words = list(spec.labels.burglary_words) + list(spec.labels.theft_words)
        for value in report.label_values.get("other", {}):
            folded = " ".join(value.split()).casefold()
            contains = [w for w in words if w in folded]
            close = difflib.get_close_matches(folded, words, n=1, cutoff=0.8)
            if contains or close:
                hint = f"contains {contains[0]!r}" if contains else f"is close to {close[0]!r}"
                report.near_misses[value] = (
                    f"{hint} but is not a label value (labels match whole values; add it to "
                    "[labels] if it belongs)"
                )
        if not report.label_values.get("burglary") or not report.label_values.get("theft"):
            report.problems.append(
                "the sample has no burglary or no theft rows by the spec's labels"
            )
    lat = mapper.columns.get("latitude")
    if lat and norm.get(normalise_header(lat)) in sample.columns:
        numbers = pd.to_numeric(sample[norm[normalise_header(lat)]], errors="coerce")
        report.coordinates_share = float(numbers.notna().mean())
    return report
