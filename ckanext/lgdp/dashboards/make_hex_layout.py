"""Write scotland_hex.geojson: Scotland's 32 council areas as equal hexagons.

    .venv/bin/python ckanext/lgdp/dashboards/make_hex_layout.py

The layout below is authored by hand, not derived from boundary data: one
hexagon per council, placed on a pointy-top hex grid so that neighbours are
roughly neighbours on the ground. Shetland and Orkney sit at the top, Na
h-Eileanan Siar to the west across a gap, the Highland and the north-east
below them, the central belt in the middle and Dumfries and Galloway and the
Scottish Borders at the bottom. Every council gets the same area, so a
council's colour counts as much as any other's, whatever its size.

The grid uses "odd-r" offset coordinates: row 0 is the top row and odd rows
are shifted half a hexagon to the right. The coordinates written are planar
(unit hexagons, circumradius 1, north up), not longitude and latitude: the
collection says so in its `planar` and `description` members, and
ckanext.lgdp.dashboards.maps draws it without a map projection.

The GSS codes and names come from ckanext/lgdp/reference/councils.csv; the
script fails if the table below and that file disagree.
"""
from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COUNCILS_CSV = HERE.parent / "reference" / "councils.csv"
OUTPUT = HERE / "scotland_hex.geojson"

# GSS code: (short label, col, row). Row 0 is the top of the map.
LAYOUT: dict[str, tuple[str, int, int]] = {
    "S12000027": ("SHE", 6, 0),  # Shetland Islands
    "S12000023": ("ORK", 4, 1),  # Orkney Islands
    "S12000013": ("ESI", 2, 2),  # Na h-Eileanan Siar
    "S12000017": ("HLD", 4, 2),  # Highland
    "S12000020": ("MRY", 5, 2),  # Moray
    "S12000034": ("ABD", 6, 2),  # Aberdeenshire
    "S12000035": ("A&B", 3, 3),  # Argyll and Bute
    "S12000048": ("P&K", 4, 3),  # Perth and Kinross
    "S12000041": ("ANS", 5, 3),  # Angus
    "S12000033": ("ABE", 6, 3),  # Aberdeen City
    "S12000039": ("WDU", 3, 4),  # West Dunbartonshire
    "S12000030": ("STG", 4, 4),  # Stirling
    "S12000042": ("DND", 5, 4),  # Dundee City
    "S12000018": ("INV", 2, 5),  # Inverclyde
    "S12000045": ("EDU", 3, 5),  # East Dunbartonshire
    "S12000005": ("CLK", 4, 5),  # Clackmannanshire
    "S12000047": ("FIF", 5, 5),  # Fife
    "S12000021": ("NAY", 1, 6),  # North Ayrshire
    "S12000038": ("RFW", 2, 6),  # Renfrewshire
    "S12000049": ("GLG", 3, 6),  # Glasgow City
    "S12000014": ("FAL", 4, 6),  # Falkirk
    "S12000036": ("EDH", 5, 6),  # City of Edinburgh
    "S12000010": ("ELN", 6, 6),  # East Lothian
    "S12000008": ("EAY", 1, 7),  # East Ayrshire
    "S12000011": ("ERW", 2, 7),  # East Renfrewshire
    "S12000050": ("NLK", 3, 7),  # North Lanarkshire
    "S12000040": ("WLN", 4, 7),  # West Lothian
    "S12000019": ("MLN", 5, 7),  # Midlothian
    "S12000028": ("SAY", 2, 8),  # South Ayrshire
    "S12000006": ("D&G", 3, 8),  # Dumfries and Galloway
    "S12000029": ("SLK", 4, 8),  # South Lanarkshire
    "S12000026": ("SCB", 5, 8),  # Scottish Borders
}

DESCRIPTION = (
    "Scotland's 32 council areas as equal hexagons on a hand-made grid "
    "(neighbours roughly geographic; no boundary data). Planar coordinates: "
    "unit hexagons (circumradius 1), x east, y north; not longitude/latitude. "
    "Written by make_hex_layout.py."
)


def centre(col: int, row: int) -> tuple[float, float]:
    """The centre of the hexagon at (col, row), odd rows shifted right."""
    x = math.sqrt(3) * (col + 0.5 * (row % 2))
    y = -1.5 * row  # north up: the top row has the largest y
    return x, y


def hexagon(col: int, row: int) -> list[list[float]]:
    """The closed ring of a pointy-top unit hexagon, counter-clockwise."""
    cx, cy = centre(col, row)
    ring = []
    for i in range(6):
        angle = math.radians(60 * i + 30)
        ring.append([round(cx + math.cos(angle), 6), round(cy + math.sin(angle), 6)])
    ring.append(ring[0])
    return ring


def read_councils() -> dict[str, str]:
    with COUNCILS_CSV.open(encoding="utf-8", newline="") as f:
        return {row["gss_code"]: row["name"] for row in csv.DictReader(f)}


def build() -> dict:
    councils = read_councils()
    if set(councils) != set(LAYOUT):
        missing = sorted(set(councils) - set(LAYOUT))
        extra = sorted(set(LAYOUT) - set(councils))
        raise SystemExit(f"layout and {COUNCILS_CSV.name} disagree: missing {missing}, unknown {extra}")
    cells = [(col, row) for _label, col, row in LAYOUT.values()]
    if len(set(cells)) != len(cells):
        raise SystemExit("two councils share a hexagon")
    features = []
    for code, (label, col, row) in sorted(LAYOUT.items(), key=lambda item: (item[1][2], item[1][1])):
        features.append({
            "type": "Feature",
            "properties": {"gss_code": code, "name": councils[code], "label": label, "col": col, "row": row},
            "geometry": {"type": "Polygon", "coordinates": [hexagon(col, row)]},
        })
    return {
        "type": "FeatureCollection",
        "name": "scotland_council_areas_hex",
        "description": DESCRIPTION,
        "planar": True,
        "features": features,
    }


def dumps(collection: dict) -> str:
    """The collection as JSON with one feature a line (readable diffs)."""
    head = {k: v for k, v in collection.items() if k != "features"}
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [']
    features = [json.dumps(f, ensure_ascii=False) for f in collection["features"]]
    lines.append(",\n".join(features))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def main() -> int:
    OUTPUT.write_text(dumps(build()), encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(LAYOUT)} hexagons)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
