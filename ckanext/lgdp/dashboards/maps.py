"""Choropleth maps of Scotland's council areas as inline, accessible SVG.

The areas come from a GeoJSON file: by default the shipped hex layout
(scotland_hex.geojson, one equal hexagon per council, planar coordinates),
or a boundary file a site configures with ``ckanext.lgdp.map_geojson``
(longitude/latitude, e.g. the council area boundaries of the Scottish
Government's spatial data portal), whose features carry the council's GSS
code in the property named by ``ckanext.lgdp.map_code_property``.

A file is read and projected once per (path, modification time) and kept in
memory; every map drawn afterwards only colours the cached paths.

    from ckanext.lgdp.dashboards import maps
    svg = maps.svg_map(
        {"S12000033": 95.1, "S12000034": None, ...},   # GSS code -> value
        {"S12000033": "Aberdeen City", ...},          # GSS code -> name
        title=_("In-year collection rate, 2024-25"),
        highlight="S12000033",
        fmt=lambda v: f"{v:.1f}%",
        flagged={"S12000018"},
        no_data_label=_("No data"),
    )
"""
from __future__ import annotations

import bisect
import functools
import json
import logging
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from markupsafe import Markup, escape

import ckan.plugins.toolkit as tk

__all__ = [
    "HEX_LAYOUT",
    "PALETTE",
    "Shape",
    "code_property",
    "layout_path",
    "quantile_breaks",
    "shapes",
    "svg_map",
]

log = logging.getLogger(__name__)

HEX_LAYOUT = Path(__file__).resolve().parent / "scotland_hex.geojson"

# The drawing area of the map, in SVG user units; the legend sits to its right.
MAP_WIDTH = 400.0
MAP_HEIGHT = 500.0
PADDING = 8.0
LEGEND_WIDTH = 190.0

# ColorBrewer "Blues", 5 classes (sequential, colour-blind safe), light to dark.
PALETTE = ("#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c")
NO_DATA_FILL = "#e0e0e0"
# Classes drawn dark enough to need white labels.
DARK_CLASSES = {3, 4}


def layout_path() -> Path:
    """The GeoJSON file the maps draw: ``ckanext.lgdp.map_geojson``, or the
    shipped hex layout when that is empty."""
    configured = (tk.config.get("ckanext.lgdp.map_geojson") or "").strip()
    return Path(configured).expanduser() if configured else HEX_LAYOUT


def code_property() -> str:
    """The feature property that holds a council's GSS code
    (``ckanext.lgdp.map_code_property``, default ``gss_code``)."""
    return (tk.config.get("ckanext.lgdp.map_code_property") or "").strip() or "gss_code"


@dataclass(frozen=True)
class Shape:
    """One council area, projected into the map's SVG coordinates."""

    code: str
    path: str  # SVG path data ("M x y L ... Z"), one subpath per ring
    name: str  # the name in the file's properties, or ""
    label: str  # a short label to print on the area, or ""
    centre: tuple[float, float]  # where a label goes


class MapFileError(ValueError):
    """A GeoJSON file that cannot be drawn."""


def shapes() -> dict[str, Shape]:
    """The areas of the configured map file by GSS code, projected to fit a
    MAP_WIDTH x MAP_HEIGHT box (north up).

    Cached per (path, modification time): a boundary file of several MB is
    read and projected once, not on every request. A configured file that is
    missing or cannot be drawn is logged (once per path and version) and the
    shipped hex layout is drawn instead.
    """
    path = layout_path()
    prop = code_property()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = None
    return _cached_shapes(str(path), mtime, prop)


@functools.lru_cache(maxsize=8)
def _cached_shapes(path: str, mtime: int | None, prop: str) -> dict[str, Shape]:
    try:
        if mtime is None:
            raise MapFileError("the file does not exist or cannot be read")
        return _load(Path(path), prop)
    except (OSError, ValueError) as e:
        if Path(path) == HEX_LAYOUT:
            raise
        log.error(
            "ckanext.lgdp.map_geojson: cannot draw the map file %s (%s); "
            "drawing the shipped hex layout instead", path, e,
        )
        return _cached_shapes(str(HEX_LAYOUT), HEX_LAYOUT.stat().st_mtime_ns, "gss_code")


def _load(path: Path, prop: str) -> dict[str, Shape]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise MapFileError(f"not valid JSON: {e}") from e
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise MapFileError("not a GeoJSON FeatureCollection")

    areas: dict[str, tuple[list[list[list[float]]], dict[str, Any]]] = {}
    for n, feature in enumerate(data.get("features") or []):
        props = (feature or {}).get("properties") or {}
        code = props.get(prop)
        geometry = (feature or {}).get("geometry") or {}
        if not code:
            log.warning("%s: feature %d has no %r property; skipped", path, n, prop)
            continue
        rings = _rings(geometry)
        if not rings:
            log.warning("%s: feature %s is not a Polygon or MultiPolygon; skipped", path, code)
            continue
        code = str(code)
        if code in areas:  # the same area in several features: draw all its parts
            areas[code][0].extend(rings)
        else:
            areas[code] = (rings, props)
    if not areas:
        raise MapFileError(f"no Polygon or MultiPolygon feature with a {prop!r} property")

    points = [pt for rings, _props in areas.values() for ring in rings for pt in ring]
    planar = bool(data.get("planar")) or path == HEX_LAYOUT
    if not planar and all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in points):
        # Longitude/latitude: equirectangular, with the degrees of longitude
        # shortened to their length at the middle latitude.
        ys = [y for _x, y in points]
        xscale = math.cos(math.radians((min(ys) + max(ys)) / 2))
    else:
        xscale = 1.0
    xs = [x * xscale for x, _y in points]
    ys = [y for _x, y in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    width, height = max(x1 - x0, 1e-12), max(y1 - y0, 1e-12)
    scale = min((MAP_WIDTH - 2 * PADDING) / width, (MAP_HEIGHT - 2 * PADDING) / height)
    # centre the drawing in the box
    dx = (MAP_WIDTH - width * scale) / 2
    dy = (MAP_HEIGHT - height * scale) / 2

    def project(x: float, y: float) -> tuple[float, float]:
        return dx + (x * xscale - x0) * scale, dy + (y1 - y) * scale  # y flipped: north up

    result: dict[str, Shape] = {}
    for code, (rings, props) in areas.items():
        parts = []
        biggest: list[tuple[float, float]] = []
        for ring in rings:
            projected = [project(x, y) for x, y in ring]
            if len(projected) > len(biggest):
                biggest = projected
            parts.append("M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in projected) + "Z")
        cx = sum(x for x, _y in biggest) / len(biggest)
        cy = sum(y for _x, y in biggest) / len(biggest)
        result[code] = Shape(
            code=code,
            path="".join(parts),
            name=str(props.get("name") or ""),
            label=str(props.get("label") or ""),
            centre=(round(cx, 1), round(cy, 1)),
        )
    return result


def _rings(geometry: Mapping[str, Any]) -> list[list[list[float]]]:
    """Every ring (outer and holes) of a Polygon or MultiPolygon, as [x, y]
    lists; anything else gives []."""
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    if kind == "Polygon":
        polygons = [coords]
    elif kind == "MultiPolygon":
        polygons = coords
    else:
        return []
    rings = []
    try:
        for polygon in polygons:
            for ring in polygon:
                points = [[float(p[0]), float(p[1])] for p in ring]
                if len(points) >= 3:
                    rings.append(points)
    except (TypeError, IndexError, ValueError) as e:
        raise MapFileError(f"malformed coordinates: {e}") from e
    return rings


# ---------------------------------------------------------------- classes


def quantile_breaks(values: Iterable[float], classes: int = 5) -> list[float]:
    """The class limits of quantile bins: [min, q1, ..., max], repeated
    limits dropped, so fewer classes come back when values repeat."""
    data = sorted(values)
    if not data:
        return []
    limits = []
    for i in range(classes + 1):
        pos = (len(data) - 1) * i / classes
        lo = math.floor(pos)
        hi = min(lo + 1, len(data) - 1)
        limits.append(data[lo] + (data[hi] - data[lo]) * (pos - lo))
    unique = [limits[0]]
    for limit in limits[1:]:
        if limit > unique[-1]:
            unique.append(limit)
    return unique if len(unique) > 1 else [unique[0], unique[0]]


def _class_of(value: float, breaks: list[float]) -> int:
    """The bin of a value: values on an inner limit go to the lower bin."""
    return min(bisect.bisect_left(breaks, value, 1, len(breaks) - 1) - 1, len(breaks) - 2)


def _colours(n_classes: int) -> list[str]:
    """n_classes colours of the palette, spread from light to dark."""
    if n_classes >= len(PALETTE):
        return list(PALETTE)
    if n_classes == 1:
        return [PALETTE[2]]
    step = (len(PALETTE) - 1) / (n_classes - 1)
    return [PALETTE[round(i * step)] for i in range(n_classes)]


def _default_fmt(value: float) -> str:
    return f"{value:,.1f}"


# ---------------------------------------------------------------- drawing


def svg_map(
    values: Mapping[str, float | None],
    names: Mapping[str, str],
    *,
    title: str,
    highlight: str | None = None,
    fmt: Callable[[float], str] = _default_fmt,
    flagged: Iterable[str] = frozenset(),
    no_data_label: str,
    flagged_label: str | None = None,
    highlight_label: str | None = None,
    labels: bool = True,
) -> Markup:
    """An inline SVG choropleth of the council areas.

    :param values: GSS code -> value (None or absent: no data)
    :param names: GSS code -> council name, for the tooltips
    :param title: the map's accessible name (its <title>), already translated
    :param highlight: the GSS code of the council to outline
    :param fmt: formats a value for the tooltips and the legend
    :param flagged: GSS codes whose value a quality check has flagged
        (drawn with a dashed outline)
    :param no_data_label: the text for areas without a value, translated
    :param flagged_label: the legend text for flagged areas (default:
        "Flagged by the quality checks", translated)
    :param highlight_label: the legend text for the highlighted council
        (default: its name)
    :param labels: print each area's short label when the map file has one

    Five quantile classes of the values present, light to dark (ColorBrewer
    Blues); areas without a value are light grey with a hatch. Each area is a
    ``<path class="lgdp-map-area" data-gss=... data-value=... fill=...>``
    with a ``<title>`` tooltip "Name: value".
    """
    areas = shapes()
    flagged = set(flagged)
    present = {code: float(v) for code, v in values.items() if v is not None and code in areas
               and not (isinstance(v, float) and math.isnan(v))}
    breaks = quantile_breaks(present.values())
    n_classes = max(len(breaks) - 1, 0)
    colours = _colours(n_classes) if n_classes else []

    uid = "lgdp-map-" + uuid.uuid4().hex[:8]
    title_id, desc_id, hatch_id = f"{uid}-title", f"{uid}-desc", f"{uid}-nodata"
    width = MAP_WIDTH + LEGEND_WIDTH

    def area_name(code: str) -> str:
        return names.get(code) or areas[code].name or code

    out: list[str] = []
    out.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lgdp-map" role="img" '
        f'width="{width:.0f}" height="{MAP_HEIGHT:.0f}" '
        f'viewBox="0 0 {width:.0f} {MAP_HEIGHT:.0f}" aria-labelledby="{title_id} {desc_id}" '
        f'data-highlight="{escape(highlight or "")}">'
    )
    out.append(f'<title id="{title_id}">{escape(title)}</title>')
    desc = []
    if highlight and highlight in areas:
        value = present.get(highlight)
        desc.append(f"{area_name(highlight)}: {fmt(value) if value is not None else no_data_label}")
    out.append(f'<desc id="{desc_id}">{escape(". ".join(desc))}</desc>')
    out.append(
        f'<defs><pattern id="{hatch_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{NO_DATA_FILL}"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="#9e9e9e" stroke-width="1.5"/></pattern></defs>'
    )

    out.append('<g class="lgdp-map-areas">')
    top: list[str] = []  # flagged and highlighted areas are drawn last, so their outline shows
    for code in sorted(areas, key=lambda c: (c == highlight, c in flagged, c)):
        shape = areas[code]
        value = present.get(code)
        classes = ["lgdp-map-area"]
        if value is None:
            fill = f"url(#{hatch_id})"
            classes.append("lgdp-map-nodata")
            tip = f"{area_name(code)}: {no_data_label}"
            data_value, data_class = "", ""
        else:
            k = _class_of(value, breaks)
            fill = colours[k]
            tip = f"{area_name(code)}: {fmt(value)}"
            data_value, data_class = repr(value), str(k)
        stroke, stroke_width, dash = "#ffffff", "1", ""
        if code in flagged:
            classes.append("lgdp-map-flagged")
            stroke, stroke_width, dash = "#b35806", "2.5", ' stroke-dasharray="5 3"'
            tip += f" ({flagged_label or tk._('Flagged by the quality checks')})"
        if code == highlight:
            classes.append("lgdp-map-highlight")
            stroke, stroke_width = "#000000", "4"
        out.append(
            f'<path class="{" ".join(classes)}" data-gss="{escape(code)}" data-value="{data_value}" '
            f'data-class="{data_class}" d="{shape.path}" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{stroke_width}"{dash} stroke-linejoin="round">'
            f"<title>{escape(tip)}</title></path>"
        )
        if labels and shape.label:
            ink = "#ffffff" if value is not None and int(data_class) in DARK_CLASSES else "#222222"
            top.append(
                f'<text x="{shape.centre[0]}" y="{shape.centre[1]}" fill="{ink}" font-size="10" '
                f'text-anchor="middle" dominant-baseline="central" pointer-events="none" '
                f'aria-hidden="true">{escape(shape.label)}</text>'
            )
    out.append("</g>")
    if top:
        out.append('<g class="lgdp-map-labels" font-family="sans-serif">' + "".join(top) + "</g>")

    out.append(_legend(breaks, colours, fmt, hatch_id, no_data_label,
                       bool(flagged & set(areas)), flagged_label,
                       highlight if highlight in areas else None,
                       highlight_label or (area_name(highlight) if highlight in areas else "")))
    out.append("</svg>")
    return Markup("".join(out))


def _legend(breaks: list[float], colours: list[str], fmt: Callable[[float], str], hatch_id: str,
            no_data_label: str, any_flagged: bool, flagged_label: str | None,
            highlight: str | None, highlight_label: str) -> str:
    x, y, row = MAP_WIDTH + 10, 24.0, 22.0
    items = []
    for k, colour in enumerate(colours):
        lo, hi = breaks[k], breaks[k + 1]
        text = fmt(lo) if lo == hi else f"{fmt(lo)} – {fmt(hi)}"
        items.append((f'<rect width="16" height="14" fill="{colour}" stroke="#636363" stroke-width="0.5"/>', text, str(k)))
    items.reverse()  # the highest class at the top, as on the map's colour ramp
    items.append((f'<rect width="16" height="14" fill="url(#{hatch_id})" stroke="#636363" stroke-width="0.5"/>',
                  no_data_label, "nodata"))
    if any_flagged:
        items.append(('<rect width="16" height="14" fill="none" stroke="#b35806" stroke-width="2" '
                      'stroke-dasharray="4 2"/>', flagged_label or tk._("Flagged by the quality checks"), "flagged"))
    if highlight:
        items.append(('<rect width="16" height="14" fill="none" stroke="#000000" stroke-width="3"/>',
                      highlight_label, "highlight"))
    out = [f'<g class="lgdp-map-legend" font-family="sans-serif" font-size="12" transform="translate({x:.0f} {y:.0f})">']
    for i, (swatch, text, key) in enumerate(items):
        out.append(
            f'<g class="lgdp-map-legend-item" data-class="{key}" transform="translate(0 {i * row:.0f})">{swatch}'
            f'<text x="22" y="7" dominant-baseline="central" fill="#222222">{escape(text)}</text></g>'
        )
    out.append("</g>")
    return "".join(out)
