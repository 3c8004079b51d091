"""CKAN on a SolrCloud of two nodes (`./platform.sh test --solrcloud`, which
also runs the search and access tests there): the collection is CKAN's
schema in 2 shards of 2 replicas, one of each shard on each node; the
documents spread over the shards and a search finds them all; with a node
stopped, search answers the same for every reader and a step is indexed;
the node back, its replicas catch up. The docker profile's set-up script
makes its collection on the same cluster."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from ckan.plugins import toolkit as tk

from tests.conftest import COUNCIL_B_GSS, ROOT, api, csv_bytes, ctas_rows, make_world, push, transition

pytestmark = [
    pytest.mark.skipif(not os.environ.get("LGDP_SOLRCLOUD"),
                       reason="runs against the two-node cluster of ./platform.sh test --solrcloud"),
    pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index"),
]

READERS = ("anonymous", "a_member", "a_editor", "b_editor", "x_editor", "r_editor", "y_editor", "coordinator",
           "reviewer")


def _collection() -> tuple[str, str]:
    url = urlsplit(tk.config["solr_url"])
    base, _, name = url.path.rstrip("/").rpartition("/")
    return f"{url.scheme}://{url.netloc}{base}", name


def _cluster() -> dict:
    base, name = _collection()
    resp = requests.get(f"{base}/admin/collections", timeout=60,
                        params={"action": "CLUSTERSTATUS", "collection": name, "wt": "json"})
    resp.raise_for_status()
    cluster = resp.json()["cluster"]
    return {"live": set(cluster["live_nodes"]), "shards": cluster["collections"][name]["shards"]}


def _wait(condition, what: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        cluster = _cluster()
        if condition(cluster):
            return cluster
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {cluster}"
        time.sleep(0.5)


def _all_active(cluster: dict) -> bool:
    return all(r["state"] == "active" and r["node_name"] in cluster["live"]
               for s in cluster["shards"].values() for r in s["replicas"].values())


def _leaders_live(cluster: dict) -> bool:
    return all(any(r.get("leader") == "true" and r["state"] == "active" and r["node_name"] in cluster["live"]
                   for r in s["replicas"].values()) for s in cluster["shards"].values())


def _count(replica: dict) -> int:
    """Documents one replica holds, asked of its core alone."""
    resp = requests.get(f"{replica['base_url']}/{replica['core']}/select", timeout=60,
                        params={"q": "*:*", "rows": 0, "distrib": "false", "wt": "json"})
    resp.raise_for_status()
    return resp.json()["response"]["numFound"]


def _node(verb: str, node: str = "2") -> None:
    script = ("source scripts/common.sh && source scripts/solr.sh && source scripts/solrcloud.sh && "
              + ("solrcloud_stop 2" if verb == "stop" else f"solrcloud_start {_collection()[1]}"))
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]


def _search(app, who: dict) -> tuple[int, set[str]]:
    resp = app.get("/api/3/action/package_search", headers=who["headers"],
                   query_string={"include_private": "true", "rows": 1000})
    assert resp.status_code == 200, resp.body[:500]
    result = resp.json["result"]
    return result["count"], {r["id"] for r in result["results"]}


def _shows(app, who: dict, ident: str) -> bool:
    resp = app.get("/api/3/action/package_show", headers=who["headers"], query_string={"id": ident})
    assert resp.status_code in (200, 403, 404), resp.status_code
    return resp.status_code == 200


def test_ckan_searches_a_two_node_cluster_and_a_stopped_node_changes_no_answer(app, run_worker):
    cluster = _wait(_all_active, "every replica active")
    assert len(cluster["live"]) == 2
    assert len(cluster["shards"]) == 2
    for shard in cluster["shards"].values():
        nodes = [r["node_name"] for r in shard["replicas"].values()]
        assert len(nodes) == 2 and set(nodes) == cluster["live"], "a shard's replicas are not on both nodes"

    world = make_world()
    people = world["people"]
    sysadmin = people["sysadmin"]
    subs = {}
    for council, gss in (("aberdeen-city", None), ("aberdeenshire", COUNCIL_B_GSS)):
        editor = people["a_editor" if gss is None else "b_editor"]
        for period in ("2021-22", "2022-23"):
            rows = ctas_rows(period=period) if gss is None else ctas_rows(gss=gss, period=period)
            answer = push(app, editor, csv_bytes(rows), period=period, council=council)
            subs[f"{council} {period}"] = answer["result"]["submission"]["id"]
    run_worker("lgdp:validation")
    # public datasets until both shards hold documents (ids hash to shards)
    n = 0
    while n < 40:
        api(app, "package_create", headers=sysadmin["headers"], name=f"cloud-open-{n}", title=f"Open {n}",
            owner_org=world["orgs"]["coordinator"]["id"], notes="open data")
        n += 1
        time.sleep(1.2)  # the soft commit makes it searchable
        counts = [_count(next(iter(s["replicas"].values()))) for s in _cluster()["shards"].values()]
        if n >= 4 and all(counts):
            break
    whole = requests.get(f"{tk.config['solr_url']}/select", params={"q": "*:*", "rows": 0, "wt": "json"},
                         timeout=60).json()["response"]["numFound"]
    assert all(counts) and sum(counts) == whole, (counts, whole)
    total, _ = _search(app, sysadmin)
    assert total >= n + len(subs), total
    for shard in _cluster()["shards"].values():
        assert len({_count(r) for r in shard["replicas"].values()}) == 1, "a shard's replicas differ"

    def answers() -> dict[str, tuple[int, set[str]]]:
        return {role: _search(app, people[role]) for role in READERS}

    before = answers()
    for role, (_count_, ids) in before.items():
        leaks = [name for name, sid in subs.items() if sid in ids and not _shows(app, people[role], sid)]
        assert not leaks, f"{role} finds in search what package_show refuses them: {leaks}"
    assert set(subs.values()) <= before["coordinator"][1]
    assert not set(subs.values()) & before["anonymous"][1]

    # node 2 stopped: node 1 holds a replica of each shard
    _node("stop")
    cluster = _wait(lambda c: len(c["live"]) == 1 and _leaders_live(c), "node 1 to lead every shard")
    assert answers() == before
    # a step is indexed through the leaders left
    sid = subs["aberdeen-city 2021-22"]
    transition(app, people["a_admin"], sid, "sign_off")
    transition(app, people["a_editor"], sid, "submit")
    run_worker("lgdp:validation")
    time.sleep(1.5)
    assert sid in _search(app, people["x_editor"])[1]

    # node 2 back: its replicas recover what they missed
    _node("start")
    cluster = _wait(lambda c: len(c["live"]) == 2 and _all_active(c), "node 2's replicas to recover")
    for shard in cluster["shards"].values():
        assert len({_count(r) for r in shard["replicas"].values()}) == 1, "a recovered replica differs"
    assert sid in _search(app, people["x_editor"])[1]


def _solr_cli(tmp_path) -> str:
    """`solr` as the docker image has it: Solr's own CLI (SolrCLI), over the
    jars of the local cluster."""
    lib = os.path.join(os.environ.get("LGDP_CACHE") or os.path.expanduser("~/.cache/lgdp"), "solr-9.10.1", "lib")
    shim = tmp_path / "solr"
    shim.write_text(f'#!/bin/sh\nexec java -Xmx128m -Dsolr.install.dir={tmp_path} -cp "{lib}/*" '
                    'org.apache.solr.cli.SolrCLI "$@"\n')
    shim.chmod(0o755)
    return str(shim)


def test_the_docker_profiles_set_up_script_makes_a_protected_collection_on_the_cluster(tmp_path):
    """docker/solrcloud/init.sh, the solrcloud profile's set-up, run against
    the local cluster with CKAN's unchanged schema, as CKAN's Solr image
    holds it: authentication in ZooKeeper, the collection in 2 x 2 with
    _version_ as SolrCloud needs it, and a second run changes nothing."""
    import ckan

    base, _ = _collection()
    node1 = urlsplit(base).netloc
    node2 = f"{node1.rsplit(':', 1)[0]}:{int(node1.rsplit(':', 1)[1]) + 1}"
    zk = f"{node1.rsplit(':', 1)[0]}:{int(node1.rsplit(':', 1)[1]) + 1000}"
    conf = tmp_path / "configset"
    conf.mkdir()
    for f in (ROOT / "solr" / "conf").iterdir():
        if f.name != "log4j2.xml":
            (conf / f.name).write_bytes(f.read_bytes())
    schema = (Path(ckan.__file__).parent / "config" / "solr" / "schema.xml").read_text(encoding="utf-8")
    assert '<field name="_version_" type="string"' in schema
    (conf / "managed-schema.xml").write_text(schema, encoding="utf-8")
    password = "Zx9-s3cr:et@p/q%"
    env = {**os.environ, "SOLR_BIN": _solr_cli(tmp_path), "ZK_HOST": zk, "LGDP_SOLR_NODES": f"{node1} {node2}",
           "LGDP_SOLR_COLLECTION": "ckan-docker", "LGDP_SOLR_CONFIGSET": str(conf),
           "LGDP_SOLR_CONFIGSET_NAME": "ckan-docker",
           "LGDP_SOLR_SECURITY_SCRIPT": str(ROOT / "docker/solr/docker-entrypoint-initdb.d/10_lgdp_security.sh"),
           "LGDP_SOLR_USER": "ckan", "LGDP_SOLR_PASSWORD": password}
    script = ROOT / "docker" / "solrcloud" / "init.sh"
    auth = ("ckan", password)
    try:
        first = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
        assert "collection ckan-docker created (2 shards x 2 replicas)" in first.stdout
        # every node asks for the user now, on every collection
        deadline = time.monotonic() + 30
        while requests.get(f"{base}/ckan-docker/select", params={"q": "*:*"}, timeout=30).status_code != 401:
            assert time.monotonic() < deadline, "the cluster answers without the user"
            time.sleep(0.5)
        for node in (node1, node2):
            assert requests.get(f"http://{node}/solr/ckan-docker/select", params={"q": "*:*"},
                                timeout=30).status_code == 401
            assert requests.get(f"http://{node}/solr/ckan-docker/select", params={"q": "*:*"}, auth=("ckan", "no"),
                                timeout=30).status_code == 401
            assert requests.get(f"http://{node}/solr/ckan-docker/select", params={"q": "*:*"}, auth=auth,
                                timeout=30).status_code == 200
        # what CKAN's image reads, while it waits for Solr, without the user
        assert requests.get(f"{base}/ckan-docker/schema/name", timeout=30).status_code == 200
        field = requests.get(f"{base}/ckan-docker/schema/fields/_version_", auth=auth, timeout=30).json()["field"]
        assert (field["type"], field.get("docValues")) == ("plong", True)
        status = requests.get(f"{base}/admin/collections", auth=auth, timeout=60, params={
            "action": "CLUSTERSTATUS", "collection": "ckan-docker", "wt": "json"}).json()["cluster"]
        shards = status["collections"]["ckan-docker"]["shards"]
        assert len(shards) == 2
        for shard in shards.values():
            assert sorted(r["node_name"] for r in shard["replicas"].values()) == sorted(status["live_nodes"])
            assert all(r["state"] == "active" for r in shard["replicas"].values())
        again = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and "collection ckan-docker exists" in again.stdout, again.stderr[-2000:]
    finally:
        # the suite's cluster open again, the collection gone
        (tmp_path / "open.json").write_text("{}")
        subprocess.run([env["SOLR_BIN"], "zk", "cp", f"file:{tmp_path / 'open.json'}", "zk:/security.json", "-z", zk],
                       capture_output=True, timeout=120)
        deadline = time.monotonic() + 30
        while requests.get(f"{base}/admin/collections", params={"action": "LIST"}, timeout=30).status_code == 401:
            assert time.monotonic() < deadline, "the cluster still asks for the user"
            time.sleep(0.5)
        requests.get(f"{base}/admin/collections", params={"action": "DELETE", "name": "ckan-docker"}, timeout=120)
