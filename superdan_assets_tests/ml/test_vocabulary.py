"""The learnt location vocabulary: renames found in the data, unseen wordings mapped, in the model."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from superdan_assets.ml.features import IncidentFeatures
from superdan_assets.ml.labels import build_feature_rows, normalise_location_text
from superdan_assets.ml.vocabulary import LocationVocabulary, restates, words
from superdan_assets_tests.conftest import REPO_ROOT
from superdan_assets_tests.ml.incidents import canonical, incident

PORTAL_RENAMES = json.loads(
    (REPO_ROOT / "benchmarks" / "chicago_location_renames.json").read_text()
)

#: Real Chicago wordings that look like others: a rule that maps by any shared word would
#: send new wordings to these.
CONFUSERS = [
    "RESIDENCE",
    "RESIDENCE - GARAGE",
    "APARTMENT",
    "STREET",
    "OTHER COMMERCIAL TRANSPORTATION",
    "PARKING LOT / GARAGE (NON.RESID.)",
    "AIRPORT EXTERIOR - SECURE AREA",
    "AIRPORT TERMINAL LOWER LEVEL - SECURE AREA",
    "VEHICLE NON-COMMERCIAL",
    "VEHICLE - COMMERCIAL",
    "BOWLING ALLEY",
    "ALLEY",
    "CTA BUS STOP",
    "SCHOOL, PUBLIC, GROUNDS",
]


def _vocabulary(wordings: list[str]) -> LocationVocabulary:
    """A vocabulary that knows ``wordings`` (spelling-normalised), the first most frequent."""
    counts = {normalise_location_text(w): 1000 - i for i, w in enumerate(wordings)}
    return LocationVocabulary(counts)


def test_words_join_negations_drop_single_letters_and_are_capped():
    assert words("PARKING LOT/GARAGE(NON.RESID.)") == ("PARKING", "LOT", "GARAGE", "NON-RESID")
    assert words("VEHICLE NON-COMMERCIAL") == ("VEHICLE", "NON-COMMERCIAL")
    assert words("RIDE SHARE (E.G., UBER)") == ("RIDE", "SHARE", "UBER")
    assert len(words(" ".join(f"W{i}" for i in range(5000)))) <= 24


@pytest.mark.parametrize(
    ("new", "known", "restated"),
    [
        ("OTHER (SPECIFY)", "OTHER", True),  # elaborated
        ("POLICE FACILITY / VEHICLE PARKING LOT", "POLICE FACILITY/VEH PARKING LOT", True),
        ("RESIDENCE - YARD (FRONT / BACK)", "RESIDENTIAL YARD (FRONT/BACK)", True),  # one stem
        ("AIRPORT EXTERIOR - NON-SECURE AREA", "AIRPORT EXTERIOR - SECURE AREA", False),
        ("VEHICLE NON-COMMERCIAL", "VEHICLE - COMMERCIAL", False),
        ("BAR OR TAVERN", "BARBERSHOP", False),  # BAR is a word, not an abbreviation
        ("ALLEY", "BOWLING ALLEY", False),  # more general is not a restatement
        (
            "AIRPORT TERMINAL UPPER LEVEL - SECURE AREA",
            "AIRPORT TERMINAL LOWER LEVEL - SECURE AREA",
            False,
        ),
    ],
)
def test_restates(new, known, restated):
    assert (restates(words(new), words(known)) > 0) is restated


@pytest.mark.parametrize(("old", "new"), sorted(PORTAL_RENAMES["after_2018"].items()))
def test_the_portals_real_renames_map_back_to_the_wording_the_model_knows(old, new):
    vocabulary = _vocabulary(CONFUSERS + list(PORTAL_RENAMES["after_2018"]))
    assert vocabulary.map(normalise_location_text(new)) == normalise_location_text(old)


def test_a_wording_that_restates_nothing_stays_unseen_and_known_ones_stay_themselves():
    vocabulary = _vocabulary(CONFUSERS)
    assert vocabulary.map("SPACESHIP") == "SPACESHIP"
    assert vocabulary.map("ALLEY") == "ALLEY"
    assert vocabulary.map("AIRPORT EXTERIOR - NON-SECURE AREA") == (
        "AIRPORT EXTERIOR - NON-SECURE AREA"
    )


def _usage(rows: list[tuple[str, str, str, int, float]]):
    """(wording, first day, last day, rows per day, burglary share) -> training columns."""
    values, dates, labels = [], [], []
    for wording, first, last, per_day, share in rows:
        days = pd.date_range(first, last, freq="D")
        for day in days:
            for i in range(per_day):
                values.append(wording)
                dates.append(day + pd.Timedelta(hours=i))
                labels.append(1.0 if (i + day.day) % round(1 / share) == 0 else 0.0)
    return np.asarray(values, dtype=object), np.asarray(dates, dtype="datetime64[ns]"), labels


def test_a_rename_inside_the_window_is_found_from_when_the_wordings_were_used():
    values, dates, labels = _usage(
        [
            ("DELIVERY TRUCK", "2014-01-01", "2015-01-20", 1, 0.1),
            ("VEHICLE - DELIVERY TRUCK", "2014-12-01", "2016-06-30", 1, 0.1),
            # Used side by side all along: two categories, not a rename.
            ("CTA BUS", "2014-01-01", "2016-06-30", 1, 0.1),
            ("CTA BUS STOP", "2014-01-01", "2016-06-30", 1, 0.1),
        ]
    )
    vocabulary = LocationVocabulary.learn(values, dates, labels)
    assert [(r.old, r.new) for r in vocabulary.renames] == [
        ("DELIVERY TRUCK", "VEHICLE - DELIVERY TRUCK")
    ]
    assert vocabulary.map("DELIVERY TRUCK") == "VEHICLE - DELIVERY TRUCK"
    assert vocabulary.map("CTA BUS") == "CTA BUS"


def test_a_successor_with_a_different_burglary_share_is_not_a_rename():
    values, dates, labels = _usage(
        [
            ("GARAGE", "2014-01-01", "2015-01-20", 3, 0.5),
            ("GARAGE SALE", "2015-01-10", "2016-06-30", 3, 0.02),
        ]
    )
    assert LocationVocabulary.learn(values, dates, labels).renames == ()


def _rows(location: str, day: str, burglary: bool, block: str) -> dict:
    return incident(
        date=f"{day}T10:00:00",
        location_description=location,
        primary_type="BURGLARY" if burglary else "THEFT",
        block=block,
    )


def test_the_model_counts_a_reworded_category_as_the_one_it_knows():
    old, new = "POLICE FACILITY/VEH PARKING LOT", "POLICE FACILITY / VEHICLE PARKING LOT"
    rows = build_feature_rows(
        canonical(
            [_rows(old, f"2017-01-{d:02d}", d % 3 == 0, "001XX N STATE ST") for d in range(1, 29)]
            + [_rows("STREET", f"2017-01-{d:02d}", False, "002XX N STATE ST") for d in range(1, 29)]
        )
    )
    features = IncidentFeatures(
        min_category_count=1, history_keys=("block_location",), min_history_days=1.0
    )
    features.fit(rows, rows["label"])
    asked = canonical(
        [_rows(w, "2018-03-01", False, "001XX N STATE ST") for w in (old, new, "SPACESHIP")]
    )
    out = features.transform(asked)
    location = out["location_description"].astype(object).tolist()
    assert location[0] == location[1] == normalise_location_text(old)
    assert pd.isna(location[2])
    # The block-and-location history runs on across the rename.
    history = out["history_block_location_per_day"].tolist()
    assert history[0] == history[1] > 0
    assert history[2] == 0

    # The mapping is a fitted parameter: it survives the artifact round trip, without the
    # cache of what it was asked.
    assert features.location_vocabulary_.unseen_mappings() == {
        normalise_location_text(new): normalise_location_text(old)
    }
    restored = pickle.loads(pickle.dumps(features))
    assert restored.location_vocabulary_.unseen_mappings() == {}
    pd.testing.assert_frame_equal(restored.transform(asked), out)

    # Off, the new wording is an unseen category.
    plain = IncidentFeatures(
        min_category_count=1, history_keys=("block_location",), learn_location_vocabulary=False
    ).fit(rows, rows["label"])
    assert pd.isna(plain.transform(asked)["location_description"][1])


def test_hostile_wordings_do_not_grow_the_model():
    vocabulary = _vocabulary(CONFUSERS)
    for i in range(12_000):
        vocabulary.map(f"NEW PLACE {i}")
    assert len(vocabulary.unseen_mappings()) == 0  # none restates a known wording
    assert len(vocabulary._cache) <= 10_000
    assert vocabulary.map("X" * 100_000) == "X" * 100_000
