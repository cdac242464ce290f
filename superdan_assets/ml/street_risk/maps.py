"""What a person looks at: a PNG map of the day, the top-blocks table, an interactive HTML map.

The PNG shows every place faint grey (the city's shape, so a reader can orient), and the
flagged places coloured by their probability of at least one crime, one panel per crime type.
It is built with matplotlib's object API (no global pyplot state; see ``ml/plots.py``). The
HTML map is one folium (Leaflet) file with the flagged places inline as circle markers with a
popup each, so it opens from the folder it was written to; the base map tiles and the Leaflet
library are loaded by the browser that opens it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from superdan_assets.ml.street_risk.history import CRIME_TYPES

FLAG_COLUMN = "flagged_1pct"


def risk_map_png(forecast: pd.DataFrame, flag_column: str = FLAG_COLUMN, title: str = "") -> bytes:
    """PNG bytes: one panel per crime type, all places faint, flagged ones coloured by risk."""
    types = [t for t in CRIME_TYPES if (forecast["crime_type"] == t).any()]
    figure = Figure(figsize=(5.5 * max(len(types), 1), 7.5))
    FigureCanvasAgg(figure)
    for i, crime_type in enumerate(types):
        ax = figure.add_subplot(1, len(types), i + 1)
        one = forecast[forecast["crime_type"] == crime_type].dropna(
            subset=["latitude", "longitude"]
        )
        ax.scatter(one["longitude"], one["latitude"], s=1, c="#d0d0d0", linewidths=0)
        flagged = one[one[flag_column]].sort_values("probability")
        points = ax.scatter(
            flagged["longitude"],
            flagged["latitude"],
            s=10,
            c=flagged["probability"],
            cmap="inferno_r",
            linewidths=0,
        )
        if len(flagged):
            figure.colorbar(points, ax=ax, shrink=0.6, label="P(at least one)")
        outside = _frame_to_city(ax, one)
        note = f"\n(not shown, far outside: {outside})" if outside else ""
        ax.set_title(f"{crime_type}: {len(flagged)} flagged of {len(one)} places{note}")
        ax.set_aspect(1 / np.cos(np.radians(one["latitude"].median() if len(one) else 0.0)))
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return buffer.getvalue()


def _frame_to_city(ax, places: pd.DataFrame) -> int:
    """Zoom the panel to where the city's places are (the central 99.8 % widened by 10 %), so a
    few mis-geocoded places (Chicago's placeholder lies 400 km away) do not shrink the city to
    a dot; returns how many places fall outside the view."""
    if len(places) < 20:
        return 0
    bounds = {}
    for column in ("longitude", "latitude"):
        lo, hi = np.quantile(places[column], [0.001, 0.999])
        pad = max(hi - lo, 1e-3) * 0.10
        bounds[column] = (lo - pad, hi + pad)
    ax.set_xlim(*bounds["longitude"])
    ax.set_ylim(*bounds["latitude"])
    inside = places["longitude"].between(*bounds["longitude"]) & places["latitude"].between(
        *bounds["latitude"]
    )
    return int((~inside).sum())


def top_table(forecast: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """The ``n`` riskiest places per crime type, riskiest first."""
    parts = []
    for crime_type in CRIME_TYPES:
        one = forecast[forecast["crime_type"] == crime_type].nsmallest(n, "rank")
        parts.append(one)
    columns = [
        "crime_type",
        "rank",
        "unit",
        "expected_count",
        "probability",
        "latitude",
        "longitude",
    ]
    return pd.concat(parts, ignore_index=True)[columns]


def top_table_markdown(forecast: pd.DataFrame, n: int = 20) -> str:
    """:func:`top_table` as a markdown table (the materialization's top-20 metadata)."""
    table = top_table(forecast, n)
    lines = [
        "| type | rank | place | expected count | P(at least one) |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for row in table.itertuples(index=False):
        unit = str(row.unit).replace("|", "/")
        lines.append(
            f"| {row.crime_type} | {row.rank} | {unit} | {row.expected_count:.3f} | "
            f"{row.probability:.1%} |"
        )
    return "\n".join(lines)


def risk_map_html(forecast: pd.DataFrame, flag_column: str = FLAG_COLUMN, title: str = "") -> str:
    """A one-file folium map: a layer per crime type with its flagged places, popups with risk."""
    import folium
    from branca.colormap import LinearColormap

    located = forecast.dropna(subset=["latitude", "longitude"])
    centre = [float(located["latitude"].median()), float(located["longitude"].median())]
    fmap = folium.Map(location=centre, zoom_start=11, tiles="OpenStreetMap")
    colours = LinearColormap(["#fde725", "#f98e09", "#bc3754", "#57106e"], vmin=0.0, vmax=1.0)
    for crime_type in CRIME_TYPES:
        flagged = located[(located["crime_type"] == crime_type) & located[flag_column]]
        if flagged.empty:
            continue
        top = float(flagged["probability"].max()) or 1.0
        layer = folium.FeatureGroup(name=f"{crime_type} ({len(flagged)} flagged)")
        for row in flagged.itertuples(index=False):
            folium.CircleMarker(
                location=[row.latitude, row.longitude],
                radius=4 + 6 * row.probability / top,
                color=colours(row.probability / top),
                fill=True,
                fill_opacity=0.8,
                weight=1,
                popup=folium.Popup(
                    f"<b>{_html(row.unit)}</b><br>{crime_type} rank {row.rank}<br>"
                    f"P(at least one) {row.probability:.1%}<br>expected {row.expected_count:.3f}",
                    max_width=260,
                ),
            ).add_to(layer)
        layer.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    if title:
        fmap.get_root().html.add_child(
            folium.Element(
                f"<h3 style='position:absolute;z-index:1000;left:60px'>{_html(title)}</h3>"
            )
        )
    return self_contained(fmap.get_root().render())


#: Leaflet 1.9.3 (BSD-2-Clause) and jQuery 3.7.1 (MIT; folium builds its popups with it), each
#: with its licence beside it, shipped so the map needs no CDN.
STATIC = Path(__file__).with_name("static")
LEAFLET_DIR = STATIC / "leaflet-1.9.3"
JQUERY = STATIC / "jquery-3.7.1" / "jquery.min.js"
_REMOTE_SCRIPT = re.compile(r'<script src="https?://[^"]+"></script>\s*')
_REMOTE_STYLE = re.compile(r'<link rel="stylesheet" href="https?://[^"]+"\s*/?>\s*')


def self_contained(html: str) -> str:
    """The folium page with Leaflet and jQuery inlined and every other remote script and
    stylesheet dropped (Bootstrap, marker icons: circle markers, popups and the layer control
    need only those two), so the one file opens anywhere, also offline. The basemap tiles still come from
    OpenStreetMap when there is a network; without one the markers show on a blank map."""
    html = _REMOTE_SCRIPT.sub("", html)
    html = _REMOTE_STYLE.sub("", html)
    css = (LEAFLET_DIR / "leaflet.css").read_text(encoding="utf-8")
    js = (LEAFLET_DIR / "leaflet.js").read_text(encoding="utf-8")
    jquery = JQUERY.read_text(encoding="utf-8")
    inline = f"<style>{css}</style>\n<script>{js}</script>\n<script>{jquery}</script>\n"
    return html.replace("<head>", "<head>\n" + inline, 1)


def _html(text) -> str:
    import html

    return html.escape(str(text))


def hit_rate_chart_png(records: list[dict]) -> bytes:
    """PNG: realised hit rate at 1 % per day of the model and of the long-term baseline."""
    figure = Figure(figsize=(9, 3.2))
    FigureCanvasAgg(figure)
    days = pd.to_datetime([r["day"] for r in records])
    for i, crime_type in enumerate(CRIME_TYPES):
        ax = figure.add_subplot(1, 2, i + 1)
        for method, style in (("model", "-o"), ("all_history", "--")):
            values = [(r.get(crime_type) or {}).get(method, np.nan) for r in records]
            ax.plot(days, values, style, markersize=3, label=method.replace("_", " "))
        ax.set_title(f"{crime_type}: share of crimes on the top 1 %")
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.legend(fontsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return buffer.getvalue()
