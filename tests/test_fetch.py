"""The one fetcher (ckanext/lgdp/fetch.py), against real servers on
127.0.0.1 and nothing else: every address it must refuse, directly, through
a redirect from an allowed server and through a name, refused before any
connection is made; the limits; and the API that takes a URL, which refuses
it before anything is created.

No packet is ever sent to a refused address: a Python audit hook records
every socket this thread connects while a fetch runs, and the tests check
that only 127.0.0.1 (the allowed test server) was reached, or nothing.
"""
from __future__ import annotations

import contextlib
import http.server
import re
import sys
import threading
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import yaml

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp import fetch
from ckanext.lgdp.connectors import webhooks
from ckanext.lgdp.model import Connector, Upload
from tests.conftest import ROOT, api, csv_bytes, ctas_rows, make_world

PACKAGE = ROOT / "ckanext" / "lgdp"
SETTING = "ckanext.lgdp.fetch.test_loopback"
DB = pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")
MB = 1024 * 1024

# ---------------------------------------------------------------- watching the sockets

_watched: dict[int, list[Any]] = {}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        seen = _watched.get(threading.get_ident())
        if seen is not None:
            seen.append(args[1])


sys.addaudithook(_audit)  # hooks stay for the process: it records only inside `connections()`


@contextlib.contextmanager
def connections() -> Iterator[list[Any]]:
    """The addresses this thread connects sockets to meanwhile."""
    seen: list[Any] = []
    _watched[threading.get_ident()] = seen
    try:
        yield seen
    finally:
        del _watched[threading.get_ident()]


def refused(url: str, **kwargs: Any) -> fetch.FetchError:
    """Fetch `url`, which must be refused before any connection."""
    with connections() as seen, pytest.raises(fetch.FetchError) as caught:
        fetch.get(url, max_bytes=kwargs.pop("max_bytes", MB), timeout=kwargs.pop("timeout", 10), **kwargs)
    assert seen == [], f"{url}: connected to {seen}"
    return caught.value


# ---------------------------------------------------------------- refused directly

REFUSED = [
    # (URL, the address named in the message, why)
    ("https://10.0.0.1/ctas.csv", "10.0.0.1", "a private network address"),
    ("https://172.16.5.4/", "172.16.5.4", "a private network address"),
    ("https://192.168.1.10/", "192.168.1.10", "a private network address"),
    ("https://[fc00::1]/", "fc00::1", "a private network address"),
    ("https://[fd12:3456::1]/", "fd12:3456::1", "a private network address"),
    ("https://169.254.10.1/", "169.254.10.1", "a link-local address"),
    ("https://[fe80::1]/", "fe80::1", "a link-local address"),
    ("https://100.64.0.1/", "100.64.0.1", "a carrier-grade NAT address"),
    ("https://224.0.0.1/", "224.0.0.1", "a multicast address"),
    ("https://[ff02::1]/", "ff02::1", "a multicast address"),
    ("https://0.0.0.0/", "0.0.0.0", "an unspecified address"),
    ("https://[::]/", "::", "an unspecified address"),
    ("https://240.0.0.1/", "240.0.0.1", "a reserved address"),
    ("https://255.255.255.255/", "255.255.255.255", "a reserved address"),
    ("https://192.0.2.1/", "192.0.2.1", "a reserved address"),
    ("https://127.0.0.2/", "127.0.0.2", "this server's own loopback address"),
    ("https://[::1]/", "::1", "this server's own loopback address"),
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254", "the cloud provider's metadata service"),
    ("https://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254", "the cloud provider's metadata service"),
    ("https://100.100.100.200/latest/meta-data/", "100.100.100.200", "the cloud provider's metadata service"),
    # IPv6 forms of refused IPv4 addresses
    ("https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "this server's own loopback address"),
    ("https://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1", "a private network address"),
    ("https://[::ffff:a9fe:a9fe]/", "::ffff:a9fe:a9fe", "the cloud provider's metadata service"),
    ("https://[::127.0.0.1]/", "::127.0.0.1", "this server's own loopback address"),
    ("https://[2002:a00:1::]/", "2002:a00:1::", "a private network address"),  # 6to4 of 10.0.0.1
    ("https://[2002:7f00:1::]/", "2002:7f00:1::", "this server's own loopback address"),
    ("https://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", "the cloud provider's metadata service"),  # NAT64
    ("https://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1", "this server's own loopback address"),
    # odd spellings of 127.0.0.1
    ("https://2130706433/", "2130706433", "this server's own loopback address"),
    ("https://0x7f.1/", "0x7f.1", "this server's own loopback address"),
    ("https://127.1/", "127.1", "this server's own loopback address"),
    ("https://0x7f000001/", "0x7f000001", "this server's own loopback address"),
    ("https://017700000001/", "017700000001", "this server's own loopback address"),
]


@pytest.mark.parametrize("url,host,why", REFUSED, ids=[r[0] for r in REFUSED])
def test_every_address_that_is_not_public_is_refused_before_connecting(url, host, why):
    error = refused(url)
    assert isinstance(error, fetch.Refused)
    assert error.message == (f"The address {host} is {why}; the platform only fetches from public internet "
                             "addresses.")
    assert fetch.refusal(url) == error.message


def test_a_name_that_resolves_to_loopback_is_refused():
    error = refused("https://localhost/ctas.csv")
    assert isinstance(error, fetch.Refused)
    assert re.fullmatch(r"The address localhost resolves to this server's own loopback address \((127\.0\.0\.1|::1)\); "
                        r"the platform only fetches from public internet addresses\.", error.message), error.message


@pytest.mark.parametrize("url,words", [
    ("ftp://files.example.org/ctas.csv", "The address of files.example.org starts with ftp://; the platform only fetches https://"),
    ("gopher://127.0.0.1:6379/_INFO", "starts with gopher://"),
    ("http://8.8.8.8/ctas.csv", "The address of 8.8.8.8 starts with http://; the platform only fetches https://"),
    ("file:///etc/passwd", "file:///etc/passwd is not a web address"),
    ("https:///ctas.csv", "is not a web address"),
    ("", "Missing value"),
])
def test_only_https_web_addresses(url, words):
    error = refused(url)
    assert isinstance(error, fetch.Refused) and words in error.message


@pytest.mark.ckan_config("ckanext.lgdp.fetch.allow_http", True)
def test_allowing_http_allows_no_other_address():
    assert "this server's own loopback address" in refused("http://127.0.0.2/").message
    assert "the cloud provider's metadata service" in refused("http://169.254.169.254/latest/meta-data/").message


def test_the_test_setting_allows_exactly_127_0_0_1(file_server):
    file_server["files"]["/ctas.csv"] = b"a,b\n1,2\n"
    port = urlsplit(file_server["url"]).port
    with connections() as seen:
        answer = fetch.get(f"http://127.0.0.1:{port}/ctas.csv", max_bytes=MB, timeout=10)
    assert (answer.status, answer.body) == (200, b"a,b\n1,2\n")
    assert seen and {address[0] for address in seen} == {"127.0.0.1"}
    # no other loopback address, name or spelling, though they reach the same server
    for host in ("127.0.0.2", "[::1]", "localhost", "2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]",
                 "127.0.0.1."):
        error = refused(f"http://{host}:{port}/ctas.csv")
        assert isinstance(error, fetch.Refused) and "loopback" in error.message, (host, error.message)
    assert file_server["hits"] == ["/ctas.csv"]


@pytest.mark.ckan_config(SETTING, False)
@pytest.mark.parametrize("allow_http", [False, True])
def test_without_the_test_setting_127_0_0_1_is_refused_too(file_server, ckan_config, allow_http):
    ckan_config["ckanext.lgdp.fetch.allow_http"] = allow_http
    file_server["files"]["/ctas.csv"] = b"a,b\n1,2\n"
    error = refused(file_server["url"] + "/ctas.csv")
    assert isinstance(error, fetch.Refused)
    assert error.message == ("The address 127.0.0.1 is this server's own loopback address; the platform only "
                             "fetches from public internet addresses.")
    assert file_server["hits"] == []


def test_the_connection_itself_is_pinned_whatever_the_caller_checked():
    # fetch's own session, without the check of the URL: the connection
    # refuses on its own, before any packet is sent
    for url in ("http://localhost:9/", "http://10.0.0.1/", "https://169.254.169.254/"):
        with connections() as seen, fetch._session() as session, pytest.raises(fetch.Refused):
            session.get(url, timeout=5)
        assert seen == [], url


def test_no_proxy_from_the_environment_is_used(file_server, monkeypatch):
    file_server["files"]["/ctas.csv"] = b"a,b\n1,2\n"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://10.9.9.9:3128")
    with connections() as seen:
        assert fetch.get(file_server["url"] + "/ctas.csv", max_bytes=MB, timeout=10).status == 200
    assert {address[0] for address in seen} == {"127.0.0.1"}


# ---------------------------------------------------------------- refused through a redirect

REDIRECTS = [
    ("http://169.254.169.254/latest/meta-data", "the cloud provider's metadata service"),
    ("http://10.0.0.1/", "a private network address"),
    ("http://127.0.0.2:{port}/secret.csv", "this server's own loopback address"),
    ("http://[::1]:{port}/secret.csv", "this server's own loopback address"),
    ("http://localhost:{port}/secret.csv", "this server's own loopback address"),
    ("http://2130706433:{port}/secret.csv", "this server's own loopback address"),
    ("https://[::ffff:169.254.169.254]/", "the cloud provider's metadata service"),
    ("file:///etc/passwd", "is not a web address"),
    ("gopher://127.0.0.1:{port}/_secret", "starts with gopher://"),
]


@pytest.mark.parametrize("target,why", REDIRECTS, ids=[r[0] for r in REDIRECTS])
def test_a_redirect_to_a_refused_address_is_refused_before_connecting_to_it(file_server, target, why):
    port = urlsplit(file_server["url"]).port
    target = target.format(port=port)
    file_server["redirects"]["/ctas.csv"] = target
    file_server["files"]["/secret.csv"] = b"secret\n"
    with connections() as seen, pytest.raises(fetch.Refused) as caught:
        fetch.get(file_server["url"] + "/ctas.csv", max_bytes=MB, timeout=10)
    assert caught.value.message.startswith(f"127.0.0.1 redirected the request to {target}. ")
    assert why in caught.value.message
    assert seen and all(address == ("127.0.0.1", port) for address in seen), seen
    assert file_server["hits"] == ["/ctas.csv"]  # the target never


def test_redirects_on_the_same_server_are_followed(file_server):
    file_server["files"]["/exports/ctas.csv"] = b"a,b\n1,2\n"
    file_server["redirects"]["/latest.csv"] = "/exports/ctas.csv"
    answer = fetch.get(file_server["url"] + "/latest.csv", max_bytes=MB, timeout=10)
    assert (answer.status, answer.body) == (200, b"a,b\n1,2\n")
    assert answer.url == file_server["url"] + "/exports/ctas.csv"


@pytest.fixture
def other_server():
    """A second server on 127.0.0.1 (another origin) that records headers."""
    got: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            got.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"a,b\n")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "got": got}
    server.shutdown()


def test_a_redirect_to_another_server_does_not_carry_the_secret(file_server, other_server):
    file_server["redirects"]["/ctas.csv"] = other_server["url"] + "/moved.csv"
    answer = fetch.get(file_server["url"] + "/ctas.csv", max_bytes=MB, timeout=10,
                       headers={"Authorization": "Bearer council-secret", "X-Api-Key": "k", "User-Agent": "LGDP-Test"})
    assert answer.body == b"a,b\n"
    assert file_server["headers"][0]["authorization"] == "Bearer council-secret"
    [sent] = other_server["got"]
    assert "authorization" not in sent and "x-api-key" not in sent and sent["user-agent"] == "LGDP-Test"


# ---------------------------------------------------------------- limits


def test_the_redirect_limit(file_server, ckan_config):
    file_server["files"]["/ctas.csv"] = b"a,b\n1,2\n"
    for n in range(7):
        file_server["redirects"][f"/r{n}"] = f"/r{n + 1}" if n < 6 else "/ctas.csv"
    with pytest.raises(fetch.Refused) as caught:
        fetch.get(file_server["url"] + "/r0", max_bytes=MB, timeout=10)
    assert caught.value.message == ("127.0.0.1 redirected the request more than 5 times; the platform follows at "
                                    "most 5 redirects.")
    assert file_server["hits"] == [f"/r{n}" for n in range(6)]
    ckan_config["ckanext.lgdp.fetch.max_redirects"] = 7
    assert fetch.get(file_server["url"] + "/r0", max_bytes=MB, timeout=10).body == b"a,b\n1,2\n"


@pytest.mark.parametrize("sized", [True, False])
def test_the_size_limit(file_server, tmp_path, sized):
    file_server["files"]["/big.csv"] = b"x" * (2 * MB + 1)
    if not sized:
        file_server["unsized"].add("/big.csv")
    with (tmp_path / "out").open("wb") as out, pytest.raises(fetch.TooLarge) as caught:
        fetch.get(file_server["url"] + "/big.csv", max_bytes=2 * MB, timeout=10, into=out)
    assert caught.value.message == "The file at 127.0.0.1 is larger than the limit of 2 MB."
    assert (tmp_path / "out").stat().st_size <= 2 * MB
    file_server["files"]["/big.csv"] = b"x" * (2 * MB)
    assert len(fetch.get(file_server["url"] + "/big.csv", max_bytes=2 * MB, timeout=10).body) == 2 * MB


def test_the_time_limit(file_server):
    file_server["files"]["/slow.csv"] = b"a,b\n"
    file_server["delay"]["/slow.csv"] = 3
    with pytest.raises(fetch.FetchError) as caught:
        fetch.get(file_server["url"] + "/slow.csv", max_bytes=MB, timeout=1)
    assert caught.value.message == "127.0.0.1 gave no answer within 1 seconds."


def test_a_webhook_to_a_refused_address_is_not_sent(receiver):
    port = urlsplit(receiver["url"]).port
    with connections() as seen:
        outcome = webhooks.post(f"http://localhost:{port}/hook", "submission.accepted", "evt-1", {"a": 1}, "s3cret")
    assert not outcome.ok and outcome.status is None and "loopback" in outcome.error
    assert seen == [] and receiver["got"] == []


# ---------------------------------------------------------------- the rule in the code and the settings


# Modules that may make requests besides fetch.py, and why.
OWN_SERVICES = {
    "ops/health.py": "pings the platform's own Solr at solr_url (private by design, from the configuration, "
                     "never from a user)",
}
OUTGOING = re.compile(r"^\s*(?:import|from)\s+(?:requests|urllib3|httpx|aiohttp|pycurl|http\.client|urllib\.request)\b"
                      r"|^\s*from\s+urllib\s+import\s+.*\brequest\b|\burlopen\s*\(|\bsocket\.create_connection\b",
                      re.MULTILINE)


def test_no_other_module_makes_requests_of_its_own():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name == "fetch.py" or name in OWN_SERVICES:
            continue
        for m in OUTGOING.finditer(path.read_text(encoding="utf-8")):
            offenders.append(f"{name}: {m.group().strip()}")
    assert not offenders, "server-side requests go through ckanext/lgdp/fetch.py:\n" + "\n".join(offenders)
    for name in OWN_SERVICES:
        assert (PACKAGE / name).is_file(), f"{name} is gone: drop it from OWN_SERVICES"


def test_the_test_setting_is_off_by_default_and_only_in_test_ini():
    groups = yaml.safe_load((PACKAGE / "config_declaration.yaml").read_text(encoding="utf-8"))["groups"]
    options = {o["key"]: o for group in groups for o in group["options"]}
    assert options[SETTING]["default"] is False and options[SETTING]["type"] == "bool"
    assert options["ckanext.lgdp.fetch.allow_http"]["default"] is False
    spellings = re.compile(re.escape(SETTING) + "|" + re.escape(SETTING.upper().replace(".", "__")), re.IGNORECASE)
    deployment = [ROOT / "config" / "platform.ini", *sorted(p for p in (ROOT / "docker").rglob("*") if p.is_file())]
    carrying = [str(p.relative_to(ROOT)) for p in deployment
                if spellings.search(p.read_bytes().decode("utf-8", errors="replace"))]
    assert not carrying, f"{SETTING} lets the platform fetch from loopback; never in {carrying}"
    assert re.search(rf"^{re.escape(SETTING)}\s*=\s*true\s*$", (ROOT / "test.ini").read_text("utf-8"), re.MULTILINE)


# ---------------------------------------------------------------- through the API


def _attach(app, who: dict[str, Any], url: str, status: int = 200, **extra: Any) -> dict[str, Any]:
    resp = app.post("/api/3/action/lgdp_submission_upload", headers=who["headers"], status=status,
                    data={"data_return": "council-tax-collection", "council": "aberdeen-city", "period": "2023-24",
                          "url": url, **extra})
    return resp.json


def _nothing_stored(app, world: dict[str, Any]) -> None:
    sysadmin = world["people"]["sysadmin"]
    found = api(app, "package_search", headers=sysadmin["headers"], fq="dataset_type:submission",
                include_private=True)["result"]
    assert found["count"] == 0, [r["name"] for r in found["results"]]
    api(app, "lgdp_upload_list", headers=sysadmin["headers"], id="council-tax-collection--aberdeen-city--2023-24",
        status=404)
    assert model.Session.query(Upload).count() == 0


@DB
def test_an_upload_by_url_to_a_refused_address_is_refused_at_once_and_creates_nothing(app):
    world = make_world()
    editor = world["people"]["a_editor"]
    solr = urlsplit(tk.config["solr_url"])
    cases = [
        # the attack: the platform's own Solr, by name
        (f"http://localhost:{solr.port}{solr.path}/select?q=*:*&wt=csv&rows=100000", "localhost", "loopback"),
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "169.254.169.254", "metadata service"),
        ("https://10.0.0.5/ctas.csv", "10.0.0.5", "a private network address"),
        ("https://[::1]/ctas.csv", "::1", "loopback"),
        ("https://2130706433/ctas.csv", "2130706433", "loopback"),
        ("file:///etc/passwd", "file:///etc/passwd", "not a web address"),
        ("ftp://files.example.org/ctas.csv", "files.example.org", "https://"),
    ]
    for url, host, why in cases:
        error = _attach(app, editor, url, status=409)["error"]
        [message] = error["url"]
        assert host in message and why in message, (url, message)
        assert "upload_id" not in error
    _nothing_stored(app, world)


@DB
@pytest.mark.ckan_config(SETTING, False)
def test_without_the_test_setting_the_council_server_on_loopback_is_refused_by_the_api(app, file_server):
    world = make_world()
    file_server["files"]["/ctas.csv"] = csv_bytes(ctas_rows())
    error = _attach(app, world["people"]["a_editor"], file_server["url"] + "/ctas.csv", status=409)["error"]
    assert "127.0.0.1" in error["url"][0]
    _nothing_stored(app, world)
    assert file_server["hits"] == []


@DB
def test_an_upload_by_url_from_the_council_server_is_fetched_and_validated(app, file_server, live_worker):
    world = make_world()
    file_server["files"]["/exports/ctas.csv"] = csv_bytes(ctas_rows())
    file_server["redirects"]["/latest.csv"] = "/exports/ctas.csv"
    answer = _attach(app, world["people"]["a_editor"], file_server["url"] + "/latest.csv", wait="true")["result"]
    assert answer["upload"]["status"] == "valid" and answer["upload"]["channel"] == "url"
    assert file_server["hits"] == ["/latest.csv", "/exports/ctas.csv"]


@DB
@pytest.mark.parametrize("target,why", [
    ("http://localhost:{port}/secret.csv", "this server's own loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "the cloud provider's metadata service"),
])
def test_a_redirect_refused_at_fetch_time_leaves_an_upload_marked_with_the_reason(app, file_server, live_worker,
                                                                                 target, why):
    world = make_world()
    editor = world["people"]["a_editor"]
    target = target.format(port=urlsplit(file_server["url"]).port)
    file_server["files"]["/secret.csv"] = csv_bytes(ctas_rows())
    file_server["redirects"]["/exports/ctas.csv"] = target
    error = _attach(app, editor, file_server["url"] + "/exports/ctas.csv", wait="true", status=409)["error"]
    assert error["status"] == "rejected"
    upload = api(app, "lgdp_upload_show", headers=editor["headers"], id=error["upload_id"])["result"]
    assert upload["status"] == "rejected" and upload["problem_code"] == "fetch-refused"
    assert upload["problem"].startswith(f"127.0.0.1 redirected the request to {target}. ") and why in upload["problem"]
    assert upload["problem"] in error["upload"]
    assert file_server["hits"] == ["/exports/ctas.csv"]  # never the target


@DB
def test_connectors_and_webhooks_to_refused_addresses_are_refused_at_once(app, file_server):
    world = make_world()
    people = world["people"]
    port = urlsplit(file_server["url"]).port
    for url, why in ((f"http://localhost:{port}/finance/ctas.csv", "loopback"),
                     ("https://[fd00:ec2::254]/latest/meta-data/", "metadata service"),
                     ("https://192.168.0.10/ctas.csv", "private network")):
        error = api(app, "lgdp_connector_create", headers=people["a_editor"]["headers"], status=409,
                    council="aberdeen-city", data_return="council-tax-collection", url=url)["error"]
        assert why in error["url"][0], error
        error = api(app, "lgdp_subscription_create", headers=people["x_editor"]["headers"], status=409,
                    channel="webhook", url=url)["error"]
        assert why in error["url"][0], error
    assert api(app, "lgdp_connector_list", headers=people["a_editor"]["headers"])["result"] == []
    assert model.Session.query(Connector).count() == 0
    assert api(app, "lgdp_subscription_list", headers=people["x_editor"]["headers"])["result"] == []
    assert file_server["hits"] == []


@DB
def test_a_connector_whose_source_redirects_to_a_refused_address_fails_and_uploads_nothing(app, file_server):
    world = make_world()
    editor = world["people"]["a_editor"]
    file_server["files"]["/finance/ctas.csv"] = csv_bytes(ctas_rows())
    conn = api(app, "lgdp_connector_create", headers=editor["headers"], council="aberdeen-city",
               data_return="council-tax-collection", url=file_server["url"] + "/finance/ctas.csv",
               auth_secret="Bearer council-system-token")["result"]
    file_server["redirects"]["/finance/ctas.csv"] = "http://10.0.0.1/ctas.csv"
    run = api(app, "lgdp_connector_run", headers=editor["headers"], id=conn["id"])["result"]
    assert run["outcome"] == "failed" and run["upload_id"] is None
    assert run["error"] == ("127.0.0.1 redirected the request to http://10.0.0.1/ctas.csv. The address 10.0.0.1 is "
                            "a private network address; the platform only fetches from public internet addresses.")
    assert model.Session.query(Upload).count() == 0
