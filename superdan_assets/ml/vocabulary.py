"""Location wordings that drift: a mapping from old and unseen wordings to known ones, learnt.

Police portals reword their categories: Chicago's "DELIVERY TRUCK" became "VEHICLE - DELIVERY
TRUCK" in 2014, "OTHER" became "OTHER (SPECIFY)" after 2018, "POLICE FACILITY/VEH PARKING LOT"
became "POLICE FACILITY / VEHICLE PARKING LOT". A model that treats a reworded category as a
new one loses the category feature *and* every place history keyed on it on the day of the
rename. A hand list of renames only knows one city's past; this module learns the mapping from
the training data of any city, so it is a fitted parameter of the model and serving applies
exactly what training learnt.

Two rules, both on the words of a wording (:func:`words`), compared softly
(:func:`words_match`: equal, an abbreviation such as VEH/VEHICLE or PROP/PROPERTY, or one
stem such as RESIDENTIAL/RESIDENCE; a NON- word never matches its opposite):

* **a rename inside the training window** is a wording that *stopped* being used while a
  wording that *restates* it (:func:`restates`) *started* around the same time, with a
  burglary share that is not significantly different (a rename keeps the category's meaning).
  Its rows are merged into the newer wording, so place histories run on across the rename.
* **an unseen wording at serving** maps to the known wording it restates, the closest by
  word overlap, ties to the more frequent. "Restates" means the new wording contains all the
  words of the known one (the portal elaborated it: "OTHER" -> "OTHER (SPECIFY)") or the two
  share nearly all their words (reordered, respelt). A wording that restates nothing stays
  unseen, which the model treats as a missing category.

Measured (``benchmarks/vocabulary.py``, trained on 2012-2017): the serving rule maps all 14 of
the portal's post-2018 renames whose old wording the window holds back to it, and the window
rule finds the 2014 DELIVERY TRUCK rename; the ride-share rename of 2017-12-30 is too close to
the window's end to tell from a pause (on 2012-2018 both are found).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

# A word is letters and digits, with a tight hyphen kept ("NON-SECURE", "LOCK-UP"); single
# letters ("E.G.") carry no meaning of their own and are left out.
_WORD = re.compile(r"[A-Z0-9]{2,}(?:-[A-Z0-9]+)*")
#: An abbreviation must keep at least this share of the word it abbreviates ("VEH" of
#: "VEHICLE" is 0.43; "BAR" of "BARBERSHOP", 0.3, is a different word).
_MIN_ABBREVIATION_SHARE = 0.4
_MIN_ABBREVIATION_LETTERS = 3
#: Two words with a common start this long are one stem ("RESIDEN-TIAL"/"RESIDEN-CE").
_MIN_STEM_LETTERS = 6
#: Two wordings that share at least this share of the longer one's words restate each other
#: (7 of 8: "(LYFT, UBER, ETC.)" against "(E.G., UBER, LYFT)"); 5 of 6 is not enough
#: ("AIRPORT TERMINAL UPPER LEVEL" is not "... LOWER LEVEL").
_MIN_SHARED_WORDS = 0.85
#: Words compared per wording: a hostile 5,000-word value costs no more than a real one.
_MAX_WORDS = 24
#: A wording last used this many days or more before the window's end has stopped being used.
RENAME_GAP_DAYS = 60
#: Burglary shares of a rename's two wordings must not differ by more than this many
#: standard errors (a two-proportion z test).
RENAME_MAX_Z = 3.0
#: Unseen wordings remembered per map, so a stream of distinct hostile values cannot grow it.
_CACHE_LIMIT = 10_000


def words(text: str) -> tuple[str, ...]:
    """The distinct words of an (upper-cased) wording in order; "NON" joins the next word."""
    found = _WORD.findall(str(text).upper())[: _MAX_WORDS * 2]
    joined: list[str] = []
    for word in found:
        if joined and joined[-1] == "NON":
            joined[-1] = f"NON-{word}"
        else:
            joined.append(word)
    return tuple(dict.fromkeys(joined))[:_MAX_WORDS]


def words_match(a: str, b: str) -> bool:
    """Equal, an abbreviation of the other, or the same stem."""
    if a == b:
        return True
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if (
        len(short) >= _MIN_ABBREVIATION_LETTERS
        and len(short) >= _MIN_ABBREVIATION_SHARE * len(long)
        and long.startswith(short)
    ):
        return True
    return len(os.path.commonprefix([a, b])) >= _MIN_STEM_LETTERS


def _shared(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """How many words of ``a`` match a distinct word of ``b`` (greedy, in order)."""
    used: set[int] = set()
    shared = 0
    for word in a:
        for j, other in enumerate(b):
            if j not in used and words_match(word, other):
                used.add(j)
                shared += 1
                break
    return shared


def restates(new: tuple[str, ...], known: tuple[str, ...]) -> float:
    """How well ``new`` restates ``known``: 0 when it does not, else their word overlap (Dice).

    ``new`` restates ``known`` when it holds every word of it, or when the two share nearly
    all their words (:data:`_MIN_SHARED_WORDS`).
    """
    if not new or not known:
        return 0.0
    shared = _shared(new, known)
    if shared < len(known) and shared < _MIN_SHARED_WORDS * max(len(new), len(known)):
        return 0.0
    return 2.0 * shared / (len(new) + len(known))


def _rename_z(a: _Usage, b: _Usage) -> float:
    """Two-proportion z of the wordings' burglary shares (0 when both are all one class)."""
    pooled = (a.burglaries + b.burglaries) / (a.count + b.count)
    variance = pooled * (1.0 - pooled) * (1.0 / a.count + 1.0 / b.count)
    if variance <= 0.0:
        return 0.0
    return abs(a.burglaries / a.count - b.burglaries / b.count) / math.sqrt(variance)


@dataclass(frozen=True)
class _Usage:
    count: int
    burglaries: float
    first: np.datetime64
    last: np.datetime64


@dataclass(frozen=True)
class Rename:
    """A rename found inside a training window: ``old`` rows are merged into ``new``."""

    old: str
    new: str
    old_last: str
    new_first: str
    overlap: float
    z: float


class LocationVocabulary:
    """The known wordings of a training window and the renames inside it (picklable).

    Build it with :meth:`learn`; :meth:`map` gives the wording a value is counted under.
    """

    def __init__(self, counts: dict[str, int], renames: Iterable[Rename] = ()):
        self.renames = tuple(renames)
        self._merged = {r.old: r.new for r in self.renames}
        self.counts = dict(counts)
        # Known wordings a new value can map to: the current ones (renamed-away ones map on).
        self._targets = sorted(
            ((w, words(w), c) for w, c in self.counts.items() if w not in self._merged),
            key=lambda t: (-t[2], t[0]),
        )
        self._cache: dict[str, str] = {}

    # Pickle without the cache: a model artifact must not depend on what it was asked.
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    @classmethod
    def learn(cls, values: np.ndarray, dates: np.ndarray, labels: np.ndarray) -> LocationVocabulary:
        """Learn from training rows: wordings (already spelling-normalised), times, 0/1 labels."""
        frame = pd.DataFrame(
            {
                "value": pd.Series(values, dtype=object),
                "date": pd.Series(np.asarray(dates, dtype="datetime64[ns]")),
                "label": np.asarray(labels, dtype="float64"),
            }
        ).dropna(subset=["value"])
        if frame.empty:
            return cls({})
        grouped = frame.groupby("value", sort=True).agg(
            count=("label", "size"),
            burglaries=("label", "sum"),
            first=("date", "min"),
            last=("date", "max"),
        )
        usage = {
            str(value): _Usage(
                int(row["count"]),
                float(row["burglaries"]),
                np.datetime64(row["first"], "ns"),
                np.datetime64(row["last"], "ns"),
            )
            for value, row in grouped.iterrows()
        }
        counts = {value: u.count for value, u in usage.items()}
        return cls(counts, _window_renames(usage, frame["date"].max()))

    def map(self, value: str) -> str:
        """The wording ``value`` is counted under: itself, its rename, or the known one it restates."""
        if value in self._merged:
            return self._merged[value]
        if value in self.counts:
            return value
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        mapped = self._closest(value)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[value] = mapped
        return mapped

    def _closest(self, value: str) -> str:
        new = words(value)
        best, best_score = value, 0.0
        for wording, known, _count in self._targets:  # most frequent first: ties keep it
            score = restates(new, known)
            if score > best_score:
                best, best_score = wording, score
        return best

    def map_values(self, values: np.ndarray) -> np.ndarray:
        """:meth:`map` over an object array, once per distinct value; ``None`` stays ``None``."""
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
        mapped = np.asarray([self.map(str(u)) for u in uniques] + [None], dtype=object)
        return mapped[codes]

    def unseen_mappings(self) -> dict[str, str]:
        """Unseen wordings met so far and where they went (for reports; not pickled)."""
        return {k: v for k, v in self._cache.items() if k != v}


def _window_renames(usage: dict[str, _Usage], window_end) -> list[Rename]:
    """Renames inside the window: an old wording stopped, a restating one started near then."""
    gap = np.timedelta64(RENAME_GAP_DAYS, "D")
    end = np.datetime64(window_end, "ns")
    found: dict[str, Rename] = {}
    best: dict[str, float] = {}
    for old, u in usage.items():
        if u.last > end - gap:
            continue  # still in use: not renamed away
        old_words = words(old)
        for new, v in usage.items():
            started_later = v.first > u.first + gap
            started_near_the_stop = abs(v.first - u.last) <= gap
            if new == old or not (started_later and started_near_the_stop):
                continue
            overlap = max(restates(words(new), old_words), restates(old_words, words(new)))
            if overlap == 0.0:
                continue
            z = _rename_z(u, v)
            if z > RENAME_MAX_Z or overlap <= best.get(old, 0.0):
                continue
            best[old] = overlap
            found[old] = Rename(
                old=old,
                new=new,
                old_last=str(u.last.astype("datetime64[D]")),
                new_first=str(v.first.astype("datetime64[D]")),
                overlap=round(overlap, 3),
                z=round(z, 2),
            )
    # A chain of renames (A -> B -> C) ends at the current wording.
    renames = []
    for old, rename in sorted(found.items()):
        target, seen = rename.new, {old}
        while target in found and target not in seen:
            seen.add(target)
            target = found[target].new
        renames.append(
            Rename(rename.old, target, rename.old_last, rename.new_first, rename.overlap, rename.z)
        )
    return renames
