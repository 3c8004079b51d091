"""Outages: with Solr or Redis stopped, the API answers a clear 503, nothing is
written, and the platform works again once the service is back. These tests
really stop and start the services of `./platform.sh test`."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from ckan import model

from tests.conftest import platform

pytestmark = [
    pytest.mark.services,
    pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index"),
]


def _create(app, agency_admin, name, status):
    return app.post(
        "/api/3/action/package_create",
        json={
            "type": "data-return",
            "name": name,
            "title": name,
            "notes": "A return created in an outage test.",
            "owner_org": agency_admin["org"]["id"],
            "frequency": "annual",
            "statutory": "no",
        },
        headers=agency_admin["headers"],
        status=status,
    )


def _package_rows(name):
    return model.Session.execute(
        sa.text("SELECT count(*) FROM package WHERE name = :n"), {"n": name}
    ).scalar_one()


@pytest.mark.parametrize(
    ("service", "label"),
    [("solr", "search service (Solr)"), ("redis", "job queue (Redis)")],
)
def test_a_write_during_an_outage_is_refused_cleanly_and_works_after(app, agency_admin, service, label):
    stopped = platform("service", "stop", service)
    assert stopped.returncode == 0, stopped.stderr
    try:
        resp = _create(app, agency_admin, "written-during-outage", status=503)
        body = resp.json
        assert body["success"] is False
        assert body["error"]["__type"] == "Service Unavailable"
        assert label in body["error"]["message"]
        assert "nothing was changed" in body["error"]["message"]
        assert resp.headers["Retry-After"] == "30"
        assert _package_rows("written-during-outage") == 0

        status = app.get("/api/3/action/lgdp_status_show").json["result"]
        down = {"solr": "search", "redis": "jobs"}[service]
        assert status["ok"] is False and status["services"][down]["ok"] is False

        if service == "solr":
            search = app.get("/api/3/action/package_search", status=503).json
            assert search["success"] is False
            page = app.get("/dataset/", status=503)
            assert "Service unavailable" in page.body
    finally:
        started = platform("service", "start", service)
        assert started.returncode == 0, started.stdout + started.stderr

    _create(app, agency_admin, "written-after-outage", status=200)
    assert _package_rows("written-after-outage") == 1
    found = app.get("/api/3/action/package_search", query_string={"q": "name:written-after-outage", "include_private": True}).json
    assert found["result"]["count"] == 1
