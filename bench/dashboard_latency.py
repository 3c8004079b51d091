#!/usr/bin/env python3
"""Dashboard page latency at 32 councils x 40 periods.

Seeds, in the platform's own databases (.state/ckan.ini, as written by
``./platform.sh run``), one return of its own (``bench-dashboard-...``, owned
by a bench agency) whose consolidated table holds every council's figures
for 40 financial years (3 indicators, two rows per council-period as a
submission may have), runs the quality checks on it (so flags are marked)
and publishes it. Then it times requests through the whole WSGI stack of
CKAN in this process (werkzeug's test client: middleware, Flask, auth, the
action, the database, the template): server time, without the network.

Measured, in one interleaved random sequence (council, indicator, period
drawn at random):

  council     /benchmarking/indicator for a council (headline, trend over 40
              periods, ranking, map), as a council member
  sector      the same for Scotland (no council), anonymously
  saved       a saved dashboard of the 3 indicators, as its owner
  figures     the lgdp_dashboard_figures API action
  csv         the ranking as CSV
  baseline    CKAN's own dataset page of the table (/dataset/<name>), the
              same kind of work for a core page, in the same run

Goal (issue: benchmarking dashboards): dashboard page p95 <= 300 ms, for
the page of one indicator (council and sector views); a saved dashboard
shows several indicators and is reported beside it.
Prints p50/p95/p99 and the ratio of each to the baseline; writes
bench/results/dashboard_latency-<time>.json.

  bench/run_dashboard_latency.sh [--requests 200] [--periods 40] [--clean]
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import time
from pathlib import Path
from typing import Any

from search_latency import summary  # bench/ is on the path when run as a script

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FORBIDDEN_PREFIX = "lgdp_test"
PREFIX = "bench-dashboard-"
RETURN = PREFIX + "return"
AGENCY = PREFIX + "agency"
OWNER = PREFIX + "owner"
MEMBER = PREFIX + "member"
GOAL_P95_MS = 300.0
FIELDS = [  # name, type, countable
    ("households_assessed", "integer", True),
    ("spend_gbp", "number", True),
    ("satisfaction_pct", "number", False),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def periods(n: int) -> list[tuple[str, datetime.date]]:
    last = 2025
    return [(f"{y}-{str(y + 1)[-2:]}", datetime.date(y, 4, 1)) for y in range(last - n + 1, last + 1)]


def schema() -> dict[str, Any]:
    fields = [{"name": "gss_code", "type": "string", "constraints": {"required": True}},
              {"name": "financial_year", "type": "string", "constraints": {"required": True}},
              {"name": "service", "type": "string"}]
    for name, kind, countable in FIELDS:
        f: dict[str, Any] = {"name": name, "type": kind, "title": name.replace("_", " ").capitalize()}
        if countable:
            f["lgdp:countable"] = True
        fields.append(f)
    return {"fields": fields, "primaryKey": ["gss_code", "financial_year", "service"]}


class Site:
    def __init__(self, ini: str) -> None:
        from ckan.cli import load_config
        from ckan.config.middleware import make_app

        config = load_config(ini)
        for key in ("sqlalchemy.url", "ckan.datastore.write_url"):
            db = str(config.get(key) or "").rsplit("/", 1)[-1].split("?")[0]
            if db.startswith(FORBIDDEN_PREFIX):
                raise SystemExit(f"{ini}: {key} points at {db}, a test database; refusing")
        self.app = make_app(config)
        from werkzeug.test import Client

        self.client = Client(self.app)  # the whole stack, CKAN's middleware included
        self.ctx = self.app._wsgi_app.test_request_context()
        self.ctx.push()

    def site(self) -> dict[str, Any]:
        import ckan.plugins.toolkit as tk

        return {"user": tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"], "ignore_auth": True}

    def act(self, action_name: str, **data: Any) -> Any:
        import ckan.plugins.toolkit as tk

        return tk.get_action(action_name)(self.site(), data)


def clean(site: Site) -> None:
    from ckan import model

    from ckanext.lgdp.model import QAFlag, SavedDashboard

    for name in (f"{RETURN}--all-councils", RETURN):
        pkg = model.Package.get(name)
        if pkg is not None:
            site.act("dataset_purge", id=pkg.id)
            model.Session.query(QAFlag).filter(QAFlag.return_id == pkg.id).delete()
    model.Session.query(SavedDashboard).filter(SavedDashboard.title.like("Bench %")).delete(synchronize_session=False)
    model.Session.commit()


def seed(site: Site, n_periods: int) -> dict[str, Any]:
    import ckan.plugins.toolkit as tk
    from ckan import model

    from ckanext.lgdp.repository import consolidate, reference

    if model.Group.get(AGENCY) is None:
        site.act("organization_create", name=AGENCY, title="Bench dashboard agency", org_type="agency")
    tokens = {}
    for user, capacity in ((OWNER, "editor"), (MEMBER, "member")):
        if model.User.by_name(user) is None:
            site.act("user_create", name=user, email=f"{user}@example.org", password="bench-password-1")
        org = AGENCY if user == OWNER else reference.councils()[0]["slug"]
        if model.Group.get(org) is not None:
            site.act("organization_member_create", id=org, username=user, role=capacity)
        tokens[user] = site.act("api_token_create", user=user, name="bench")["token"]
    std = schema()
    ret = site.act("package_create", type="data-return", name=RETURN, title="Bench dashboard return",
                   notes="A return seeded by the dashboard bench.", owner_org=AGENCY, frequency="annual",
                   period_basis="financial", statutory="no", lifecycle_status="active", topic="finance",
                   data_standard=json.dumps(std))
    table = consolidate.ensure_table(ret)
    resource_id = consolidate.ensure_resource(table, 1, std)
    rnd = random.Random(7)
    rows = []
    for c in reference.councils():
        pop = (reference.population_for(c["gss_code"], 2022) or (100000, 2022))[0]
        for k, (period, start) in enumerate(periods(n_periods)):
            for service in ("a", "b"):
                raw = {"gss_code": c["gss_code"], "financial_year": period, "service": service,
                       "households_assessed": int(pop * rnd.uniform(0.004, 0.006)),
                       "spend_gbp": round(pop * rnd.uniform(9, 12), 2),
                       "satisfaction_pct": round(rnd.uniform(60, 90), 1)}
                if (c["gss_code"], k) in (("S12000018", n_periods - 2), ("S12000038", n_periods - 1)):
                    raw["households_assessed"] *= 3  # planted outliers
                rows.extend(consolidate.enrich([raw], std, c["gss_code"], c["name"], period, start, f"bench-{k}",
                                               datetime.datetime(start.year + 1, 6, 1)))
    t = time.perf_counter()
    consolidate.replace_all(resource_id, rows, consolidate.columns(std))
    log(f"seeded {len(rows)} rows ({len(reference.councils())} councils x {n_periods} periods x 2) "
        f"in {time.perf_counter() - t:.2f} s")
    site.act("lgdp_qa_run", data_return=ret["id"])
    site.act("lgdp_table_publish", data_return=ret["id"], published=True)
    model.Session.commit()
    ctx = {"user": OWNER, "ignore_auth": False}
    board = tk.get_action("lgdp_dashboard_create")(ctx, {
        "title": "Bench three indicators", "indicators": [f"{RETURN}:{f[0]}" for f in FIELDS],
        "council": reference.councils()[0]["gss_code"]})
    return {"return": ret, "table": table["name"], "tokens": tokens, "board": board["id"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ini", default=str(ROOT / ".state" / "ckan.ini"))
    ap.add_argument("--requests", type=int, default=200, help="requests per kind")
    ap.add_argument("--periods", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--clean", action="store_true", help="remove the bench's return, table and dashboards, then stop")
    args = ap.parse_args()

    site = Site(args.ini)
    clean(site)
    if args.clean:
        site.ctx.pop()
        log("cleaned")
        return
    seeded = seed(site, args.periods)
    site.ctx.pop()  # requests below bring their own contexts
    from ckanext.lgdp.repository import reference

    councils = [c["gss_code"] for c in reference.councils()]
    names = [p for p, _ in periods(args.periods)]
    member = {"Authorization": seeded["tokens"][MEMBER]}
    owner = {"Authorization": seeded["tokens"][OWNER]}

    def request(kind: str, rnd: random.Random) -> tuple[str, dict[str, str], dict[str, str]]:
        ind = f"{RETURN}:{rnd.choice(FIELDS)[0]}"
        q = {"indicator": ind, "council": rnd.choice(councils), "period": rnd.choice(names)}
        if kind == "council":
            return "/benchmarking/indicator", q, member
        if kind == "sector":
            return "/benchmarking/indicator", {**q, "council": ""}, {}
        if kind == "saved":
            return f"/benchmarking/saved/{seeded['board']}", {"council": q["council"]}, owner
        if kind == "figures":
            return "/api/3/action/lgdp_dashboard_figures", q, member
        if kind == "csv":
            return "/benchmarking/indicator.csv", {**q, "table": "ranking"}, member
        return f"/dataset/{seeded['table']}", {}, member

    kinds = ["council", "sector", "saved", "figures", "csv", "baseline"]
    rnd = random.Random(42)
    checks: dict[str, int] = {}
    for kind in kinds:  # warm up every route and check it answers with the figures
        for _ in range(args.warmup):
            path, q, headers = request(kind, rnd)
            resp = site.client.get(path, query_string=q, headers=headers)
            if resp.status_code != 200:
                raise SystemExit(f"{kind}: {path} answered {resp.status_code}: {resp.get_data(as_text=True)[:300]}")
        checks[kind] = (resp.get_data(as_text=True).count('<path class="lgdp-map-area') if kind == "council"
                        else len(resp.get_data()))
    times: dict[str, list[float]] = {k: [] for k in kinds}
    sequence = [k for k in kinds for _ in range(args.requests)]
    rnd.shuffle(sequence)
    log(f"timing {len(sequence)} requests ({args.requests} per kind), interleaved")
    for kind in sequence:
        path, q, headers = request(kind, rnd)
        t = time.perf_counter()
        resp = site.client.get(path, query_string=q, headers=headers)
        body = resp.get_data()
        times[kind].append((time.perf_counter() - t) * 1000)
        if resp.status_code != 200 or not body:
            raise SystemExit(f"{kind}: {path} answered {resp.status_code}")
    stats = {k: summary(v) for k, v in times.items()}
    base = stats["baseline"]["p95"]
    print()
    print(f"Dashboard latency, {len(councils)} councils x {args.periods} periods, server time (ms), "
          f"{args.requests} requests per kind")
    print(f"{'kind':10} {'p50':>8} {'p95':>8} {'p99':>8} {'mean':>8} {'p95/baseline':>13}")
    for k in kinds:
        s = stats[k]
        print(f"{k:10} {s['p50']:8.1f} {s['p95']:8.1f} {s['p99']:8.1f} {s['mean']:8.1f} {s['p95'] / base:13.2f}")
    worst = max(stats[k]["p95"] for k in ("council", "sector"))
    verdict = "met" if worst <= GOAL_P95_MS else "NOT met"
    print(f"\ngoal: dashboard page p95 <= {GOAL_P95_MS:.0f} ms: {verdict} "
          f"(council and sector pages, worst p95 {worst:.1f} ms)")
    print(f"a saved dashboard of {len(FIELDS)} indicators: p95 {stats['saved']['p95']:.1f} ms "
          f"({stats['saved']['p95'] / len(FIELDS):.1f} ms per indicator; "
          f"{'within' if stats['saved']['p95'] <= GOAL_P95_MS else 'over'} {GOAL_P95_MS:.0f} ms)")
    print(f"map areas on the council page: {checks['council']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"dashboard_latency-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"periods": args.periods, "councils": len(councils), "requests": args.requests,
                               "stats": stats, "goal_p95_ms": GOAL_P95_MS, "verdict": verdict,
                               "machine": {"python": platform.python_version(), "load": _load()}}, indent=2))
    log(f"wrote {out.relative_to(ROOT)}")


def _load() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


if __name__ == "__main__":
    main()
