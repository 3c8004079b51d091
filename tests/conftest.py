"""Shared fixtures. Services (PostgreSQL, Solr, Redis) are the real ones that
`./platform.sh test` starts; nothing here mocks them."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from ckan.tests import factories

ROOT = Path(__file__).resolve().parents[1]
STANDARDS = ROOT / "ckanext" / "lgdp" / "schemas" / "standards"


# `./platform.sh test` runs the suite in several processes (pytest-xdist),
# each in a slot of its own: databases, Solr core, Redis database and file
# store (scripts/ckan.sh, test_slot_env). Worker gw0 keeps test.ini's slot;
# gw<i> takes the CKAN_* variables of slot i from LGDP_TEST_ENV_<i>, before
# CKAN's pytest plugin reads the configuration, and its child processes (the
# CLI, web servers and workers the tests start) inherit them.
def _take_slot() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    if worker in ("", "0"):
        return
    spec = os.environ.get(f"LGDP_TEST_ENV_{worker}")
    if not spec:
        raise RuntimeError(f"test process gw{worker} has no slot (LGDP_TEST_ENV_{worker} is unset): "
                           "run the suite in several processes with ./platform.sh test, which prepares them")
    for pair in spec.split():
        name, _, value = pair.partition("=")
        os.environ[name] = value


_take_slot()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--lgdp-phase", choices=("all", "shared", "exclusive"), default="all",
        help="shared: only the tests that may run beside others (in several processes); exclusive: only "
             "those that stop and start the services themselves (marked `services`), which run alone")


# Tests that need CKAN running (its plugins, database, index, web server or
# CLI) are marked `ckan` by the fixtures they use; the rest are pure (the
# engines: fastcsv, intake, quality checks, calendars, cron strings) and run
# on their own in seconds: `pytest -m "not ckan"`.
CKAN_FIXTURES = frozenset({
    "with_plugins", "clean_db", "clean_index", "non_clean_db", "app", "make_app", "cli",
    "live_server", "live_worker", "run_worker", "test_request_context", "with_request_context",
})


# Marks that say a test runs the platform's services or processes.
CKAN_MARKS = frozenset({"services", "packaging"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (CKAN_FIXTURES.intersection(getattr(item, "fixturenames", ()))
                or CKAN_MARKS.intersection(m.name for m in item.iter_markers())):
            item.add_marker(pytest.mark.ckan)
    phase = config.getoption("--lgdp-phase")
    if phase != "all":
        keep, dropped = [], []
        for item in items:
            alone = item.get_closest_marker("services") is not None
            (keep if alone == (phase == "exclusive") else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep


# Plugins with alembic migrations of their own, and the package holding their
# `migration/<plugin>/` folder (as `ckan db init` finds them).
MIGRATED_PLUGINS = {"activity": "ckanext.activity", "lgdp_validation": "ckanext.lgdp", "lgdp": "ckanext.lgdp"}


def migrate(plugin: str) -> None:
    """Apply a plugin's migrations whether or not the plugin is loaded in this
    test (CKAN's migrate_db_for needs it loaded), so tests that run a reduced
    plugin set still find every table."""
    import importlib

    from alembic import command
    from alembic.config import Config

    from ckan.plugins.toolkit import config

    package = importlib.import_module(MIGRATED_PLUGINS[plugin])
    folder = Path(package.__file__).parent / "migration" / plugin
    alembic_cfg = Config(str(folder / "alembic.ini"))
    alembic_cfg.set_main_option("script_location", str(folder))
    alembic_cfg.set_main_option("sqlalchemy.url", config["sqlalchemy.url"])
    command.upgrade(alembic_cfg, "head")


# ------------------------------------------------ the plugins and the app, kept
#
# CKAN's with_plugins loads every plugin of test.ini before a test and unloads
# them after it, and its app fixture builds a new Flask application for each
# test: two seconds or more a test, most of the suite's fixed cost. Here both
# are kept from one test to the next while what they are made of is the same:
# the configuration as it stands when the fixture runs (test.ini, the test's
# `ckan_config` marks and whatever an earlier fixture of the test set). Any
# difference, and the plugins are loaded afresh and the app rebuilt, as CKAN
# would. CKAN's ckan_config fixture puts the configuration back after every
# test, which takes away what the plugins' update_config added to it: the
# configuration the plugins left is kept with them and put back for each test
# that keeps them.

_kept: dict[str, Any] = {"plugins": None, "loaded_config": None, "app": None}


def _fingerprint(config) -> str:
    return repr(sorted((str(k), repr(v)) for k, v in config.items()))


@pytest.fixture
def with_plugins(ckan_config):
    import copy

    import ckan.plugins

    before = _fingerprint(ckan_config)
    if _kept["plugins"] != before:
        if _kept["plugins"] is not None:
            ckan.plugins.unload_non_system_plugins()
        _kept.update(plugins=None, app=None)
        ckan.plugins.load_all()
        _kept.update(plugins=before, loaded_config=copy.deepcopy(dict(ckan_config)))
    else:
        ckan_config.clear()
        ckan_config.update(copy.deepcopy(_kept["loaded_config"]))
    yield


@pytest.fixture
def make_app(ckan_config):
    """CKAN's make_app, with the application kept while the configuration
    it was built from is unchanged (see above)."""
    from ckan.lib.app_globals import _CONFIG_CACHE
    from ckan.tests import helpers

    _CONFIG_CACHE.clear()

    def make():
        key = _fingerprint(ckan_config)
        if _kept["app"] is None or _kept["app"][0] != key:
            _kept["app"] = (key, helpers._get_test_app())
        return _kept["app"][1]

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture(scope="session", autouse=True)
def _unload_kept_plugins():
    yield
    import ckan.plugins

    if _kept["plugins"] is not None:
        ckan.plugins.unload_non_system_plugins()


_database = {"migrated": False}


@pytest.fixture
def clean_db(reset_db, reset_queues):
    """An empty database for the test, made once a session and emptied
    after: the first use drops every table (CKAN's reset_db) and applies
    CKAN's and the plugins' migrations; every later one empties all the
    tables in one TRUNCATE (the migrations' own version tables kept)
    instead of CKAN's clean_db and the migrations again. The job
    queues are emptied with it (CKAN's reset_queues): a job left by an
    earlier test names rows that no longer exist, and a worker would spend
    its first seconds waiting for them."""
    if _database["migrated"]:
        _empty_tables()
    else:
        reset_db()
        for plugin in MIGRATED_PLUGINS:
            migrate(plugin)
        _database["migrated"] = True
    factories.fake.unique.clear()
    reset_queues()
    _forget_platform_keys()


def _empty_tables() -> None:
    import sqlalchemy as sa

    from ckan import model

    model.Session.close_all()
    with model.ensure_engine().begin() as conn:
        tables = conn.execute(sa.text(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename NOT LIKE '%alembic_version'")).scalars().all()
        if tables:
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


def _forget_platform_keys() -> None:
    """The platform's own Redis keys (the scheduler's tick and leader lock,
    workers' heartbeats, pending quality-check marks) go with the queues: a
    scheduler or worker of an earlier test (the fault suite's) would
    otherwise still be seen by the health of the next."""
    import ckan.plugins.toolkit as tk
    from ckan.lib.redis import connect_to_redis

    redis = connect_to_redis()
    keys = list(redis.scan_iter(match=f"ckan:{tk.config.get('ckan.site_id')}:lgdp:*", count=1000))
    if keys:
        redis.delete(*keys)


def ckan_cli(*args: str, timeout: int = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `ckan -c test.ini ARGS` in a child process, as an operator would."""
    ckan = Path(sys.executable).with_name("ckan")
    return subprocess.run(
        [str(ckan), "-c", str(ROOT / "test.ini"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def run_worker(app) -> Callable[..., bool]:
    """Drain the job queues with the platform's worker in burst mode: the
    function `ckan lgdp worker --burst` runs (ops.worker.work: jobs in the
    worker's own process, a fresh database session after each), here in the
    test's process rather than a child that starts CKAN again for every call.
    The CLI command itself is what `live_worker` runs.
    CKAN's app (the `app` fixture) gives the jobs the application context a
    worker has."""
    import signal

    from ckan.model import meta

    from ckanext.lgdp.ops import worker as ops_worker

    def run(*queues: str, max_jobs: int | None = None) -> bool:
        assert not [q for q in queues if q.startswith("-")], "queues only: max_jobs= for --max-jobs"
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        meta.Session.remove()  # the jobs start from what is committed, as in a worker process
        try:
            return ops_worker.work(queues or ("default",), burst=True, max_jobs=max_jobs)
        finally:
            meta.Session.remove()
            for sig, handler in handlers.items():  # RQ's stop handlers go with the worker
                signal.signal(sig, handler)

    return run


def platform(*args: str, timeout: int = 240, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Call ./platform.sh (e.g. to stop or start one service)."""
    return subprocess.run(
        [str(ROOT / "platform.sh"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def standard(name: str) -> dict[str, Any]:
    return json.loads((STANDARDS / f"{name}.json").read_text("utf-8"))


def csv_bytes(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


@pytest.fixture
def agency_admin():
    """A real user who administers a requesting agency, with an API token."""
    user = factories.UserWithToken()
    org = factories.Organization(
        org_type="agency",
        users=[{"name": user["name"], "capacity": "admin"}],
    )
    return {"user": user, "org": org, "headers": {"Authorization": user["token"]}}


def api(app, action, headers=None, status=200, **data) -> dict[str, Any]:
    """POST an action to the API as JSON and return the decoded answer."""
    resp = app.post(f"/api/3/action/{action}", json=data, headers=headers or {}, status=status)
    return resp.json


CTAS_HEADER = [
    "gss_code", "financial_year", "chargeable_dwellings", "net_collectable_gbp",
    "collected_by_year_end_gbp", "in_year_collection_rate_pct",
]
CTAS_VALID_ROW = ["S12000047", "2023-24", "186035", "257310000", "247480000", "96.2"]


def upload_return_file(app, headers, org_id, rows, dataset_type="data-return", status=200):
    """Create a return (or plain dataset) and upload `rows` as a CSV resource
    carrying the council tax standard, through the HTTP API."""
    fields = {"frequency": "annual", "statutory": "no", "notes": "Council tax billed and collected."}
    dataset = api(
        app,
        "package_create",
        headers=headers,
        type=dataset_type,
        name="council-tax-collection",
        title="Council Tax Collection",
        owner_org=org_id,
        **(fields if dataset_type == "data-return" else {}),
    )["result"]
    resp = app.post(
        "/api/3/action/resource_create",
        data={
            "package_id": dataset["id"],
            "name": "2023-24",
            "format": "CSV",
            "schema": json.dumps(standard("council-tax-collection.v1")),
            "upload": (io.BytesIO(csv_bytes(rows)), "ctas-2023-24.csv"),
        },
        headers=headers,
        status=status,
    )
    return dataset, resp.json


# ---------------------------------------------------------------- a small world
#
# Two councils, three agencies (the owner of the return, one that requests it,
# one that does not), the coordinating body, and a user in every role, each
# with an API token: the people of the access policy.

COUNCIL_A_GSS = "S12000033"  # Aberdeen City
COUNCIL_B_GSS = "S12000034"  # Aberdeenshire
RETURN_NAME = "council-tax-collection"


def make_user(org: dict | None = None, capacity: str = "member", sysadmin: bool = False) -> dict[str, Any]:
    from ckan.tests.helpers import call_action

    user = factories.SysadminWithToken() if sysadmin else factories.UserWithToken()
    if org:
        call_action("organization_member_create", id=org["id"], username=user["name"], role=capacity)
    return {"name": user["name"], "id": user["id"], "token": user["token"], "headers": {"Authorization": user["token"]}}


def make_world() -> dict[str, Any]:
    from ckan.tests.helpers import call_action

    orgs = {
        "council_a": factories.Organization(name="aberdeen-city", title="Aberdeen City", org_type="council", gss_code=COUNCIL_A_GSS),
        "council_b": factories.Organization(name="aberdeenshire", title="Aberdeenshire", org_type="council", gss_code=COUNCIL_B_GSS),
        "agency_x": factories.Organization(name="sg-local-government-finance", title="Scottish Government LG Finance", org_type="agency"),
        "agency_r": factories.Organization(name="accounts-commission", title="Accounts Commission", org_type="agency"),
        "agency_y": factories.Organization(name="sepa", title="SEPA", org_type="agency"),
        "coordinator": factories.Organization(name="improvement-service", title="Improvement Service", org_type="coordinator"),
    }
    people = {
        "anonymous": {"name": "", "id": None, "headers": {}},
        "a_member": make_user(orgs["council_a"], "member"),
        "a_editor": make_user(orgs["council_a"], "editor"),
        "a_admin": make_user(orgs["council_a"], "admin"),
        "b_editor": make_user(orgs["council_b"], "editor"),
        "b_admin": make_user(orgs["council_b"], "admin"),
        "x_member": make_user(orgs["agency_x"], "member"),
        "x_editor": make_user(orgs["agency_x"], "editor"),
        "r_editor": make_user(orgs["agency_r"], "editor"),
        "y_editor": make_user(orgs["agency_y"], "editor"),
        "coordinator": make_user(orgs["coordinator"], "editor"),
        "reviewer": make_user(orgs["coordinator"], "member"),
        "sysadmin": make_user(sysadmin=True),
    }
    ret = call_action(
        "package_create",
        context={"user": people["sysadmin"]["name"]},
        type="data-return",
        name=RETURN_NAME,
        title="Council Tax Collection",
        notes="Council tax billed and collected in the year.",
        owner_org=orgs["agency_x"]["id"],
        requesting_agencies=[orgs["agency_r"]["name"]],
        frequency="annual",
        period_basis="financial",
        statutory="yes",
        lifecycle_status="active",
        data_standard=json.dumps(standard("council-tax-collection.v1")),
    )
    return {"orgs": orgs, "people": people, "return": ret}


def ctas_rows(gss: str = COUNCIL_A_GSS, period: str = "2023-24", dwellings: int = 110000,
              collected: int = 120000000) -> list[list[Any]]:
    """A valid council tax collection file for one council and year."""
    return [CTAS_HEADER, [gss, period, str(dwellings), "125000000", str(collected), "96.0"]]


def push(app, who: dict[str, Any], content: bytes, filename: str = "ctas.csv", status: int = 200,
         period: str = "2023-24", council: str = "aberdeen-city", **extra: Any) -> dict[str, Any]:
    """A council system's push: one multipart call to lgdp_submission_upload."""
    data = {"data_return": RETURN_NAME, "council": council, "period": period,
            "upload": (io.BytesIO(content), filename), **extra}
    resp = app.post("/api/3/action/lgdp_submission_upload", data=data, headers=who["headers"], status=status)
    return resp.json


def transition(app, who: dict[str, Any], submission: str, action: str, status: int = 200, reason: str = "") -> dict[str, Any]:
    resp = app.post("/api/3/action/lgdp_submission_transition", headers=who["headers"], status=status,
                    json={"id": submission, "action": action, "reason": reason})
    return resp.json


@pytest.fixture
def live_worker():
    """A real worker process (`ckan lgdp worker`) running while the test
    runs (for uploads that wait for their validation result)."""
    ckan = Path(sys.executable).with_name("ckan")
    proc = subprocess.Popen(
        [str(ckan), "-c", str(ROOT / "test.ini"), "lgdp", "worker", "lgdp:validation"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    yield proc
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass  # the test killed it
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def file_server():
    """A council's own web server on loopback: serves files by path, can be
    told to answer slowly, with an error, with a redirect (`redirects`: path
    -> Location) or without a Content-Length (paths in `unsized`)."""
    import http.server
    import threading
    import time

    state: dict[str, Any] = {"files": {}, "delay": {}, "status": {}, "redirects": {}, "unsized": set(),
                             "hits": [], "headers": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            state["hits"].append(self.path)
            state["headers"].append({k.lower(): v for k, v in self.headers.items()})
            delay = state["delay"].pop(self.path, 0)
            if delay:
                time.sleep(delay)
            location = state["redirects"].get(self.path)
            if location:
                self.send_response(302)
                self.send_header("Location", location)
                self.end_headers()
                return
            status = state["status"].get(self.path)
            body = state["files"].get(self.path)
            if status or body is None:
                self.send_response(status or 404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            if self.path not in state["unsized"]:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()


@pytest.fixture
def receiver():
    """A webhook receiver on loopback: records what it gets, answers with the
    statuses queued in `answers` (0: too slowly), then 200."""
    import http.server
    import threading
    import time

    got: list[dict] = []
    answers: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            status = answers.pop(0) if answers else 200
            if status == 0:  # hang past the sender's timeout
                time.sleep(2)
                status = 200
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/hook", "got": got, "answers": answers}
    server.shutdown()


WEB_COMMAND = ("gunicorn", "-c", "python:ckanext.lgdp.ops.gunicorn_conf")


class WebServer:
    """The platform's production web server (gunicorn with the settings of
    ckanext/lgdp/ops/gunicorn_conf.py, as `./platform.sh run` serves it)
    with test.ini on a free loopback port, in a process group of its own."""

    def __init__(self, log_dir: Path, workers: int = 1) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"web-{self.port}.log"
        self.workers = workers
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> str:
        import time

        import requests

        gunicorn = Path(sys.executable).with_name(WEB_COMMAND[0])
        env = {
            **os.environ,
            "CKAN_INI": str(ROOT / "test.ini"),
            # its own address as the site URL, so that redirects (after logging in) stay on it
            "CKAN_SITE_URL": self.url,
            "LGDP_WEB_WORKERS": str(self.workers),
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(gunicorn), *WEB_COMMAND[1:], "--bind", f"127.0.0.1:{self.port}"],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=env,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(self.url + "/api/3/action/status_show", timeout=2).ok:
                    return self.url
            except requests.RequestException:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log_tail()
            time.sleep(0.5)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text("utf-8", errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        import signal

        if self.proc is None or self.proc.poll() is not None:
            return
        # gunicorn's quick shutdown (INT): no grace for requests in flight
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def live_server(tmp_path_factory):
    """A real CKAN web server (the platform's gunicorn, one process, with
    test.ini) on a free loopback port, for the README's examples and the
    browser tests; yields its base URL (http://127.0.0.1:PORT)."""
    server = WebServer(tmp_path_factory.mktemp("web"))
    try:
        yield server.start()
    finally:
        server.stop()
