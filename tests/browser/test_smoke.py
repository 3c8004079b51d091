"""The platform in a real browser: the home page, the dataset search, logging
in through CKAN's form, and the Scottish Gaelic pages under /gd/."""
from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.browser.conftest import login, screenshot, wait_for
from tests.conftest import make_user

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

PASSWORD = "Correct-Horse-Battery-9"


def test_pages_login_and_gaelic(chrome, live_server):
    from selenium.webdriver.common.by import By

    from ckan import model

    # make_user's factory gives a random password that it does not return: set one
    user = make_user()
    model.User.get(user["id"]).password = PASSWORD  # hashed by the model
    model.Session.commit()

    chrome.get(live_server + "/")
    assert "Local Government Data Platform" in chrome.title
    assert chrome.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    screenshot(chrome, "home")

    chrome.get(live_server + "/dataset/")
    search = wait_for(chrome, "#dataset-search-form #field-giant-search")
    assert search.get_attribute("name") == "q"
    assert "Data returns" in chrome.find_element(By.TAG_NAME, "header").text
    screenshot(chrome, "dataset-search")

    login(chrome, live_server, user["name"], PASSWORD)
    assert chrome.find_element(By.CSS_SELECTOR, f"a[href$='/user/{user['name']}']")
    screenshot(chrome, "logged-in")

    chrome.get(live_server + "/gd/dataset/")
    wait_for(chrome, "#dataset-search-form")
    assert chrome.find_element(By.TAG_NAME, "html").get_attribute("lang") == "gd"
    assert "Tillidhean dàta" in chrome.find_element(By.TAG_NAME, "header").text  # "Data returns"
    # still logged in, in Gaelic
    assert chrome.find_elements(By.CSS_SELECTOR, "form[action$='/user/_logout']")
    screenshot(chrome, "dataset-search-gd")


@pytest.mark.usefixtures("with_request_context")
def test_the_chart_library_is_served(live_server):
    """ECharts, installed from npm (ckanext/lgdp/assets/package.json), is
    served by CKAN's webassets as the lgdp/lgdp-echarts bundle."""
    from flask import g

    from ckan.lib import webassets_tools

    source = Path(webassets_tools.env["lgdp/lgdp-echarts"].contents[0])
    assert source.is_file(), f"{source} missing: run `npm ci` in ckanext/lgdp/assets (./platform.sh does)"
    webassets_tools.include_asset("lgdp/lgdp-echarts")
    [url] = g._webassets["script"]
    resp = requests.get(live_server + url, timeout=30)
    assert resp.status_code == 200
    assert "echarts" in resp.text[:5000] and len(resp.content) > 500_000
