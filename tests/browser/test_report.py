"""An upload's report page in a real browser: a council editor opens the
report of an invalid file and reads, row by row, what is wrong and what to
do, in English and in Scottish Gaelic. Screenshots go to
test-artifacts/screenshots/ (report-en, report-gd)."""
from __future__ import annotations

import pytest

from tests.browser.conftest import SCREENSHOTS, login, screenshot, wait_for
from tests.conftest import COUNCIL_B_GSS, make_world, push

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

PASSWORD = "Correct-Horse-Battery-9"

# The mistakes councils make: another council's code, a year written with a
# slash, thousands separators, a pound sign, a fraction for a percentage, a
# note in an unnamed extra column.
HEADER = ("gss_code,financial_year,chargeable_dwellings,net_collectable_gbp,"
          "collected_by_year_end_gbp,in_year_collection_rate_pct,\n")
BAD_FILE = (HEADER
            + f'{COUNCIL_B_GSS},2023/24,"110,000",£125000000,120000000,0.96,see note\n'
            + "S12000033,2023-24,110000,125000000,120000000,96%,\n").encode("utf-8")


def test_a_council_editor_reads_the_report_of_an_invalid_file(chrome, live_server, app, live_worker):
    from selenium.webdriver.common.by import By

    from ckan import model

    world = make_world()
    editor = world["people"]["a_editor"]
    model.User.get(editor["id"]).password = PASSWORD
    model.Session.commit()
    error = push(app, editor, BAD_FILE, filename="ctas-2023-24.csv", wait="true", status=409)["error"]
    upload = error["upload_id"]
    shown = app.get(f"/api/3/action/lgdp_upload_show?id={upload}", headers=editor["headers"]).json["result"]

    login(chrome, live_server, editor["name"], PASSWORD)
    chrome.get(f"{live_server}/submission/{shown['submission_id']}/uploads/{upload}")
    wait_for(chrome, "table.lgdp-errors")
    chrome.set_window_size(1280, max(900, chrome.execute_script("return document.body.scrollHeight") + 40))
    screenshot(chrome, "report-en")
    text = chrome.find_element(By.TAG_NAME, "body").text
    assert "'S12000034' is the code of Aberdeenshire" in text
    assert "'2023/24' should be written like 2023-24." in text
    assert "'110,000' should be written without commas: 110000." in text
    assert "'£125000000' should be written without the £ sign: 125000000." in text
    assert 'constraint "' not in text and "/default" not in text and '""' not in text

    chrome.get(f"{live_server}/gd/submission/{shown['submission_id']}/uploads/{upload}")
    wait_for(chrome, "html[lang='gd'] table.lgdp-errors")
    text = chrome.find_element(By.TAG_NAME, "body").text
    assert "'110,000': sgrìobh e gun chromagan: 110000." in text and "Dè a chur ceart" in text
    screenshot(chrome, "report-gd")
    chrome.set_window_size(1280, 1600)
    for name in ("report-en", "report-gd"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000
