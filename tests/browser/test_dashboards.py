"""The benchmarking dashboard in a real browser: a council editor logs in,
opens the dashboard, changes council and indicator, sees the charts (ECharts'
SVG) and the map drawn with the figures, and switches to Scottish Gaelic
through the site's language selector. Screenshots of the dashboard and the
map, in English and in Gaelic, go to test-artifacts/screenshots/."""
from __future__ import annotations

import pytest

from ckanext.lgdp.repository import reference
from tests.browser.conftest import SCREENSHOTS, login, screenshot, wait_for
from tests.conftest import COUNCIL_A_GSS, make_world
from tests.test_dashboards import DWELLINGS, OUTLIER, RATE_PCT, seed_table

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

PASSWORD = "Correct-Horse-Battery-9"
HIGHLIGHT = "rgb(11,83,148)"  # dashboard.js COLOURS.highlight (#0b5394)


def _svg_texts(chrome, css: str) -> list[str]:
    return chrome.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' svg text')).map(t => t.textContent);", css)


def _bar_fills(chrome) -> list[str]:
    """The fill of every bar ECharts drew in the ranking chart, normalised."""
    return chrome.execute_script("""
        const out = [];
        document.querySelectorAll('.lgdp-chart-ranking svg path').forEach(p => {
          const fill = (p.getAttribute('fill') || '').replace(/\\s/g, '');
          const d = p.getAttribute('d') || '';
          if (fill && fill !== 'none' && d.includes('Z')) out.push(fill);
        });
        return out;""")


def _element_shot(chrome, css: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    element = chrome.find_element(By.CSS_SELECTOR, css)
    chrome.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)
    element.screenshot(str(SCREENSHOTS / f"{name}.png"))


def _normal(colour: str) -> str:
    colour = colour.lower().replace(" ", "")
    if colour.startswith("#") and len(colour) == 7:
        return "rgb({},{},{})".format(*(int(colour[i:i + 2], 16) for i in (1, 3, 5)))
    return colour



def _click(chrome, selector: str) -> None:
    """Click a control after bringing it into view at once (a screenshot of
    the map may leave the page scrolled with the control above the window)."""
    from selenium.webdriver.common.by import By

    element = chrome.find_element(By.CSS_SELECTOR, selector)
    chrome.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)
    element.click()

def test_a_council_editor_uses_the_dashboard_in_english_and_gaelic(chrome, live_server, app):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from ckan import model
    from ckan.tests.helpers import call_action

    world = make_world()
    seed_table(world["return"])
    people = world["people"]
    call_action("lgdp_qa_run", context={"user": people["coordinator"]["name"]}, data_return=world["return"]["id"])
    call_action("lgdp_table_publish", context={"user": people["coordinator"]["name"]},
                data_return=world["return"]["id"], published=True)
    editor = people["a_editor"]
    model.User.get(editor["id"]).password = PASSWORD
    model.Session.commit()
    names = reference.council_names()

    login(chrome, live_server, editor["name"], PASSWORD)
    chrome.get(live_server + "/benchmarking")
    # the editor's own council is chosen for them
    council = Select(wait_for(chrome, "#field-council"))
    assert council.first_selected_option.get_attribute("value") == COUNCIL_A_GSS
    Select(chrome.find_element(By.ID, "field-indicator")).select_by_value(DWELLINGS)
    _click(chrome, "#show-indicator")

    # the charts are drawn as SVG with the figures of the page
    wait_for(chrome, ".lgdp-chart-ranking[data-rendered='ranking'] svg")
    wait_for(chrome, ".lgdp-chart-trend[data-rendered='trend'] svg")
    assert chrome.find_element(By.CSS_SELECTOR, "h1.lgdp-dashboard-title").text == "Aberdeen City"
    ranking_labels = _svg_texts(chrome, ".lgdp-chart-ranking")
    assert set(names.values()) <= set(ranking_labels), "every council is a bar of the ranking"
    fills = [_normal(f) for f in _bar_fills(chrome)]
    assert fills.count(HIGHLIGHT) == 1 and len(fills) >= 32, fills
    trend_labels = _svg_texts(chrome, ".lgdp-chart-trend")
    assert {"2020-21", "2023-24", "Aberdeen City", "Scotland", "Family group average"} <= set(trend_labels)
    # the map: 32 areas coloured, the council outlined
    areas = chrome.find_elements(By.CSS_SELECTOR, ".lgdp-map svg .lgdp-map-area")
    assert len(areas) == 32
    assert len({a.get_attribute("fill") for a in areas}) >= 4, "areas coloured by their figure"
    marked = chrome.find_elements(By.CSS_SELECTOR, ".lgdp-map svg .lgdp-map-highlight")
    assert marked and marked[0].get_attribute("data-gss") == COUNCIL_A_GSS
    # the headline agrees with the ranking table
    rank_row = chrome.find_element(By.CSS_SELECTOR, f".lgdp-ranking-table tr[data-gss='{COUNCIL_A_GSS}']")
    assert "lgdp-highlight" in rank_row.get_attribute("class")
    figure = chrome.find_element(By.CSS_SELECTOR, "[data-figure='council']").text.split()[0]
    assert figure in rank_row.text
    screenshot(chrome, "dashboard-en")
    _element_shot(chrome, ".lgdp-map svg", "map-en")

    # change council and indicator: Inverclyde, where a flag is open
    Select(chrome.find_element(By.ID, "field-council")).select_by_value(OUTLIER[0])
    Select(chrome.find_element(By.ID, "field-indicator")).select_by_value(RATE_PCT)
    _click(chrome, "#show-indicator")
    wait_for(chrome, ".lgdp-chart-ranking[data-rendered='ranking'] svg")
    assert chrome.find_element(By.CSS_SELECTOR, "h1.lgdp-dashboard-title").text == "Inverclyde"
    assert "In-year collection rate" in chrome.find_element(By.CSS_SELECTOR, ".lgdp-panel h2").text
    assert chrome.find_element(By.CSS_SELECTOR, ".lgdp-map svg .lgdp-map-highlight").get_attribute("data-gss") == OUTLIER[0]
    assert [_normal(f) for f in _bar_fills(chrome)].count(HIGHLIGHT) == 1

    # switch to Gaelic with the site's language selector
    chrome.execute_script("""
        const s = document.getElementById('field-lang-select');
        s.value = Array.from(s.options).find(o => o.lang === 'gd').value;
        s.form.submit();""")
    wait_for(chrome, "html[lang='gd'] .lgdp-chart-ranking[data-rendered='ranking'] svg")
    assert "/gd/benchmarking/indicator" in chrome.current_url
    page = chrome.find_element(By.TAG_NAME, "body").text
    assert "Comhairle" in page and "Alba" in page, "labels and the Scotland figure in Gaelic"
    assert "Inverclyde" in _svg_texts(chrome, ".lgdp-chart-ranking")
    assert len(chrome.find_elements(By.CSS_SELECTOR, ".lgdp-map svg .lgdp-map-area")) == 32
    Select(chrome.find_element(By.ID, "field-indicator")).select_by_value(DWELLINGS)
    Select(chrome.find_element(By.ID, "field-council")).select_by_value(COUNCIL_A_GSS)
    _click(chrome, "#show-indicator")
    wait_for(chrome, "html[lang='gd'] .lgdp-chart-trend[data-rendered='trend'] svg")
    assert "Alba" in _svg_texts(chrome, ".lgdp-chart-trend")  # the series "Scotland"
    screenshot(chrome, "dashboard-gd")
    _element_shot(chrome, ".lgdp-map svg", "map-gd")
    for name in ("dashboard-en", "map-en", "dashboard-gd", "map-gd"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000


def test_a_saved_dashboard_in_the_browser(chrome, live_server, app):
    from selenium.webdriver.common.by import By

    from ckan import model
    from ckan.tests.helpers import call_action

    world = make_world()
    seed_table(world["return"])
    people = world["people"]
    call_action("lgdp_table_publish", context={"user": people["coordinator"]["name"]},
                data_return=world["return"]["id"], published=True)
    editor = people["a_editor"]
    model.User.get(editor["id"]).password = PASSWORD
    model.Session.commit()

    login(chrome, live_server, editor["name"], PASSWORD)
    chrome.get(live_server + "/benchmarking")
    wait_for(chrome, ".lgdp-save-form")
    chrome.find_element(By.ID, "field-title").send_keys("Council tax at a glance")
    for ident in (DWELLINGS, RATE_PCT):
        chrome.find_element(By.CSS_SELECTOR, f"input[name='indicators'][value='{ident}']").click()
    _click(chrome, ".lgdp-save-form button[type='submit']")
    wait_for(chrome, ".lgdp-panel .lgdp-chart-trend[data-rendered='trend'] svg")
    assert chrome.find_element(By.CSS_SELECTOR, "h1.lgdp-dashboard-title").text == "Council tax at a glance"
    panels = chrome.find_elements(By.CSS_SELECTOR, "section.lgdp-panel")
    assert len(panels) == 2
    rendered = chrome.find_elements(By.CSS_SELECTOR, ".lgdp-chart[data-rendered] svg")
    assert len(rendered) == 4  # a trend and a ranking per indicator
    screenshot(chrome, "saved-dashboard-en")
