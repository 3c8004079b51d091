"""The runnable examples of the README, run against a live CKAN server (the
test configuration) as a council system and an agency analyst would."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, api, csv_bytes, ctas_rows, make_world, transition

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]


def _run(script, url, token, *args):
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "CKAN_URL": url, "CKAN_TOKEN": token})


def test_a_council_system_pushes_and_an_agency_reads(app, live_server, live_worker, tmp_path):
    world = make_world()
    people = world["people"]
    good = tmp_path / "ctas-2023-24.csv"
    good.write_bytes(csv_bytes(ctas_rows()))
    pushed = _run("push_submission.py", live_server, people["a_editor"]["token"],
                  "council-tax-collection", "aberdeen-city", "2023-24", str(good))
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "Upload 1 is valid" in pushed.stdout

    bad = tmp_path / "ctas-bad.csv"
    bad.write_bytes(csv_bytes([*ctas_rows(), ["S12000034", "2023-24", "x", "1", "1", "1"]]))
    refused = _run("push_submission.py", live_server, people["a_editor"]["token"],
                   "council-tax-collection", "aberdeen-city", "2023-24", str(bad))
    assert refused.returncode == 1 and "Row 3, Chargeable dwellings: 'x' is not a figure" in refused.stdout, refused.stdout

    # another council's token cannot push for Aberdeen City
    other = _run("push_submission.py", live_server, people["b_editor"]["token"],
                 "council-tax-collection", "aberdeen-city", "2023-24", str(good))
    assert other.returncode == 2

    name = "council-tax-collection--aberdeen-city--2023-24"
    # the valid first upload is what gets submitted: upload it again as the latest
    _run("push_submission.py", live_server, people["a_editor"]["token"],
         "council-tax-collection", "aberdeen-city", "2023-24", str(good))
    transition(app, people["a_admin"], name, "sign_off")
    transition(app, people["a_editor"], name, "submit")

    read = _run("agency_read.py", live_server, people["r_editor"]["token"], "council-tax-collection")
    assert read.returncode == 0, read.stderr
    assert "1 submissions of council-tax-collection" in read.stdout
    assert "Aberdeen City" in read.stdout and "submitted" in read.stdout and "file: 1 data rows" in read.stdout
    # an agency that did not request the return reads nothing of it
    nothing = _run("agency_read.py", live_server, people["y_editor"]["token"], "council-tax-collection")
    assert "0 submissions" in nothing.stdout
