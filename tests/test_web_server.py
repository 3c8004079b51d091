"""The served platform: the production web server (gunicorn, as `./platform.sh
run` serves it) never shows Werkzeug's debugger or a traceback, its error
pages are the platform's own, and it survives a restart of PostgreSQL
without being restarted itself: 503s with a message meanwhile, answers again
as soon as the database is back, through CKAN's engine and the DataStore's."""
from __future__ import annotations

import re

import pytest
import requests

from ckan import model
from ckan.tests import factories
from ckan.tests.helpers import call_action

from tests.conftest import WebServer, platform

pytestmark = pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")

# What only Werkzeug's debugger serves: its script, its pages, its console.
DEBUGGER_MARKS = (
    "Werkzeug Debugger",
    "The debugger caught an exception",
    "EVALEX",
    "CONSOLE_MODE",
    "initPinBox",
    "Traceback (most recent call last)",
)
DEBUGGER_URLS = (
    "/?__debugger__=yes&cmd=resource&f=debugger.js",
    "/?__debugger__=yes&cmd=resource&f=style.css",
    "/?__debugger__=yes&cmd=printpin&s=x",
    "/console",
)


def assert_no_debugger(resp: requests.Response) -> None:
    body = resp.text
    found = [mark for mark in DEBUGGER_MARKS if mark in body]
    assert not found, f"{resp.url} answered {resp.status_code} with {found}"
    assert "javascript" not in resp.headers.get("Content-Type", ""), resp.url
    assert not re.search(r'File "[^"]+\.py", line \d+', body), f"{resp.url} shows a traceback"


def assert_platform_page(resp: requests.Response) -> None:
    """An HTML page of the platform's own templates (not Werkzeug's nor
    gunicorn's bare error page)."""
    assert resp.headers["Content-Type"].startswith("text/html"), resp.headers["Content-Type"]
    assert "<!DOCTYPE html>" in resp.text[:200]
    assert "Local Government Data Platform" in resp.text
    assert_no_debugger(resp)


def test_the_debugger_is_never_served(live_server):
    for path in DEBUGGER_URLS:
        resp = requests.get(live_server + path, timeout=30)
        assert_no_debugger(resp)
        if path == "/console":
            assert resp.status_code == 404
            assert_platform_page(resp)
        else:
            # the home page, whatever the query string says
            assert resp.status_code == 200
            assert_platform_page(resp)


def test_an_error_page_is_the_platforms_own(live_server):
    missing = requests.get(live_server + "/dataset/no-such-return", timeout=30)
    assert missing.status_code == 404
    assert_platform_page(missing)
    api = requests.get(live_server + "/api/3/action/no_such_action", timeout=30)
    assert api.status_code == 400
    assert "Action name not known: no_such_action" in api.text
    assert_no_debugger(api)


def _datastore_table(sysadmin: dict) -> str:
    dataset = factories.Dataset(owner_org=factories.Organization(org_type="agency")["id"])
    return call_action(
        "datastore_create",
        context={"user": sysadmin["name"], "ignore_auth": False},
        resource={"package_id": dataset["id"]},
        fields=[{"id": "council", "type": "text"}, {"id": "rate", "type": "numeric"}],
        records=[{"council": "Fife", "rate": 95.1}, {"council": "Moray", "rate": 96.4}],
        force=True,
    )["resource_id"]


def _reads(url: str, headers: dict[str, str], resource_id: str) -> list[requests.Response]:
    """Pages and API calls that need PostgreSQL: CKAN's engine and the
    DataStore's read engine."""
    return [
        requests.get(url + "/dataset/", timeout=30),
        # signed in: CKAN reads the user from the database before anything else
        requests.get(url + "/dataset/", headers=headers, timeout=30),
        requests.get(url + "/api/3/action/package_search", params={"include_private": True}, headers=headers, timeout=30),
        requests.get(url + "/api/3/action/organization_list", timeout=30),
        requests.get(url + "/api/3/action/datastore_search", params={"resource_id": resource_id}, headers=headers, timeout=30),
    ]


def _start_postgresql() -> None:
    """Start PostgreSQL again; this test process's own connections died with
    the server, so its session is dropped."""
    started = platform("service", "start", "postgres")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        model.Session.rollback()
    except Exception:  # noqa: BLE001 - a dead connection
        pass
    model.Session.remove()


def _restart_postgresql() -> None:
    stopped = platform("service", "stop", "postgres")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    _start_postgresql()


def _booted_workers(server: WebServer) -> int:
    return server.log_tail(10**7).count("Booting worker with pid")


@pytest.mark.services
def test_the_web_survives_a_postgresql_restart(app, tmp_path_factory):
    # the DataStore builds its dump URL while the table is made: CKAN's app is needed
    sysadmin = factories.SysadminWithToken()
    headers = {"Authorization": sysadmin["token"]}
    resource_id = _datastore_table(sysadmin)
    model.Session.remove()

    server = WebServer(tmp_path_factory.mktemp("web"), workers=2)
    url = server.start()
    try:
        # every process of the server holds pooled connections to both databases
        for _ in range(6):
            for resp in _reads(url, headers, resource_id):
                assert resp.status_code == 200, (resp.url, resp.text[:500])
        before = requests.get(url + "/api/3/action/datastore_search", params={"resource_id": resource_id},
                              headers=headers, timeout=30).json()["result"]
        assert sorted(r["council"] for r in before["records"]) == ["Fife", "Moray"]
        booted = _booted_workers(server)
        assert booted == 2, server.log_tail()

        # A restart with no request meanwhile: every pooled connection of both
        # engines is dead, and each is found so when it is next taken
        # (pool_pre_ping) instead of failing the request that takes it.
        _restart_postgresql()
        for _ in range(6):
            for resp in _reads(url, headers, resource_id):
                assert resp.status_code == 200, (resp.url, resp.status_code, resp.text[:500])

        # An outage with requests meanwhile: 503s with a message.
        stopped = platform("service", "stop", "postgres")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        try:
            during = _reads(url, headers, resource_id)
            during.append(requests.post(url + "/api/3/action/package_create", headers=headers, timeout=30,
                                        json={"name": "a-return-while-postgresql-is-down", "type": "data-return"}))
            for resp in during:
                assert resp.status_code == 503, (resp.url, resp.status_code, resp.text[:500])
                assert resp.headers["Retry-After"] == "30"
                assert_no_debugger(resp)
                if "/api/" in resp.url:
                    error = resp.json()["error"]
                    assert error["__type"] == "Service Unavailable"
                    assert "The database (PostgreSQL) is not available" in error["message"]
                else:
                    assert_platform_page(resp)
                    assert "Service unavailable" in resp.text
                    assert "The database (PostgreSQL) is not available" in resp.text
        finally:
            _start_postgresql()

        # the same server, the same processes: the very next requests succeed
        for _ in range(6):
            for resp in _reads(url, headers, resource_id):
                assert resp.status_code == 200, (resp.url, resp.status_code, resp.text[:500])
        after = requests.get(url + "/api/3/action/datastore_search", params={"resource_id": resource_id},
                             headers=headers, timeout=30).json()["result"]
        assert after["records"] == before["records"]
        assert server.proc is not None and server.proc.poll() is None
        assert _booted_workers(server) == booted, "a server process was replaced"
    finally:
        server.stop()
