"""The world a fault run needs, set up through the platform itself, and what
the runner reads back with SQL.

Set-up runs in this process (CKAN loaded from test.ini, actions called as
the tests call them): an agency, a few councils with real GSS codes, an
editor and an admin per council and an agency editor, each with a fresh API
token, one data return per scenario (active, annual, a row-level data
standard), and webhook subscriptions. Everything after set-up goes over
HTTP with those tokens; this module then only reads the databases, with
plain SQL on connections of its own that survive a PostgreSQL restart.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import sqlalchemy as sa

PREFIX = "faults-"
AGENCY = "faults-agency"
PASSWORD = "faults-Pass-1234567"

# The data standard of every scenario's return: one row per record, so a
# file holds as many rows as the scenario asks for.
STANDARD: dict[str, Any] = {
    "title": "Fault suite return",
    "version": "1.0.0",
    "fields": [
        {"name": "gss_code", "title": "Council GSS code", "type": "string",
         "constraints": {"required": True, "pattern": "S12[0-9]{6}"}},
        {"name": "financial_year", "title": "Financial year", "type": "string",
         "constraints": {"required": True, "pattern": "[0-9]{4}-[0-9]{2}"}},
        {"name": "record_id", "title": "Record", "type": "integer",
         "constraints": {"required": True, "minimum": 1}},
        {"name": "households", "title": "Households", "type": "integer",
         "constraints": {"minimum": 0}, "lgdp:countable": True},
        {"name": "spend_gbp", "title": "Spend (GBP)", "type": "number", "constraints": {"minimum": 0}},
        {"name": "service", "title": "Service", "type": "string"},
    ],
    "primaryKey": ["gss_code", "financial_year", "record_id"],
}


def csv_bytes(gss: str, period: str, rows: int) -> bytes:
    """A valid file of ``rows`` rows. The figures depend on the council only,
    so every period of a council has the same totals and raises no query."""
    rnd = random.Random(gss)
    out = ["gss_code,financial_year,record_id,households,spend_gbp,service"]
    for r in range(1, rows + 1):
        out.append(f"{gss},{period},{r},{rnd.randint(0, 5000)},{rnd.randint(0, 10**7) / 100},"
                   f"service {rnd.randint(1, 40)}")
    return ("\n".join(out) + "\n").encode()


def periods(n: int) -> list[str]:
    """n financial years that have ended, the latest first: 2023-24, 2022-23, ..."""
    return [f"{y}-{(y + 1) % 100:02d}" for y in range(2023, 2023 - n, -1)]


# ---------------------------------------------------------------- in-process CKAN (set-up)


class Site:
    """CKAN loaded from test.ini in this process, for set-up only."""

    def __init__(self, ini: str) -> None:
        from ckan.cli import load_config
        from ckan.config.middleware import make_app

        config = load_config(ini)
        self.app = make_app(config)
        from ckan.common import config as live

        for key in ("sqlalchemy.url", "ckan.datastore.write_url"):
            db = str(live.get(key) or "").rsplit("/", 1)[-1].split("?")[0]
            if not db.startswith("lgdp_test"):
                raise SystemExit(f"{key} points at {db}, not a test database of test.ini; refusing")
        self.ctx = self.app._wsgi_app.test_request_context()
        self.ctx.push()
        self.main_url = live["sqlalchemy.url"]
        self.ds_url = live["ckan.datastore.write_url"]
        self.redis_url = live.get("ckan.redis.url")
        self.site_id = live.get("ckan.site_id")

    def site_user(self) -> str:
        import ckan.plugins.toolkit as tk

        return tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]

    def act(self, action: str, as_user: str | None = None, **data: Any) -> Any:
        """An action with a fresh context: as the site user (ignoring auth)
        for set-up, or as ``as_user`` with auth checked."""
        import ckan.plugins.toolkit as tk

        context: dict[str, Any] = ({"user": as_user, "ignore_auth": False} if as_user
                                   else {"user": self.site_user(), "ignore_auth": True})
        return tk.get_action(action)(context, data)

    def fresh(self) -> None:
        from ckan import model

        model.Session.rollback()
        model.Session.remove()


@dataclass
class Person:
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.token}


@dataclass
class Council:
    id: str
    name: str
    gss: str
    editor: Person
    admin: Person


@dataclass
class People:
    agency_id: str
    agency_editor: Person
    councils: list[Council] = field(default_factory=list)


def _person(site: Site, name: str, org_id: str, role: str) -> Person:
    from ckan import model

    if model.User.get(name) is None:
        site.act("user_create", name=name, email=f"{name}@faults.invalid", password=PASSWORD)
    site.act("organization_member_create", id=org_id, username=name, role=role)
    token = site.act("api_token_create", user=name, name="fault-suite")["token"]
    return Person(name, token)


def setup_people(site: Site, n_councils: int) -> People:
    """The agency, councils and their people (idempotent; fresh tokens)."""
    import ckan.plugins.toolkit as tk

    from ckanext.lgdp.repository import reference

    try:
        agency = site.act("organization_show", id=AGENCY)
    except tk.ObjectNotFound:
        agency = site.act("organization_create", name=AGENCY, title="Fault suite agency", org_type="agency")
    known = sorted(reference.councils(), key=lambda c: c["gss_code"])[:n_councils]
    people = People(agency["id"], _person(site, f"{AGENCY}-editor", agency["id"], "editor"))
    for i, c in enumerate(known, 1):
        name = f"{PREFIX}council-{i:02d}"
        try:
            org = site.act("organization_show", id=name)
        except tk.ObjectNotFound:
            org = site.act("organization_create", name=name, title=f"Fault suite {c['name']}",
                           org_type="council", gss_code=c["gss_code"])
        people.councils.append(Council(
            org["id"], name, c["gss_code"],
            _person(site, f"{name}-editor", org["id"], "editor"),
            _person(site, f"{name}-admin", org["id"], "admin")))
    site.fresh()
    return people


def make_return(site: Site, name: str, title: str, owner_id: str) -> dict[str, Any]:
    ret = site.act("package_create", type="data-return", name=name, title=title,
                   notes="A return of the fault suite (bench/faults).", owner_org=owner_id,
                   frequency="annual", period_basis="financial", statutory="no",
                   lifecycle_status="active", data_standard=json.dumps(STANDARD))
    site.fresh()
    return {"id": ret["id"], "name": ret["name"]}


def subscribe(site: Site, who: Person, return_id: str, url: str) -> str:
    """A webhook subscription of ``who`` to a return's acceptances."""
    sub = site.act("lgdp_subscription_create", as_user=who.name, channel="webhook", url=url,
                   data_return=return_id, event_types=["submission.accepted"])
    site.fresh()
    return sub["id"]


# ---------------------------------------------------------------- reading back (SQL)


class Observer:
    """Plain SQL on the platform's databases, on connections that are checked
    before use (so a PostgreSQL restart costs a retry, not the run)."""

    def __init__(self, main_url: str, ds_url: str) -> None:
        self.main = sa.create_engine(main_url, pool_pre_ping=True, pool_size=2)
        self.ds = sa.create_engine(ds_url, pool_pre_ping=True, pool_size=2)

    def _retry(self, fn: Callable[[], Any], timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return fn()
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def rows(self, engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
        def run() -> list[Any]:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql), params).all()

        return self._retry(run)

    def execute(self, engine: sa.Engine, sql: str, **params: Any) -> int:
        def run() -> int:
            with engine.begin() as conn:
                return conn.execute(sa.text(sql), params).rowcount

        return self._retry(run)

    def submissions(self, return_id: str) -> dict[str, dict[str, Any]]:
        """The return's submissions by name, with their workflow fields."""
        out: dict[str, dict[str, Any]] = {}
        rows = self.rows(self.main, """
            SELECT p.id, p.name, p.owner_org,
                   (SELECT json_object_agg(x.key, x.value) FROM package_extra x
                     WHERE x.package_id = p.id AND x.state = 'active') AS extras,
                   c.upload_id, c.status, c.problem,
                   s.status, s.current_upload, s.accepted_upload
              FROM package p JOIN package_extra e ON e.package_id = p.id
              LEFT JOIN lgdp_consolidation c ON c.submission_id = p.id
              LEFT JOIN lgdp_submission_state s ON s.submission_id = p.id
             WHERE p.type = 'submission' AND p.state = 'active'
               AND e.key = 'data_return' AND e.value = :rid AND e.state = 'active'""", rid=return_id)
        for pid, name, owner, extras, c_upload, c_status, c_problem, status, current, accepted in rows:
            extras = extras or {}
            # the submission's state is the platform's own (lgdp_submission_state),
            # and so is the consolidation's (lgdp_consolidation), for the
            # accepted file; none yet: pending
            accepted = accepted or ""
            if accepted and c_upload == accepted:
                cons, problem = c_status or "", c_problem or ""
            else:
                cons, problem = ("pending" if accepted else ""), ""
            out[name] = {"id": pid, "name": name, "owner_org": owner,
                         "status": status or "expected",
                         "consolidation_status": cons,
                         "consolidation_problem": problem,
                         "current_upload": current or "",
                         "accepted_upload": accepted,
                         "period": extras.get("period")}
        return out

    def uploads(self, submission_ids: list[str]) -> list[dict[str, Any]]:
        if not submission_ids:
            return []
        rows = self.rows(self.main, """
            SELECT id, submission_id, version, status, attempts, worker, problem_code, rows, uploaded_at
              FROM lgdp_upload WHERE submission_id = ANY(:ids) ORDER BY submission_id, version""",
                         ids=submission_ids)
        return [dict(r._mapping) for r in rows]

    def table(self, return_name: str) -> dict[str, Any]:
        """The return's consolidated table: its DataStore resources and the
        rows of each council-period, counted in the DataStore itself (in the
        resources the DataStore serves: active, ``datastore_active``)."""
        res = self.rows(self.main, """
            SELECT r.id, r.state, r.extras FROM resource r JOIN package p ON p.id = r.package_id
             WHERE p.name = :name ORDER BY r.created""", name=f"{return_name}--all-councils"[:100])
        resources = []
        counts: dict[tuple[str, str], int] = {}
        for rid, state, extras in res:
            try:
                flags = json.loads(extras or "{}")
            except ValueError:
                flags = {}
            entry = {"id": rid, "state": state, "datastore_active": bool(flags.get("datastore_active")),
                     "rows": 0}
            exists = self.rows(self.ds, "SELECT to_regclass(:t) IS NOT NULL", t=f'"{rid}"')[0][0]
            live = state == "active" and entry["datastore_active"]
            if exists:
                for gss, period, n in self.rows(self.ds, f'SELECT council_gss, period, count(*) FROM "{rid}" '
                                                         "GROUP BY council_gss, period"):
                    entry["rows"] += n
                    if live:  # rows of a table the DataStore no longer serves are not in the return's table
                        counts[(gss, period)] = counts.get((gss, period), 0) + n
            entry["exists"] = bool(exists)
            resources.append(entry)
        return {"resources": resources, "counts": counts, "total": sum(counts.values())}

    def deliveries(self, subscription_id: str) -> list[dict[str, Any]]:
        rows = self.rows(self.main, """
            SELECT d.id, d.event_id, d.status, d.attempts, d.last_status, d.last_error
              FROM lgdp_delivery d WHERE d.subscription_id = :sid""", sid=subscription_id)
        return [dict(r._mapping) for r in rows]

    def events(self, return_id: str, event_type: str) -> list[str]:
        return [r[0] for r in self.rows(self.main, "SELECT id FROM lgdp_event WHERE return_id = :rid AND type = :t",
                                        rid=return_id, t=event_type)]

    def hurry_deliveries(self, subscription_ids: list[str]) -> int:
        """TIME COMPRESSION (short mode): make the pending deliveries of these
        subscriptions due now, as if their backoff had passed. Nothing is
        attempted here: the scheduler still has to do that by itself."""
        return self.execute(self.main, """
            UPDATE lgdp_delivery SET next_attempt_at = (now() AT TIME ZONE 'utc')
             WHERE status = 'pending' AND subscription_id = ANY(:ids)
               AND next_attempt_at > (now() AT TIME ZONE 'utc')""", ids=subscription_ids)

    def backends(self, engine: sa.Engine) -> list[dict[str, Any]]:
        """What each other connection to the engine's database is doing."""
        rows = self.rows(engine, """
            SELECT pid, client_port, state, wait_event_type, left(query, 60) AS query,
                   xact_start IS NOT NULL AS in_transaction
              FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()""")
        return [dict(r._mapping) for r in rows]

    def datastore_backends(self) -> list[dict[str, Any]]:
        return self.backends(self.ds)

    def dispose(self) -> None:
        self.main.dispose()
        self.ds.dispose()
