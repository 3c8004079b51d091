"""The Scottish Gaelic catalogue is complete and consistent, and our pages
speak Gaelic under /gd/."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, api, make_world


def test_the_catalogue_is_complete_and_its_placeholders_match():
    result = subprocess.run([sys.executable, str(ROOT / "i18n" / "check_catalogue.py")], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 problem(s)" in result.stdout


@pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")
def test_our_pages_speak_gaelic(app):
    world = make_world()
    editor = world["people"]["a_editor"]
    sub = api(app, "lgdp_submission_create", headers=editor["headers"], data_return="council-tax-collection",
              council="aberdeen-city", period="2023-24")["result"]
    english = app.get(f"/submission/{sub['name']}", headers=editor["headers"]).get_data(as_text=True)
    gaelic = app.get(f"/gd/submission/{sub['name']}", headers=editor["headers"]).get_data(as_text=True)
    assert "Not yet received" in english and "Cha d' fhuaradh fhathast" not in english
    assert "Cha d&#39; fhuaradh fhathast" in gaelic or "Cha d' fhuaradh fhathast" in gaelic
    assert "Not yet received" not in gaelic
