"""A real browser for the tests of this folder: headless Chromium driven by
Selenium 4, against the live CKAN server of tests/conftest.py (live_server).

Chromium and its driver are Debian's (packages chromium and
chromium-driver: /usr/bin/chromium, /usr/bin/chromedriver), installed by
`./platform.sh test`. Nothing is downloaded: the driver's path is given, so
Selenium Manager is not used, and SE_OFFLINE keeps it offline anyway.

Without /usr/bin/chromedriver these tests are skipped, unless
LGDP_REQUIRE_BROWSER is set (`./platform.sh test` sets it, so CI fails
instead of skipping).

    from tests.browser.conftest import login, screenshot

    def test_something(chrome, live_server):
        chrome.get(live_server + "/dataset/")
        screenshot(chrome, "dataset-search")
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
WAIT_SECONDS = 20

CHROME_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--window-size=1280,1600",
)


@pytest.fixture(scope="session")
def chrome(tmp_path_factory):
    """A headless Chromium (selenium.webdriver.Chrome) shared by the session;
    cookies are cleared after each test that uses it (see `browser_reset`)."""
    if not CHROMEDRIVER.is_file():
        reason = (f"{CHROMEDRIVER} not found: install the Debian packages chromium and chromium-driver "
                  "(./platform.sh test does)")
        if os.environ.get("LGDP_REQUIRE_BROWSER"):
            pytest.fail(f"LGDP_REQUIRE_BROWSER is set but {reason}", pytrace=False)
        pytest.skip(reason)
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager fetch a browser or driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in CHROME_ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(autouse=True)
def browser_reset(request):
    """Each test starts logged out: the shared browser's cookies are
    cleared after a test that used it."""
    yield
    if "chrome" in request.fixturenames:
        driver = request.getfixturevalue("chrome")
        try:
            driver.delete_all_cookies()
        except Exception:  # noqa: BLE001 - the browser may be gone after a failure
            pass


def screenshot(driver, name: str) -> Path:
    """Save the page as test-artifacts/screenshots/<name>.png (git-ignored;
    CI can keep the folder as an artifact) and return the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_for(driver, css: str, seconds: float = WAIT_SECONDS):
    """The first element matching the CSS selector, once it is on the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def login(driver, base_url: str, user_name: str, password: str) -> None:
    """Log in through CKAN's own form (/user/login), as a person would, and
    wait until the page shows the logged-in header."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(base_url.rstrip("/") + "/user/login")
    driver.find_element(By.ID, "field-login").send_keys(user_name)
    driver.find_element(By.ID, "field-password").send_keys(password, Keys.ENTER)
    try:
        wait_for(driver, "form[action$='/user/_logout']")
    except Exception as e:  # noqa: BLE001
        screenshot(driver, f"login-failed-{user_name}")
        raise AssertionError(f"logging in as {user_name} failed; the page says: "
                             f"{driver.find_element(By.TAG_NAME, 'body').text[:500]!r}") from e
