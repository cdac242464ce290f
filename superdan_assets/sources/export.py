"""A city's CSV files (a bulk export, e.g. the Chicago portal's "Export > CSV") as a source.

Reads one file or a folder of ``.csv`` / ``.csv.gz`` files; the city's spec says which column
holds which canonical field and how dates are written (:mod:`superdan_assets.cities.mapping`).
Extra columns are ignored, so the Chicago export's two header shapes (with or without the live
export's ``Year`` and ``Location``) both read.

Why a cache: a daily partition asks for one day, and a 7-year CSV takes ~12 s to parse. So each
file is parsed once (pyarrow, multi-threaded) into canonical Parquet under ``cache_dir``, keyed
by the file's path, size and modification time and the spec's content; later requests read only
the files whose date range overlaps and only the matching rows (Parquet predicate push-down).

Memory: with a cache, a request holds one parsed file at a time plus the rows in its range, so a
backfill of decades in runs of a year never holds more than a file and a year (the first run
parses every file once, to learn its dates, and keeps none of them). Without a cache the parsed
frames are kept in memory for the life of the source, so a single-run backfill still parses each
file exactly once.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from superdan_assets.cities.mapping import SpecMapper
from superdan_assets.cities.spec import CitySpec
from superdan_assets.ml.schema import (
    CANONICAL_COLUMNS,
    SchemaError,
    concat_canonical,
    empty_frame,
)
from superdan_assets.sources.base import Progress, SourceError, naive_local, noop_progress

_CACHE_VERSION = "2"


@dataclass(frozen=True)
class _FileInfo:
    path: Path
    key: str
    min_date: pd.Timestamp | None
    max_date: pd.Timestamp | None
    rows: int


def list_export_files(path: str | os.PathLike, exclude: tuple[str, ...] = ()) -> list[Path]:
    """The CSV files at ``path`` (a file or a folder), sorted; a clear error if none.

    ``exclude``: file-name prefixes that are not incident files (Chicago's IUCR code table).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise SourceError(
            f"CSV source path {str(p)!r} does not exist; point the city spec's [source] path "
            "(or SUPERDAN_EXPORT_PATH) at a folder of .csv or .csv.gz files"
        )
    if p.is_file():
        return [p]
    files = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith((".csv", ".csv.gz")))
    files = [f for f in files if not f.name.startswith(tuple(exclude))]
    if not files:
        raise SourceError(f"no .csv or .csv.gz files in folder {str(p)!r}")
    return files


def read_export_file(path: Path, spec: CitySpec) -> pd.DataFrame:
    """Parse one CSV file into a canonical frame of ``spec``'s city, or raise naming the file,
    the column and the problem (a column the spec names but the header lacks included)."""
    mapper = SpecMapper(spec)
    try:
        header = _peek_header(path)
        found = mapper.match_columns(header, where=str(path))
        wanted = list(dict.fromkeys(found.values()))
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                include_columns=wanted,
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise SchemaError(f"{path}: cannot parse CSV: {exc}") from exc
    return mapper.to_canonical(table.to_pandas(), where=str(path))


def _peek_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            return next(csv.reader([fh.readline()]), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot read the CSV header: {exc}") from exc


def _spec_fingerprint(spec: CitySpec) -> str:
    doc = spec.model_dump(include={"city", "columns", "date", "codes"}, mode="json")
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


def _file_key(path: Path, spec_key: str) -> str:
    st = path.stat()
    raw = f"{_CACHE_VERSION}|{spec_key}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


class CsvSource:
    """A city's CSV files as a :class:`~superdan_assets.sources.base.CrimeSource`.

    ``path`` defaults to the spec's ``[source] path`` (resolved against the spec's folder).
    """

    def __init__(
        self,
        spec: CitySpec,
        path: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        if path is None:
            if not spec.source.path:
                raise SourceError(f"city {spec.name!r}: its spec has no [source] path")
            path = spec.resolve_path(spec.source.path)
        self.spec = spec
        self.city = spec.name
        self.name = f"{spec.name}_csv"
        self.timezone = spec.timezone
        self.path = Path(path)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._spec_key = _spec_fingerprint(spec)
        self._memory: dict[str, pd.DataFrame] = {}
        self._lock = threading.Lock()

    def _files(self) -> list[Path]:
        return list_export_files(self.path, self.spec.source.exclude_files)

    # -- cache -------------------------------------------------------------------------
    def _cache_paths(self, info_key: str, path: Path) -> tuple[Path, Path]:
        assert self.cache_dir is not None
        stem = path.name.split(".")[0]
        return (
            self.cache_dir / f"{stem}-{info_key}.parquet",
            self.cache_dir / f"{stem}-{info_key}.json",
        )

    def _describe(self, path: Path, progress: Progress) -> _FileInfo:
        return self._describe_and_parse(path, progress)[0]

    def _describe_and_parse(
        self, path: Path, progress: Progress
    ) -> tuple[_FileInfo, pd.DataFrame | None]:
        """The file's dates and rows, and its parsed frame when it had to be parsed now (the
        caller may use it once; with a cache nothing keeps it)."""
        key = _file_key(path, self._spec_key)
        if self.cache_dir:
            data, meta = self._cache_paths(key, path)
            if data.exists() and meta.exists():
                m = json.loads(meta.read_text())
                info = _FileInfo(
                    path,
                    key,
                    pd.Timestamp(m["min_date"]) if m["min_date"] else None,
                    pd.Timestamp(m["max_date"]) if m["max_date"] else None,
                    m["rows"],
                )
                return info, None
        frame = self._load(path, key, progress)
        info = _FileInfo(
            path,
            key,
            frame["date"].min() if len(frame) else None,
            frame["date"].max() if len(frame) else None,
            len(frame),
        )
        return info, frame

    def _load(self, path: Path, key: str, progress: Progress) -> pd.DataFrame:
        with self._lock:
            if key in self._memory:
                return self._memory[key]
            if self.cache_dir:
                data, _ = self._cache_paths(key, path)
                if data.exists():
                    return pd.read_parquet(data)
            progress(f"parsing CSV file {path.name}")
            frame = read_export_file(path, self.spec)
            if self.cache_dir:
                self._write_cache(path, key, frame)
            else:
                self._memory[key] = frame
            return frame

    def _write_cache(self, path: Path, key: str, frame: pd.DataFrame) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        data, meta = self._cache_paths(key, path)
        tmp = data.with_name(f".{data.name}.{os.getpid()}.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, data)
        meta_doc = {
            "source_file": str(path),
            "rows": len(frame),
            "min_date": str(frame["date"].min()) if len(frame) else None,
            "max_date": str(frame["date"].max()) if len(frame) else None,
        }
        tmp_meta = meta.with_name(f".{meta.name}.{os.getpid()}.tmp")
        tmp_meta.write_text(json.dumps(meta_doc))
        os.replace(tmp_meta, meta)

    # -- CrimeSource ---------------------------------------------------------------------
    def fetch(
        self, start: pd.Timestamp, end: pd.Timestamp, progress: Progress | None = None
    ) -> pd.DataFrame:
        progress = progress or noop_progress
        start = naive_local(start, self.timezone)
        end = naive_local(end, self.timezone)
        parts = []
        files = self._files()
        for i, path in enumerate(files, 1):
            info, parsed = self._describe_and_parse(path, progress)
            if info.min_date is None or info.max_date < start or info.min_date >= end:
                continue
            key = info.key
            frame = parsed if parsed is not None else self._memory.get(key)
            if frame is not None:
                part = frame[(frame["date"] >= start) & (frame["date"] < end)]
                del frame, parsed
            elif self.cache_dir:
                data, _ = self._cache_paths(key, path)
                part = pd.read_parquet(data, filters=[("date", ">=", start), ("date", "<", end)])
            else:
                frame = self._load(path, key, progress)
                part = frame[(frame["date"] >= start) & (frame["date"] < end)]
            progress(f"CSV file {i}/{len(files)} {path.name}: {len(part)} rows in range")
            parts.append(part)
        result = concat_canonical(parts) if parts else empty_frame()
        return result[CANONICAL_COLUMNS].reset_index(drop=True)

    def date_range(self, progress: Progress | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last occurrence time across the export files (parses uncached files)."""
        infos = [self._describe(p, progress or noop_progress) for p in self._files()]
        dated = [i for i in infos if i.min_date is not None]
        if not dated:
            raise SourceError(f"the CSV files at {str(self.path)!r} contain no incidents")
        return min(i.min_date for i in dated), max(i.max_date for i in dated)

    def count_rows(self) -> int:
        """Rows across all export files (what a full backfill must store)."""
        return sum(self._describe(p, noop_progress).rows for p in self._files())


class ExportSource(CsvSource):
    """The Chicago portal's bulk CSV export (kept for callers that predate city specs):
    a :class:`CsvSource` with the packaged Chicago spec, or another city's ``spec``."""

    def __init__(
        self,
        path: str | os.PathLike,
        cache_dir: str | os.PathLike | None = None,
        spec: CitySpec | None = None,
    ):
        if spec is None:
            from superdan_assets.cities.catalog import resolve_spec

            spec = resolve_spec("chicago")
        super().__init__(spec, path=path, cache_dir=cache_dir)
