"""Labels, location wording and the fixed ``crime_features`` schema."""

from __future__ import annotations

import pandas as pd
import pytest

from superdan_assets.ml.labels import (
    FEATURE_ROW_COLUMNS,
    FEATURE_ROW_DTYPES,
    LEAK_COLUMNS,
    MODEL_INPUT_COLUMNS,
    LabelRule,
    build_feature_rows,
    check_feature_rows,
    empty_feature_rows,
    incident_labels,
    label_incidents,
    normalise_location_description,
    normalise_location_text,
)
from superdan_assets.ml.schema import empty_frame
from superdan_assets_tests.ml.incidents import canonical, incident


def test_theft_is_0_burglary_is_1_and_other_crimes_are_dropped():
    raw = canonical(
        [
            incident(primary_type="THEFT", fbi_code="06", iucr="0820"),
            incident(primary_type="BURGLARY", fbi_code="05", iucr="0610"),
            incident(primary_type="BATTERY", fbi_code="08B", iucr="0486"),
            incident(primary_type="DECEPTIVE PRACTICE", fbi_code="11", iucr="1150"),
        ]
    )
    labelled = label_incidents(raw)
    assert labelled["primary_type"].tolist() == ["THEFT", "BURGLARY"]
    assert labelled["label"].tolist() == [0, 1]
    assert str(labelled["label"].dtype) == "int8"


@pytest.mark.parametrize("iucr", ["0840", "0841", "0842", "0843"])
def test_financial_identity_thefts_are_excluded(iucr):
    raw = canonical([incident(iucr=iucr), incident(iucr="0820")])
    assert label_incidents(raw)["iucr"].tolist() == ["0820"]


def test_rochester_larceny_is_theft_case_insensitively():
    raw = canonical(
        [
            incident(primary_type="Larceny", fbi_code=None, iucr=None),
            incident(primary_type="Burglary", fbi_code=None, iucr=None),
            incident(primary_type="Robbery", fbi_code=None, iucr=None),
        ],
        city="rochester",
    )
    assert incident_labels(raw).tolist() == [0, 1, pd.NA]


def test_primary_type_alone_decides_the_fbi_code_does_not():
    # The FBI-code fallback is gone: a row without a primary_type is not labelled, whatever
    # its FBI code says (primary_type is required in raw data).
    frame = pd.DataFrame(
        {
            "city": ["chicago"] * 4,
            "primary_type": [None, None, "THEFT", "BURGLARY"],
            "fbi_code": ["06", "05", "05", "06"],
            "iucr": [None] * 4,
        }
    )
    assert incident_labels(frame).tolist() == [pd.NA, pd.NA, 0, 1]


def test_an_explicit_rule_labels_whole_values_case_insensitively():
    rule = LabelRule(
        burglary=frozenset({"break-in"}),
        theft=frozenset({"theft", "shoplifting"}),
        drop=frozenset({"identity theft"}),
    )
    frame = pd.DataFrame(
        {
            "primary_type": [
                " Theft ",
                "AUTO THEFT",
                "Break-In",
                "shop   lifting",
                "SHOPLIFTING",
                "Identity Theft",
                None,
            ]
        }
    )
    assert incident_labels(frame, rule).tolist() == [0, pd.NA, 1, pd.NA, 0, pd.NA, pd.NA]


def test_without_a_rule_the_frame_must_name_one_city():
    frame = pd.DataFrame({"primary_type": ["THEFT"]})
    with pytest.raises(ValueError, match="pass the city's LabelRule"):
        incident_labels(frame)
    mixed = pd.DataFrame({"primary_type": ["THEFT", "Larceny"], "city": ["chicago", "rochester"]})
    with pytest.raises(ValueError, match="names no single city"):
        incident_labels(mixed)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("RESIDENCE-GARAGE", "RESIDENCE - GARAGE"),
        ("residence -garage", "RESIDENCE - GARAGE"),
        ("HOTEL/MOTEL", "HOTEL / MOTEL"),
        ("  cha  hallway/stairwell/elevator ", "CHA HALLWAY / STAIRWELL / ELEVATOR"),
        ("VEHICLE NON-COMMERCIAL", "VEHICLE NON-COMMERCIAL"),
        ("JAIL / LOCK-UP FACILITY", "JAIL / LOCK-UP FACILITY"),
        (
            "AIRPORT TERMINAL LOWER LEVEL - NON-SECURE AREA",
            "AIRPORT TERMINAL LOWER LEVEL - NON-SECURE AREA",
        ),
        ("ATM (AUTOMATIC TELLER MACHINE)", "ATM (AUTOMATIC TELLER MACHINE)"),
    ],
)
def test_spelling_is_normalised_generally(old, new):
    assert normalise_location_text(old) == new


def test_location_column_keeps_nulls_and_blanks_null():
    values = pd.Series(["RESIDENCE-GARAGE", None, "", "street"], dtype="string")
    out = normalise_location_description(values)
    assert out.tolist()[0] == "RESIDENCE - GARAGE"
    assert out.isna().tolist() == [False, True, True, False]
    assert out.tolist()[3] == "STREET"


def test_feature_rows_have_the_fixed_schema_and_no_leak_columns():
    raw = canonical(
        [
            incident(
                date="2017-03-02T10:00:00",
                location_description="RESIDENCE-GARAGE",
                primary_type="BURGLARY",
                fbi_code="05",
                iucr="0610",
            ),
            incident(date="2017-03-01T09:00:00"),
        ]
    )
    rows = build_feature_rows(raw)
    check_feature_rows(rows)
    assert list(rows.columns) == FEATURE_ROW_COLUMNS
    assert set(FEATURE_ROW_COLUMNS) == {*MODEL_INPUT_COLUMNS, "label"}
    assert not set(LEAK_COLUMNS) & set(rows.columns)
    # Sorted by time; wording normalised.
    assert rows["label"].tolist() == [0, 1]
    assert rows["location_description"].tolist() == ["STREET", "RESIDENCE - GARAGE"]


@pytest.mark.parametrize(
    "raw",
    [
        empty_frame(),
        canonical([incident(primary_type="BATTERY", fbi_code="08B", iucr="0486")]),
        canonical(
            [
                incident(
                    location_description=None,
                    beat=None,
                    ward=None,
                    latitude=None,
                    longitude=None,
                    domestic=None,
                )
            ]
        ),
    ],
    ids=["empty day", "no thefts or burglaries", "nulls everywhere optional"],
)
def test_schema_is_stable_whatever_the_day_contains(raw):
    rows = build_feature_rows(raw)
    assert {c: str(t) for c, t in rows.dtypes.items()} == {
        c: str(pd.Series(dtype=t).dtype) for c, t in FEATURE_ROW_DTYPES.items()
    }


def test_check_feature_rows_names_the_problem():
    rows = empty_feature_rows()
    check_feature_rows(rows)
    with pytest.raises(ValueError, match="wrong dtypes"):
        check_feature_rows(rows.astype({"label": "float64"}))
    with pytest.raises(ValueError, match="columns"):
        check_feature_rows(rows.drop(columns=["beat"]))
