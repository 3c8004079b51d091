"""The council-area maps of the dashboards: the shipped hex layout, the SVG
choropleth, and a site's own boundary file. Pure functions: no service."""
from __future__ import annotations

import csv
import json
import logging
import re

import pytest

from ckanext.lgdp.dashboards import make_hex_layout, maps
from tests.conftest import ROOT

COUNCILS = {
    row["gss_code"]: row["name"]
    for row in csv.DictReader((ROOT / "ckanext" / "lgdp" / "reference" / "councils.csv").open(encoding="utf-8"))
}

AREA = re.compile(r'<path class="(?P<cls>lgdp-map-area[^"]*)" data-gss="(?P<gss>[^"]+)" '
                  r'data-value="(?P<value>[^"]*)" data-class="(?P<k>[^"]*)" d="[^"]+" fill="(?P<fill>[^"]+)"')


def areas(svg: str) -> dict[str, dict[str, str]]:
    return {m["gss"]: m.groupdict() for m in AREA.finditer(svg)}


def draw(values, **kwargs):
    kwargs.setdefault("title", "Collection rate")
    kwargs.setdefault("no_data_label", "No data")
    return str(maps.svg_map(values, COUNCILS, **kwargs))


def test_the_hex_layout_has_one_hexagon_per_council():
    data = json.loads(maps.HEX_LAYOUT.read_text(encoding="utf-8"))
    features = data["features"]
    assert data["type"] == "FeatureCollection" and data["planar"] is True
    assert len(features) == 32
    assert {f["properties"]["gss_code"] for f in features} == set(COUNCILS)
    for f in features:
        assert f["properties"]["name"] == COUNCILS[f["properties"]["gss_code"]]
        assert f["geometry"]["type"] == "Polygon"
        ring = f["geometry"]["coordinates"][0]
        assert len(ring) == 7 and ring[0] == ring[-1]
    cells = [(f["properties"]["col"], f["properties"]["row"]) for f in features]
    assert len(set(cells)) == 32, "two councils share a hexagon"
    # hexagon centres are at least one hexagon width apart: none overlap
    centres = [make_hex_layout.centre(col, row) for col, row in cells]
    for i, (x1, y1) in enumerate(centres):
        for x2, y2 in centres[i + 1:]:
            assert ((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5 >= 3 ** 0.5 - 1e-9


def test_the_shipped_file_is_what_the_generator_writes():
    assert make_hex_layout.dumps(make_hex_layout.build()) == maps.HEX_LAYOUT.read_text(encoding="utf-8")


def test_the_layout_is_roughly_geographic():
    rows = {f["properties"]["name"]: f["properties"] for f in make_hex_layout.build()["features"]}
    top = min(p["row"] for p in rows.values())
    bottom = max(p["row"] for p in rows.values())
    assert rows["Shetland Islands"]["row"] == top
    assert rows["Orkney Islands"]["row"] == top + 1
    assert rows["Dumfries and Galloway"]["row"] == bottom and rows["Scottish Borders"]["row"] == bottom
    assert rows["Na h-Eileanan Siar"]["col"] == min(p["col"] for p in rows.values() if p["row"] <= 3)
    assert rows["Scottish Borders"]["col"] > rows["Dumfries and Galloway"]["col"]
    assert rows["Glasgow City"]["col"] < rows["City of Edinburgh"]["col"]


def test_the_map_has_an_area_per_council_coloured_in_value_order():
    values = {code: float(i) for i, code in enumerate(sorted(COUNCILS))}
    svg = draw(values, fmt=lambda v: f"{v:.0f}")
    found = areas(svg)
    assert len(found) == 32 and set(found) == set(COUNCILS)
    assert svg.startswith("<svg") and 'role="img"' in svg
    title_id = re.search(r'<title id="([^"]+)">Collection rate</title>', svg).group(1)
    assert re.search(rf'aria-labelledby="{title_id}[ "]', svg)
    # colour classes never go down as the value goes up, and use the whole palette
    ordered = sorted(found.values(), key=lambda a: float(a["value"]))
    classes = [int(a["k"]) for a in ordered]
    assert classes == sorted(classes) and set(classes) == set(range(5))
    assert [maps.PALETTE.index(a["fill"]) for a in ordered] == classes
    # quantile bins: about a fifth of the councils in each
    assert all(6 <= classes.count(k) <= 7 for k in range(5))
    # each area has its tooltip, and the legend shows the bins with fmt
    assert "<title>Aberdeen City: 18</title>" in svg
    legend = svg[svg.index('class="lgdp-map-legend"'):]
    assert "0 – " in legend and " – 31" in legend
    assert legend.count('class="lgdp-map-legend-item"') == 6  # 5 classes + no data


def test_missing_values_are_grey_and_the_highlight_and_flags_are_marked():
    values = {code: 90.0 + i / 10 for i, code in enumerate(sorted(COUNCILS))}
    values["S12000013"] = None
    del values["S12000027"]
    svg = draw(values, highlight="S12000033", flagged={"S12000018"}, fmt=lambda v: f"{v:.1f}%",
               no_data_label="Gun dàta")
    found = areas(svg)
    for code in ("S12000013", "S12000027"):
        assert found[code]["fill"].startswith("url(#") and found[code]["value"] == ""
        assert "lgdp-map-nodata" in found[code]["cls"]
    assert "<title>Na h-Eileanan Siar: Gun dàta</title>" in svg
    pattern = re.search(r'<pattern id="([^"]+)"', svg).group(1)
    assert found["S12000013"]["fill"] == f"url(#{pattern})"
    assert all(a["fill"] in maps.PALETTE for c, a in found.items() if c not in ("S12000013", "S12000027"))
    assert "lgdp-map-highlight" in found["S12000033"]["cls"]
    assert [c for c, a in found.items() if "lgdp-map-highlight" in a["cls"]] == ["S12000033"]
    assert "lgdp-map-flagged" in found["S12000018"]["cls"]
    assert "Inverclyde: 90.8% (Flagged by the quality checks)" in svg
    assert "Aberdeen City: 91.8%" in svg  # the description names the highlighted council
    assert 'data-highlight="S12000033"' in svg


def test_repeated_values_give_fewer_classes_and_names_are_escaped():
    values = dict.fromkeys(COUNCILS, 5.0)
    svg = draw(values, title="Rate <b>&</b>")
    found = areas(svg)
    assert {a["fill"] for a in found.values()} == {maps.PALETTE[2]}
    assert "<title id=" in svg and "Rate &lt;b&gt;&amp;&lt;/b&gt;" in svg
    assert maps.quantile_breaks([]) == []
    assert maps.quantile_breaks([1, 2, 3, 4, 5, 6]) == [1, 2, 3, 4, 5, 6]


def test_labels_can_be_left_out():
    assert ">GLG</text>" in draw({})
    assert "<text" not in draw({}, labels=False).split('class="lgdp-map-legend"')[0]


LONLAT = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "properties": {"code": "S12000036", "name": "Edinburgh"},
         "geometry": {"type": "Polygon", "coordinates": [[[-3.4, 55.9], [-3.1, 55.9], [-3.1, 56.0], [-3.4, 56.0], [-3.4, 55.9]]]}},
        {"type": "Feature", "properties": {"code": "S12000023", "name": "Orkney"},
         "geometry": {"type": "MultiPolygon", "coordinates": [
             [[[-3.4, 58.8], [-2.8, 58.8], [-2.8, 59.1], [-3.4, 59.1], [-3.4, 58.8]]],
             [[[-2.7, 59.2], [-2.5, 59.2], [-2.5, 59.4], [-2.7, 59.4], [-2.7, 59.2]]]]}},
    ],
}


def points(path: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+) (-?[\d.]+)", path)]


@pytest.fixture
def lonlat_file(tmp_path, ckan_config, monkeypatch):
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps(LONLAT), encoding="utf-8")
    monkeypatch.setitem(ckan_config, "ckanext.lgdp.map_geojson", str(path))
    monkeypatch.setitem(ckan_config, "ckanext.lgdp.map_code_property", "code")
    return path


def test_a_configured_lonlat_file_is_projected(lonlat_file):
    assert maps.layout_path() == lonlat_file and maps.code_property() == "code"
    shapes = maps.shapes()
    assert set(shapes) == {"S12000036", "S12000023"}
    edinburgh, orkney = points(shapes["S12000036"].path), points(shapes["S12000023"].path)
    assert shapes["S12000023"].path.count("M") == 2  # both islands of the MultiPolygon
    everything = edinburgh + orkney
    assert all(0 <= x <= maps.MAP_WIDTH and 0 <= y <= maps.MAP_HEIGHT for x, y in everything)
    # north is up: Orkney above Edinburgh; the whole drawing fills the box's height
    assert max(y for _x, y in orkney) < min(y for _x, y in edinburgh)
    ys = [y for _x, y in everything]
    assert min(ys) == pytest.approx(maps.PADDING, abs=0.1)
    assert max(ys) == pytest.approx(maps.MAP_HEIGHT - maps.PADDING, abs=0.1)
    # equirectangular with cos(mid-latitude): Edinburgh's 0.3 x 0.1 degrees
    # come out about 0.3 * cos(57.65) / 0.1 = 1.6 times as wide as high
    xs, eys = [x for x, _y in edinburgh], [y for _x, y in edinburgh]
    assert (max(xs) - min(xs)) / (max(eys) - min(eys)) == pytest.approx(1.6, abs=0.05)

    svg = str(maps.svg_map({"S12000036": 1.0, "S12000023": 2.0}, {"S12000036": "City of Edinburgh"},
                           title="t", no_data_label="No data"))
    found = areas(svg)
    assert set(found) == {"S12000036", "S12000023"}
    assert "<title>City of Edinburgh: 1.0</title>" in svg
    assert "<title>Orkney: 2.0</title>" in svg  # the name of the file when none is given
    assert found["S12000036"]["fill"] != found["S12000023"]["fill"]


def test_the_projection_is_cached_until_the_file_changes(lonlat_file):
    first = maps.shapes()
    assert maps.shapes() is first
    changed = json.loads(lonlat_file.read_text())
    changed["features"] = changed["features"][:1]
    lonlat_file.write_text(json.dumps(changed))
    import os

    os.utime(lonlat_file, ns=(1, 1_000_000_000))
    assert set(maps.shapes()) == {"S12000036"}


@pytest.mark.parametrize("content", [None, "{not json", '{"type": "Feature"}', json.dumps(LONLAT)])
def test_a_broken_configured_file_falls_back_to_the_hex_layout(tmp_path, ckan_config, monkeypatch, caplog, content):
    path = tmp_path / "broken.geojson"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    monkeypatch.setitem(ckan_config, "ckanext.lgdp.map_geojson", str(path))
    # CKAN's logging set-up (fileConfig) disables loggers made before it
    monkeypatch.setattr(logging.getLogger("ckanext.lgdp.dashboards.maps"), "disabled", False)
    # the valid file fails too: none of its features has a gss_code property
    with caplog.at_level(logging.ERROR, logger="ckanext.lgdp.dashboards.maps"):
        svg = draw({})
    assert len(areas(svg)) == 32
    assert any(str(path) in r.getMessage() and "hex layout" in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.ckan_config("ckanext.lgdp.map_geojson", "")
def test_an_empty_setting_draws_the_hex_layout():
    assert maps.layout_path() == maps.HEX_LAYOUT and maps.code_property() == "gss_code"
    assert set(maps.shapes()) == set(COUNCILS)
