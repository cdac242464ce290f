"""City specs: validation errors that name the file, the key and the problem; the packaged
specs; how names, paths and the environment choose cities."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from superdan_assets.cities import (
    SpecError,
    load_cities,
    load_city,
    load_spec_file,
    parse_spec,
    resolve_spec,
)
from superdan_assets.cities.catalog import packaged_cities
from superdan_assets.sources.export import CsvSource
from superdan_assets_tests.cities.conftest import SPRINGFIELD, write_spec

# -- errors name the file, the key and the problem --------------------------------------------


def spec_error(tmp_path: Path, text: str) -> tuple[Path, str]:
    """Write ``text`` as a spec file, load it, return the file and the error message."""
    path = write_spec(tmp_path, text)
    with pytest.raises(SpecError) as failure:
        load_spec_file(path)
    return path, str(failure.value)


@pytest.mark.parametrize(
    ("case", "edit", "key", "problem"),
    [
        (
            "typo in a key",
            ('timezone = "America/Chicago"', 'timezon = "America/Chicago"'),
            "city.timezon",
            "unknown key (a typo?)",
        ),
        ("typo in a section", ("[columns]", "[colums]"), "colums", "unknown key (a typo?)"),
        (
            "missing required key",
            ('theft = ["theft"]\n', ""),
            "labels.theft",
            "required key is missing",
        ),
        (
            "bad timezone",
            ('timezone = "America/Chicago"', 'timezone = "Mars/Olympus_Mons"'),
            "city.timezone",
            "'Mars/Olympus_Mons' is not an IANA timezone",
        ),
        (
            "bad city name",
            ('name = "springfield"', 'name = "Spring Field"'),
            "city.name",
            "'Spring Field' must be lower-case letters, digits or '_'",
        ),
        (
            "wrong spec_version",
            ("spec_version = 1", "spec_version = 2"),
            "spec_version",
            "2 is not supported",
        ),
        ("no spec_version", ("spec_version = 1", ""), "spec_version", "required key is missing"),
        (
            "burglary and theft overlap",
            ('burglary = ["burglary"]', 'burglary = ["burglary", "  THEFT "]'),
            "labels",
            "values ['theft'] are listed as both burglary and theft",
        ),
        (
            "csv without path",
            ('path = "exports"\n', ""),
            "source",
            "kind 'csv' needs 'path'",
        ),
        (
            "soda without url",
            ('kind = "csv"\npath = "exports"', 'kind = "soda"'),
            "source",
            "kind 'soda' needs 'url'",
        ),
        (
            "unknown canonical field",
            ('longitude = "lon"', 'longitude = "lon"\nweather = "sky"'),
            "columns",
            "unknown canonical field(s) ['weather']",
        ),
        (
            "date not mapped",
            ('date = "occurred"\n', ""),
            "columns",
            "'date' must be mapped",
        ),
        (
            "bad date format",
            ('format = "%Y-%m-%d %H:%M:%S"', 'format = "yyyy-mm-dd"'),
            "date.format",
            "'yyyy-mm-dd' is neither a strptime format",
        ),
        (
            "bad date timezone",
            ('timezone = "UTC"', 'timezone = "Europe/Paris"'),
            "date.timezone",
            "'local' or 'UTC'",
        ),
    ],
)
def test_a_spec_error_names_the_file_the_key_and_the_problem(tmp_path, case, edit, key, problem):
    old, new = edit
    assert old in SPRINGFIELD, case
    path, message = spec_error(tmp_path, SPRINGFIELD.replace(old, new, 1))
    assert message.startswith(f"city spec {path}:"), message
    # The key starts a problem line: "<file>: <key>: <problem>" or "\n  <key>: <problem>".
    assert re.search(rf"(: |\n  ){re.escape(key)}: ", message), message
    assert problem in message, message


def test_every_problem_of_a_spec_is_reported_at_once(tmp_path):
    text = SPRINGFIELD.replace('name = "springfield"', 'name = "Spring Field"').replace(
        "[columns]", "[colums]"
    )
    _, message = spec_error(tmp_path, text)
    assert "city.name: 'Spring Field'" in message
    assert "colums: unknown key (a typo?)" in message
    assert "columns: required key is missing" in message


def test_invalid_toml_and_a_missing_file_name_the_file(tmp_path):
    path, message = spec_error(tmp_path, SPRINGFIELD + "\n[[[\n")
    assert message.startswith(f"city spec {path}: not valid TOML")
    with pytest.raises(SpecError, match=r"nowhere\.toml: file not found"):
        load_spec_file(tmp_path / "nowhere.toml")


def test_parse_spec_names_the_given_place():
    with pytest.raises(SpecError, match=r"^city spec my-tool: spec_version: 7 is not supported"):
        parse_spec(SPRINGFIELD.replace("spec_version = 1", "spec_version = 7"), where="my-tool")


def test_a_valid_spec_reads_with_defaults(tmp_path):
    spec = load_spec_file(write_spec(tmp_path))
    assert (spec.name, spec.timezone, spec.title) == (
        "springfield",
        "America/Chicago",
        "Springfield",
    )
    assert spec.spec_path == str((tmp_path / "springfield.toml").resolve())
    assert spec.date.formats == ("%Y-%m-%d %H:%M:%S",)
    assert spec.labels.theft_words == ("theft",) and spec.labels.drop_words == ()
    assert spec.bounds is None and spec.codes.widths == {}
    assert "id" not in spec.columns  # ids are derived from the row's content


# -- packaged specs -----------------------------------------------------------------------------


def test_packaged_specs_load():
    assert {"chicago", "rochester"} <= set(packaged_cities())
    chicago, rochester = resolve_spec("chicago"), resolve_spec("rochester")

    assert (chicago.name, chicago.timezone, chicago.source.kind) == (
        "chicago",
        "America/Chicago",
        "soda",
    )
    assert chicago.date.formats == ("%m/%d/%Y %I:%M:%S %p", "iso")
    assert chicago.codes.widths["beat"] == 4 and chicago.codes.widths["district"] == 3
    assert chicago.labels.exclude == {"iucr": ["0840", "0841", "0842", "0843"]}
    assert chicago.bounds is not None

    assert (rochester.name, rochester.timezone, rochester.source.kind) == (
        "rochester",
        "America/New_York",
        "arcgis",
    )
    assert (rochester.date.formats, rochester.date.timezone) == (("epoch_ms",), "UTC")
    assert rochester.labels.theft_words == ("larceny",)
    assert "description" not in rochester.columns  # Statute_Description leaks the label
    assert rochester.codes.widths == {}


def test_an_unknown_city_name_lists_the_packaged_ones():
    with pytest.raises(SpecError, match=r"unknown city 'springfield'.*'chicago'.*'rochester'"):
        resolve_spec("springfield")
    with pytest.raises(SpecError, match="empty city name"):
        resolve_spec("  ")


def test_a_spec_path_resolves_absolute_or_relative_to_the_working_folder(tmp_path, monkeypatch):
    path = write_spec(tmp_path / "specs")
    assert resolve_spec(path).name == "springfield"
    assert resolve_spec(str(path)).name == "springfield"
    monkeypatch.chdir(tmp_path)
    assert resolve_spec("specs/springfield.toml").spec_path == str(path.resolve())


# -- the environment ------------------------------------------------------------------------------


def test_the_default_city_is_chicago_from_its_live_feed():
    spec = load_city()
    assert (spec.name, spec.source.kind) == ("chicago", "soda")
    assert [c.name for c in load_cities()] == ["chicago"]


def test_superdan_export_path_switches_the_default_city_to_csv(tmp_path, monkeypatch):
    exports = tmp_path / "exports"
    exports.mkdir()
    monkeypatch.setenv("SUPERDAN_EXPORT_PATH", str(exports))

    chicago = load_city()
    assert (chicago.name, chicago.source.kind) == ("chicago", "csv")
    assert Path(chicago.source.path) == exports.resolve()
    assert chicago.columns == resolve_spec("chicago").columns  # only the source changed
    assert load_city("chicago").source.kind == "csv"
    # Only the default city: another city keeps its own feed.
    assert load_city("rochester").source.kind == "arcgis"

    monkeypatch.setenv("SUPERDAN_CITIES", "rochester")
    kinds = {c.name: c.source.kind for c in load_cities()}
    assert kinds == {"chicago": "csv", "rochester": "arcgis"}


def test_superdan_export_path_follows_superdan_city(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERDAN_CITY", "rochester")
    monkeypatch.setenv("SUPERDAN_EXPORT_PATH", str(tmp_path))
    assert (load_city().name, load_city().source.kind) == ("rochester", "csv")
    assert load_city("chicago").source.kind == "soda"


def test_load_cities_takes_names_and_spec_paths(tmp_path, monkeypatch):
    path = write_spec(tmp_path / "specs")
    monkeypatch.setenv("SUPERDAN_CITIES", f" rochester , {path} ,")

    cities = load_cities()

    assert [c.name for c in cities] == ["chicago", "rochester", "springfield"]
    assert cities[2].spec_path == str(path.resolve())

    monkeypatch.setenv("SUPERDAN_CITY", str(path))
    monkeypatch.setenv("SUPERDAN_CITIES", "rochester")
    assert [c.name for c in load_cities()] == ["springfield", "rochester"]
    assert load_city().name == "springfield"


def test_two_specs_of_one_city_name_are_an_error(tmp_path, monkeypatch):
    first = write_spec(tmp_path / "a")
    second = write_spec(tmp_path / "b")
    monkeypatch.setenv("SUPERDAN_CITIES", f"{first},{second}")
    with pytest.raises(SpecError, match=r"two specs define city 'springfield'"):
        load_cities()


# -- paths in a spec ------------------------------------------------------------------------------


def write_day(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "day.csv").write_text(
        "occurred,address,premise,offense,lat,lon\n"
        "2020-06-01 15:00:00,1 Main St,House,Burglary,39.8,-89.6\n",
        encoding="utf-8",
    )


def test_a_relative_source_path_resolves_against_the_spec_folder(tmp_path, monkeypatch):
    spec = load_spec_file(write_spec(tmp_path / "specs"))
    write_day(tmp_path / "specs" / "exports")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working folder does not matter

    source = CsvSource(spec)

    assert source.path == (tmp_path / "specs" / "exports").resolve()
    frame = source.fetch(pd.Timestamp("2020-06-01"), pd.Timestamp("2020-06-02"))
    assert frame["date"].tolist() == [pd.Timestamp("2020-06-01 10:00")]  # 15:00 UTC, CDT


def test_parent_and_absolute_source_paths(tmp_path):
    write_day(tmp_path / "data")
    up = load_spec_file(
        write_spec(tmp_path / "specs", SPRINGFIELD.replace('"exports"', '"../data"'))
    )
    assert CsvSource(up).path == (tmp_path / "data").resolve()

    absolute = str((tmp_path / "data").resolve())
    text = SPRINGFIELD.replace('"exports"', f'"{absolute}"')
    assert CsvSource(load_spec_file(write_spec(tmp_path / "other", text))).path == Path(absolute)
    # A spec built in code (no file) keeps the path as given.
    assert parse_spec(text).resolve_path("exports") == Path("exports")


# -- the city's own model selection -------------------------------------------------------------


def test_a_city_trains_with_its_own_selection_when_its_spec_names_one(tmp_path):
    import json
    import shutil

    from superdan_assets.assets.training import city_model_params
    from superdan_assets.ml.selected import DEFAULT_SELECTION

    plain = load_spec_file(write_spec(tmp_path))
    assert plain.selection_path() is None
    params, where = city_model_params(plain, {"num_leaves": 15})
    assert params == {"num_leaves": 15} and "packaged Chicago" in where

    record = json.loads(DEFAULT_SELECTION.read_text())
    record["winner"] = {**record["winner"], "name": "springfield-winner"}
    record["winner"]["params"] = {**record["winner"]["params"], "num_leaves": 7, "smoothing": 5.0}
    (tmp_path / "selections").mkdir()
    (tmp_path / "selections" / "springfield.json").write_text(json.dumps(record))
    text = SPRINGFIELD + '\n[model]\nselection = "selections/springfield.json"\n'
    spec = load_spec_file(write_spec(tmp_path, text))
    assert spec.selection_path() == (tmp_path / "selections" / "springfield.json").resolve()
    params, where = city_model_params(spec, {"num_leaves": 15})
    # The city's winner, with the run's own hyperparameters over it.
    assert params["smoothing"] == 5.0 and params["num_leaves"] == 15
    assert "springfield-winner" in where and "springfield.json" in where

    # A record that is not there, or not a selection, is an error naming the spec and the file.
    shutil.rmtree(tmp_path / "selections")
    with pytest.raises(ValueError, match=r"springfield: \[model\] selection in .*springfield.toml"):
        city_model_params(spec, {})
    (tmp_path / "selections").mkdir()
    (tmp_path / "selections" / "springfield.json").write_text('{"cutoff": "2018-01-01"}')
    with pytest.raises(ValueError, match="missing"):
        city_model_params(spec, {})
    with pytest.raises(SpecError, match="model.selection"):
        load_spec_file(write_spec(tmp_path, SPRINGFIELD + '\n[model]\nselection = ""\n'))
