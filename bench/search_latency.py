#!/usr/bin/env python3
"""package_search latency: the platform's plugins against stock CKAN.

Two CKAN sites are built side by side on the same services, each with its own
database and Solr core, and given the same logical data:

  ours   the full ``ckan.plugins`` list of config/platform.ini; datasets of
         type ``data-return`` with the governance fields of the schema
         (lifecycle_status, frequency, statutory, topic, legal_basis,
         requesting_agencies, dates, burden...), owned by organisations of the
         demo kind (the 32 councils, the agencies, the coordinating body),
         about a fifth of them private
  stock  CKAN with ``activity`` only; plain ``dataset`` datasets carrying the
         same values as extras, in the same organisations

Each site runs in its own subprocess (a CKAN process loads one plugin set).
The parent sends both the same sequence of package_search requests, one
query at a time and alternating which site goes first, and each subprocess
times ``GET /api/3/action/package_search`` through the whole WSGI stack of
its app (werkzeug test client: middleware, Flask, auth, the action, Solr,
JSON), anonymously or as an organisation member with an API token.

Run it through bench/run_search_latency.sh, which makes sure PostgreSQL,
Redis, Solr and the bench databases and cores exist. See bench/README.md.
"""
from __future__ import annotations

import argparse
import configparser
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("LGDP_STATE") or ROOT / ".state")
VENV = Path(os.environ.get("LGDP_VENV") or ROOT / ".venv")
BENCH_STATE = STATE / "bench"
RESULTS = ROOT / "bench" / "results"
PG_PORT = int(os.environ.get("LGDP_PG_PORT") or 5432)
SOLR_PORT = int(os.environ.get("LGDP_SOLR_PORT") or 8983)
REDIS_PORT = int(os.environ.get("LGDP_REDIS_PORT") or 6379)
DB_USER = DB_PASS = "ckan_default"
DS_READ_USER = DS_READ_PASS = "datastore_default"

# The goal this benchmark tracks (bench/README.md).
GOAL_P95_MS = 50.0
GOAL_RATIO = 1.1
GOAL_AT_N = 100_000

MEMBER = "bench-member"
MEMBER_ORGS = ("sg-homelessness-statistics", "sepa", "fife")

CONFIGS: dict[str, dict[str, Any]] = {
    "ours": {
        "db": "lgdp_bench_ours",
        "ds_db": "lgdp_bench_ours_datastore",
        "core": "bench-ours",
        "site_id": "lgdp_bench_ours",
        "dataset_type": "data-return",
    },
    "stock": {
        "db": "lgdp_bench_stock",
        "ds_db": None,
        "core": "bench-stock",
        "site_id": "lgdp_bench_stock",
        "dataset_type": "dataset",
        "plugins": "activity",
    },
}

# Settings that only mean something to one of our plugins: left out of the
# stock site so that it is CKAN as shipped plus the same core settings.
PLUGIN_ONLY_PREFIXES = ("scheming.", "ckanext.", "ckan.datastore.")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pg_url(db: str, user: str = DB_USER, password: str = DB_PASS) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{PG_PORT}/{db}"


def solr_url(core: str) -> str:
    return f"http://127.0.0.1:{SOLR_PORT}/solr/{core}"


def ini_path(name: str) -> Path:
    return BENCH_STATE / f"{name}.ini"


def clean_env() -> dict[str, str]:
    """The environment of every CKAN subprocess: CKAN reads CKAN_* variables
    over the ini file (./platform.sh test exports some), so none may leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CKAN_")}


# ---------------------------------------------------------------- configuration


def _read_ini(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.optionxform = str  # keep the case of keys (SECRET_KEY)
    cp.read(path, encoding="utf-8")
    return cp


def our_plugins() -> str:
    plugins = _read_ini(ROOT / "config" / "platform.ini").get("app:main", "ckan.plugins")
    return " ".join(plugins.split())


def write_configs() -> dict[str, Path]:
    """$LGDP_STATE/bench/{ours,stock}.ini from test.ini, with the settings of
    config/platform.ini over it (as `./platform.sh run` merges them), then the
    bench's own database, Solr core, site id, plugins and storage."""
    BENCH_STATE.mkdir(parents=True, exist_ok=True)
    platform_ini = _read_ini(ROOT / "config" / "platform.ini")
    out = {}
    for name, cfg in CONFIGS.items():
        cp = _read_ini(ROOT / "test.ini")
        main = cp["app:main"]
        for key, value in platform_ini["app:main"].items():
            main[key] = value
        storage = BENCH_STATE / f"storage-{name}"
        storage.mkdir(exist_ok=True)
        main.update(
            {
                "ckan.site_id": cfg["site_id"],
                "sqlalchemy.url": pg_url(cfg["db"]),
                "solr_url": solr_url(cfg["core"]),
                "ckan.redis.url": f"redis://127.0.0.1:{REDIS_PORT}/2",
                "ckan.storage_path": str(storage),
                # No view plugin is enabled on either site; CKAN's default
                # (image_view datatables_view) would only log a warning for
                # every resource created.
                "ckan.views.default_views": "",
            }
        )
        if name == "ours":
            main["ckan.plugins"] = our_plugins()
            main["ckan.datastore.write_url"] = pg_url(cfg["ds_db"])
            main["ckan.datastore.read_url"] = pg_url(cfg["ds_db"], DS_READ_USER, DS_READ_PASS)
        else:
            main["ckan.plugins"] = cfg["plugins"]
            for key in list(main.keys()):
                if key.startswith(PLUGIN_ONLY_PREFIXES):
                    del main[key]
        path = ini_path(name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"# Written by bench/search_latency.py ({name}); regenerated on every run.\n")
            cp.write(f)
        out[name] = path
    return out


# ---------------------------------------------------------------- the data

COUNCILS_CSV = ROOT / "ckanext" / "lgdp" / "reference" / "councils.csv"

# Keys are the codes of the topic field of ckanext/lgdp/schemas/data_return.yaml.
TOPICS: dict[str, dict[str, list[str]]] = {
    "housing": {
        "subjects": [
            "Homelessness applications and assessments",
            "Households in temporary accommodation",
            "Council house lettings",
            "Housing repairs and maintenance",
            "Affordable housing supply",
            "Housing waiting lists",
            "Scottish Housing Quality Standard compliance",
        ],
        "legal": [
            "Housing (Scotland) Act 1987, Part II",
            "Housing (Scotland) Act 2001",
            "Housing (Scotland) Act 2010",
        ],
        "tags": ["homelessness", "housing", "temporary-accommodation", "social-housing", "tenancies"],
    },
    "finance": {
        "subjects": [
            "Council tax collection",
            "Non-domestic rates income",
            "Local government finance return",
            "Capital expenditure",
            "Revenue outturn",
            "Council tax reduction caseload",
        ],
        "legal": [
            "Local Government Finance Act 1992",
            "Local Government (Scotland) Act 1973, s.96",
        ],
        "tags": ["council-tax", "finance", "budget", "non-domestic-rates", "expenditure"],
    },
    "environment": {
        "subjects": [
            "Household waste collected and recycled",
            "Recycling rates by material",
            "Fly-tipping incidents",
            "Air quality monitoring",
            "Street cleanliness (LEAMS)",
            "Carbon emissions from council estate",
        ],
        "legal": [
            "Environmental Protection Act 1990, Part II",
            "Waste (Scotland) Regulations 2012",
            "Climate Change (Scotland) Act 2009",
        ],
        "tags": ["waste", "recycling", "environment", "fly-tipping", "climate"],
    },
    "social_care": {
        "subjects": [
            "Care home places and occupancy",
            "Home care hours delivered",
            "Self-directed support",
            "Adult support and protection referrals",
        ],
        "legal": [
            "Social Work (Scotland) Act 1968",
            "Adult Support and Protection (Scotland) Act 2007",
        ],
        "tags": ["social-care", "adult-care", "care-homes", "safeguarding"],
    },
    "children": {
        "subjects": [
            "Children looked after",
            "Child protection register",
            "Early learning and childcare places",
        ],
        "legal": [
            "Children (Scotland) Act 1995",
            "Children and Young People (Scotland) Act 2014",
        ],
        "tags": ["children", "childcare", "child-protection", "safeguarding"],
    },
    "education": {
        "subjects": [
            "School meals uptake",
            "Pupil attendance and absence",
            "School exclusions",
            "Pupil census",
            "Additional support for learning",
        ],
        "legal": [
            "Education (Scotland) Act 1980",
            "Standards in Scotland's Schools etc. Act 2000",
        ],
        "tags": ["education", "schools", "pupils", "school-meals"],
    },
    "transport": {
        "subjects": [
            "Road condition index",
            "Supported bus services",
            "Parking penalty charge notices",
            "Street lighting faults",
            "Winter gritting",
        ],
        "legal": [
            "Roads (Scotland) Act 1984",
            "Transport (Scotland) Act 2001",
        ],
        "tags": ["roads", "transport", "parking", "buses", "street-lighting"],
    },
    "planning": {
        "subjects": [
            "Planning applications decided",
            "Building warrants",
            "Vacant and derelict land survey",
            "Housing land audit",
        ],
        "legal": [
            "Town and Country Planning (Scotland) Act 1997",
            "Building (Scotland) Act 2003",
        ],
        "tags": ["planning", "building-standards", "land", "development"],
    },
    "health": {
        "subjects": [
            "Drug and alcohol service waiting times",
            "Smoking cessation outcomes",
            "Library and leisure health referrals",
        ],
        "legal": [
            "Public Health etc. (Scotland) Act 2008",
        ],
        "tags": ["public-health", "wellbeing", "libraries", "leisure"],
    },
}
COMMON_TAGS = [
    "statistics", "benchmarking", "lgbf", "official-statistics", "scotland",
    "annual-return", "quarterly-return", "management-information", "performance",
    "equalities", "open-data", "local-authority",
]
LIFECYCLE = [("active", 60), ("approved", 10), ("proposed", 10), ("under_review", 8),
             ("retired", 10), ("rejected", 2)]
FREQUENCY = [("annual", 45), ("quarterly", 25), ("monthly", 15), ("weekly", 4),
             ("daily", 1), ("ad_hoc", 10)]
FORMATS = [("CSV", 50), ("XLSX", 25), ("PDF", 10), ("JSON", 10), ("ODS", 5)]
YEARS = [f"{y}-{str(y + 1)[2:]}" for y in range(2012, 2025)]


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in pairs], weights=[w for _, w in pairs])[0]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def organisations() -> list[dict[str, str]]:
    """Organisations of the demo: the 32 councils, the requesting agencies and
    the coordinating body (names and titles from ckanext.lgdp.demo)."""
    import csv

    from ckanext.lgdp import demo

    orgs = []
    with open(COUNCILS_CSV, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            orgs.append(
                {
                    "name": row["slug"],
                    "title": row["official_name"],
                    "org_type": "council",
                    "gss_code": row["gss_code"],
                    "official_name": row["official_name"],
                }
            )
    for agency in demo.AGENCIES:
        orgs.append({**agency, "org_type": "agency"})
    orgs.append({**demo.COORDINATOR, "org_type": "coordinator"})
    return orgs


def logical_dataset(i: int, orgs: list[dict[str, str]]) -> dict[str, Any]:
    """Dataset number i, the same for every run and both configurations."""
    rng = random.Random(f"lgdp-bench-{i}")
    councils = [o for o in orgs if o["org_type"] == "council"]
    others = [o for o in orgs if o["org_type"] != "council"]
    topic = rng.choice(sorted(TOPICS))
    spec = TOPICS[topic]
    subject = rng.choice(spec["subjects"])
    # Returns are mostly owned by the agency that collects them; councils own
    # some of their own.
    owner = rng.choice(others) if rng.random() < 0.7 else rng.choice(councils)
    about = rng.choice(councils)["title"] if rng.random() < 0.5 else "all councils"
    year = rng.choice(YEARS)
    frequency = _weighted(rng, FREQUENCY)
    lifecycle = _weighted(rng, LIFECYCLE)
    statutory = "yes" if rng.random() < 0.55 else "no"
    title = f"{subject}: {about}, {year}"
    notes = (
        f"{subject} for {about}, {year}. "
        f"{'An' if frequency[0] in 'aeiou' else 'A'} {frequency.replace('_', ' ')} data return "
        f"collected by {owner['title']}. "
        + rng.choice(
            [
                "Used for the national statistics publication and the Local Government Benchmarking Framework.",
                "Feeds the annual performance report and local outcome improvement plans.",
                "Management information shared between councils for benchmarking.",
                "Published as official statistics; figures are provisional until validated.",
            ]
        )
    )
    tags = sorted(set(rng.sample(spec["tags"], 2) + rng.sample(COMMON_TAGS, rng.randint(1, 3))))
    resources = []
    for r in range(rng.randint(1, 3)):
        fmt = _weighted(rng, FORMATS)
        resources.append(
            {
                "name": f"{subject} {year} part {r + 1}",
                "description": f"{subject}, {about}, {year} ({fmt}).",
                "format": fmt,
                "url": f"https://data.example.gov.scot/{_slug(subject)}/{year}/{i}-{r + 1}.{fmt.lower()}",
            }
        )
    agencies = [o["name"] for o in orgs if o["org_type"] == "agency" and o["name"] != owner["name"]]
    # Governance fields, as many as the data-return schema declares (see
    # schema_fields): the same values go to the stock site as extras.
    fields: dict[str, Any] = {
        "lifecycle_status": lifecycle,
        "frequency": frequency,
        "statutory": statutory,
        "topic": topic,
        "period_basis": rng.choice(["financial", "financial", "calendar", "academic"]),
        "due_days_after_period_end": str(rng.choice([30, 42, 60, 90])),
        "burden_hours": str(rng.choice([0.5, 1, 2, 4, 8, 16])),
        "contact_email": f"{_slug(subject)[:30]}@{owner['name']}.example.gov.scot",
        "collection_start": f"{year[:4]}-04-01",
        "review_date": f"{int(year[:4]) + rng.randint(3, 5)}-03-31",
    }
    if rng.random() < 0.6:
        fields["legal_basis"] = rng.choice(spec["legal"])
    if rng.random() < 0.4:
        fields["requesting_agencies"] = sorted(rng.sample(agencies, rng.randint(1, 2)))
    private = lifecycle in ("proposed", "under_review", "rejected") or rng.random() < 0.05
    return {
        "name": f"{_slug(subject)[:60]}-{i:06d}",
        "title": title,
        "notes": notes,
        "owner_org": owner["name"],
        "private": private,
        "tag_string": ",".join(tags),
        "resources": resources,
        "fields": fields,
    }


_SCHEMA_FIELDS: set[str] | None = None


def schema_fields() -> set[str]:
    """Dataset fields declared by the data-return schema of the platform
    (the one of that type among scheming.dataset_schemas of config/platform.ini)."""
    global _SCHEMA_FIELDS
    if _SCHEMA_FIELDS is None:
        import yaml

        refs = _read_ini(ROOT / "config" / "platform.ini").get("app:main", "scheming.dataset_schemas")
        for ref in refs.split():
            module, _, rel = ref.partition(":")
            with open((ROOT / Path(*module.split(".")) / rel).resolve(), encoding="utf-8") as f:
                schema = yaml.safe_load(f)
            if schema.get("dataset_type") == CONFIGS["ours"]["dataset_type"]:
                _SCHEMA_FIELDS = {fld["field_name"] for fld in schema["dataset_fields"]}
                break
        else:
            sys.exit(f"no schema of type {CONFIGS['ours']['dataset_type']} in scheming.dataset_schemas")
    return _SCHEMA_FIELDS


def dataset_for(config: str, logical: dict[str, Any]) -> dict[str, Any]:
    """The package_create data dict of one configuration. Only the governance
    fields the schema declares are used, on both sites."""
    d = {k: v for k, v in logical.items() if k != "fields"}
    fields = {k: v for k, v in logical["fields"].items() if k in schema_fields()}
    if config == "ours":
        d["type"] = "data-return"
        d.update(fields)
    else:
        d["type"] = "dataset"
        d["extras"] = [
            {"key": k, "value": json.dumps(v) if isinstance(v, list) else v}
            for k, v in sorted(fields.items())
        ]
    return d


def organisation_for(config: str, org: dict[str, str]) -> dict[str, Any]:
    extra_keys = ("org_type", "gss_code", "official_name", "website")
    if config == "ours":
        return dict(org)
    d = {"name": org["name"], "title": org["title"], "description": org.get("notes", "")}
    d["extras"] = [{"key": k, "value": org[k]} for k in extra_keys if org.get(k)]
    return d


# ---------------------------------------------------------------- the queries

# Facets both sites index the same way (the governance fields are top-level
# fields in ours and extras in stock; CKAN indexes both as the same string field).
FACETS = ["organization", "tags", "res_format", "license_id", "frequency", "statutory",
          "lifecycle_status", "topic"]
TERMS = [
    "homelessness", "council tax", "recycling", "waste", "social care", "housing",
    "school meals", "roads", "planning applications", "library", "temporary accommodation",
    "Fife", "Glasgow", "care home", "attendance", "fly-tipping", "benchmarking", "parking",
    "children", "expenditure",
]
TAGS_FOR_FQ = ["homelessness", "recycling", "council-tax", "education", "social-care",
               "lgbf", "statistics", "roads", "planning", "open-data"]
SORTS = ["score desc, metadata_modified desc", "metadata_modified desc", "title_string asc",
         "title_string desc", "name asc", "metadata_created desc"]
# kind: weight. Roughly what the dataset page, the register and API clients ask.
KINDS = [("browse", 15), ("text", 20), ("text_facets", 15), ("filter_org", 10),
         ("filter_fields", 10), ("filter_tags_format", 8), ("sort", 8), ("paging", 8),
         ("count_only", 3), ("rows_100", 3)]


def make_queries(count: int, seed: str, org_names: list[str]) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        kind = _weighted(rng, KINDS)
        p: dict[str, Any] = {"rows": 20}
        facets = json.dumps(FACETS)
        if kind == "browse":
            p.update({"q": "", "facet.field": facets, "facet.limit": 10,
                      "sort": "score desc, metadata_modified desc"})
        elif kind == "text":
            p["q"] = rng.choice(TERMS)
        elif kind == "text_facets":
            p.update({"q": rng.choice(TERMS), "facet.field": facets})
        elif kind == "filter_org":
            p.update({"fq": f'organization:"{rng.choice(org_names)}"', "facet.field": facets,
                      "sort": "metadata_modified desc"})
        elif kind == "filter_fields":
            fq = f'frequency:"{_weighted(rng, FREQUENCY)}" statutory:"yes"'
            if rng.random() < 0.5:
                fq += ' lifecycle_status:"active"'
            p.update({"fq": fq, "facet.field": json.dumps(["organization", "lifecycle_status",
                                                           "res_format"])})
        elif kind == "filter_tags_format":
            p.update({"q": rng.choice(["", rng.choice(TERMS)]),
                      "fq": f'tags:"{rng.choice(TAGS_FOR_FQ)}" res_format:"{_weighted(rng, FORMATS)}"',
                      "facet.field": json.dumps(["organization", "tags"])})
        elif kind == "sort":
            p.update({"q": rng.choice(["", rng.choice(TERMS)]), "sort": rng.choice(SORTS)})
        elif kind == "paging":
            p.update({"q": rng.choice(["", rng.choice(TERMS)]), "start": 20 * rng.randint(1, 25)})
        elif kind == "count_only":
            p.update({"rows": 0, "facet.field": facets, "facet.limit": -1})
        elif kind == "rows_100":
            p.update({"rows": 100, "start": 100 * rng.randint(0, 5)})
        member = rng.random() < 0.3
        if member or rng.random() < 0.5:
            p["include_private"] = "true"
        params = [(k, str(v)) for k, v in p.items()]
        out.append({"kind": kind, "member": member, "params": params})
    return out


# ---------------------------------------------------------------- subprocess side


def _make_app(config: str) -> Any:
    from ckan.cli import load_config
    from ckan.config.middleware import make_app

    return make_app(load_config(str(ini_path(config))))


_SITE_USER: str | None = None


def _site_context() -> dict[str, Any]:
    """A fresh context acting as the site user (a sysadmin), as CKAN's own
    commands do."""
    global _SITE_USER
    import ckan.plugins.toolkit as tk

    if _SITE_USER is None:
        _SITE_USER = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
    return {"user": _SITE_USER, "ignore_auth": True}


def _ensure_orgs_and_member(config: str, orgs: list[dict[str, str]]) -> None:
    import ckan.plugins.toolkit as tk
    from ckan import model

    for org in orgs:
        if model.Group.by_name(org["name"]) is None:
            tk.get_action("organization_create")(_site_context(), organisation_for(config, org))
    if model.User.by_name(MEMBER) is None:
        tk.get_action("user_create")(
            _site_context(),
            {"name": MEMBER, "email": f"{MEMBER}@lgdp.localhost",
             "password": "bench-member-password", "fullname": "Bench organisation member"},
        )
    for org in MEMBER_ORGS:
        tk.get_action("organization_member_create")(
            _site_context(), {"id": org, "username": MEMBER, "role": "editor"}
        )


# ---------------------------------------------------------------- bulk rows
#
# The bulk seeder writes the rows package_create would write: each dataset is
# validated by CKAN's own validation of package_create (the site's package
# plugin and schema: scheming's and the platform's validators on ours), and
# the validated dict is turned into the rows CKAN's model_save writes from it
# (package, package_extra, resource, tag, package_tag and the organisation's
# member row of package_owner_org_update), many datasets per INSERT. Not
# written: the activity of the creation, the platform's audit row of a data
# return's creation and the default resource views, which neither
# package_show nor the search index reads. `bulk_check` holds the result to
# package_create itself before every bulk seeding.


def _validated(data_dict: dict[str, Any]) -> dict[str, Any]:
    """data_dict as package_create validates it (raises on errors)."""
    import ckan.lib.plugins as lib_plugins
    import ckan.plugins.toolkit as tk
    from ckan import model

    data_dict = dict(data_dict)
    if data_dict.get("type") == "data-return":
        # the platform's chained package_create: a return imported past the
        # proposal stage without a standard has no standard version
        data_dict["standard_version"] = None
    plugin = lib_plugins.lookup_package_plugin(data_dict["type"])
    context = {**_site_context(), "model": model, "session": model.Session}
    data, errors = lib_plugins.plugin_validate(plugin, context, data_dict, plugin.create_package_schema(),
                                               "package_create")
    if errors:
        raise tk.ValidationError(errors)
    return data


def _columns(table: Any, values: dict[str, Any]) -> dict[str, Any]:
    """A full row of `table`: the values given, each other column's model
    default (or NULL), as the ORM would insert it."""
    row = {}
    for column in table.columns:
        if column.name in values:
            row[column.name] = values[column.name]
        elif column.default is not None:
            arg = column.default.arg
            row[column.name] = arg(None) if callable(arg) else arg
        else:
            row[column.name] = None
    return row


class BulkWriter:
    """Collects the rows of validated datasets and writes them in one INSERT
    per table (flush)."""

    def __init__(self, user_id: str) -> None:
        from ckan import model

        self.user_id = user_id
        self.orgs = {g.name: g.id for g in model.Session.query(model.Group).filter_by(is_organization=True)}
        self.orgs.update({v: v for v in list(self.orgs.values())})
        self.tags = {name: tid for tid, name in
                     model.Session.query(model.Tag.id, model.Tag.name).filter(model.Tag.vocabulary_id.is_(None))}
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def _add(self, table: Any, values: dict[str, Any]) -> dict[str, Any]:
        row = _columns(table, values)
        self.rows.setdefault(table.name, []).append(row)
        return row

    def _tag_id(self, name: str) -> str:
        """The id of a free tag, created (once, across processes) if new."""
        from ckan import model

        if name not in self.tags:
            import sqlalchemy as sa

            session = model.Session
            session.execute(sa.text("SELECT pg_advisory_xact_lock(74757)"))
            found = session.query(model.Tag.id).filter(model.Tag.name == name,
                                                       model.Tag.vocabulary_id.is_(None)).first()
            if found:
                self.tags[name] = found[0]
            else:
                row = _columns(model.tag_table, {"name": name, "vocabulary_id": None})
                session.execute(model.tag_table.insert(), [row])
                self.tags[name] = row["id"]
        return self.tags[name]

    def add(self, data: dict[str, Any]) -> str:
        """The rows of one validated dataset; its id."""
        from ckan import model

        values = {k: v for k, v in data.items() if k in model.package_table.columns
                  and k not in ("metadata_created", "metadata_modified", "plugin_data")}
        values["creator_user_id"] = self.user_id
        values["owner_org"] = self.orgs[data["owner_org"]] if data.get("owner_org") else None
        values.setdefault("state", "active")
        pkg = self._add(model.package_table, values)
        if pkg["id"] is None:
            pkg["id"] = str(__import__("uuid").uuid4())
        pkg_id = pkg["id"]
        for position, res in enumerate(data.get("resources") or []):
            res = {k: v for k, v in res.items() if k not in ("extras", "revision_timestamp", "tracking_summary")}
            core = {k: v for k, v in res.items() if k in model.resource_table.columns and k != "extras"}
            extras = {k: v for k, v in res.items() if k not in model.resource_table.columns}
            # model.Resource() starts with these empty texts
            defaults = {"url": "", "format": "", "description": "", "hash": ""}
            self._add(model.resource_table, {**defaults, **core, "package_id": pkg_id, "position": position,
                                             "state": "active", "extras": extras})
        seen = set()
        for tag in data.get("tags") or []:
            if tag.get("vocabulary_id") or tag["name"] in seen:
                continue
            seen.add(tag["name"])
            self._add(model.package_tag_table, {"package_id": pkg_id, "tag_id": self._tag_id(tag["name"]),
                                                "state": "active"})
        for extra in data.get("extras") or []:
            if extra.get("deleted") or extra.get("value") is None:
                continue
            self._add(model.package_extra_table, {"package_id": pkg_id, "key": extra["key"],
                                                  "value": extra["value"], "state": "active"})
        if values["owner_org"]:
            self._add(model.member_table, {"table_name": "package", "table_id": pkg_id,
                                           "capacity": "organization", "group_id": values["owner_org"],
                                           "state": "active"})
        return pkg_id

    def flush(self) -> None:
        from ckan import model

        tables = {t.name: t for t in (model.package_table, model.resource_table, model.package_tag_table,
                                      model.package_extra_table, model.member_table)}
        for name in ("package", "resource", "package_tag", "package_extra", "member"):
            if self.rows.get(name):
                model.Session.execute(tables[name].insert(), self.rows[name])
        self.rows = {}


def _comparable(pkg: dict[str, Any]) -> dict[str, Any]:
    """A package_show dict without what differs between two creations of the
    same dataset (ids, names, times)."""
    drop = {"id", "name", "metadata_created", "metadata_modified", "revision_id"}
    out = {k: v for k, v in pkg.items() if k not in drop}
    out["resources"] = [
        {k: v for k, v in r.items() if k not in ("id", "package_id", "created", "metadata_modified")}
        for r in pkg.get("resources") or []
    ]
    out["tags"] = sorted((t["name"], t.get("display_name"), t.get("state"), t.get("vocabulary_id"))
                         for t in pkg.get("tags") or [])
    out["extras"] = sorted((e["key"], e["value"]) for e in pkg.get("extras") or [])
    return json.loads(json.dumps(out, sort_keys=True, default=str))


def _index_document(pkg: dict[str, Any]) -> dict[str, Any]:
    """The document CKAN's indexer would send Solr for pkg (captured, not sent)."""
    from ckan.lib.search import index as search_index

    sent: list[dict[str, Any]] = []
    indexer = search_index.PackageSearchIndex()
    original = search_index.make_connection

    class _Capture:
        def add(self, docs: list[dict[str, Any]], **kwargs: Any) -> None:
            sent.extend(docs)

    search_index.make_connection = lambda *a, **k: _Capture()  # type: ignore[assignment]
    try:
        indexer.index_package(pkg, defer_commit=True)
    finally:
        search_index.make_connection = original  # type: ignore[assignment]
    doc = dict(sent[0])
    for key in ("id", "name", "index_id", "metadata_created", "metadata_modified", "indexed_ts",
                "data_dict", "validated_data_dict", "_version_", "res_id", "title_string"):
        doc.pop(key, None)
    doc["text"] = sorted(str(t) for t in doc.get("text") or [] if "check-" not in str(t))
    return json.loads(json.dumps(doc, sort_keys=True, default=str))


def worker_bulk_check(config: str, count: int) -> None:
    """Create `count` generated datasets twice, with package_create and with
    the bulk writer, in a transaction that is rolled back; compare what
    package_show returns and the documents CKAN would index. Exits non-zero,
    printing the differences, when they differ."""
    import ckan.plugins as p
    import ckan.plugins.toolkit as tk
    from ckan import model

    app = _make_app(config)
    report: dict[str, Any] = {"config": config, "checked": 0, "differences": []}
    with app._wsgi_app.test_request_context():
        orgs = organisations()
        _ensure_orgs_and_member(config, orgs)
        model.repo.commit()
        user_id = model.User.by_name(_site_context()["user"]).id
        p.unload("synchronous_search")
        try:
            writer = BulkWriter(user_id)
            pairs = []
            for k in range(count):
                logical = logical_dataset(10_000_000 + k, orgs)
                a = dataset_for(config, {**logical, "name": f"check-a-{k}"})
                b = dataset_for(config, {**logical, "name": f"check-b-{k}"})
                created = tk.get_action("package_create")({**_site_context(), "defer_commit": True}, a)
                pairs.append((created["id"], writer.add(_validated(b))))
            writer.flush()
            model.Session.flush()
            show = tk.get_action("package_show")
            for a_id, b_id in pairs:
                a_pkg = show({**_site_context(), "use_cache": False}, {"id": a_id})
                b_pkg = show({**_site_context(), "use_cache": False}, {"id": b_id})
                for what, x, y in (("package_show", _comparable(a_pkg), _comparable(b_pkg)),
                                   ("index document", _index_document(a_pkg), _index_document(b_pkg))):
                    if x != y:
                        keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
                        report["differences"].append(
                            {"what": what, "keys": keys,
                             "package_create": {k: x.get(k) for k in keys},
                             "bulk": {k: y.get(k) for k in keys}})
                report["checked"] += 1
        finally:
            model.Session.rollback()
            p.load("synchronous_search")
    print(json.dumps(report), flush=True)
    if report["differences"]:
        print(json.dumps(report["differences"][:5], indent=1, sort_keys=True), file=sys.stderr)
        sys.exit(1)


def worker_seed(config: str, first: bool, plain: int, batch: int, lo: int, hi: int) -> None:
    """Create the missing datasets among numbers lo..hi-1 with package_create
    (the action the web form and the API use), then have CKAN index them.

    first: the organisations and the member, then the first `plain` missing
    datasets the ordinary way, one package_create each, committed and indexed
    at once as for a client of the API (this times that path).

    Otherwise, in bulk: each dataset validated as package_create validates
    it and written by the BulkWriter, `batch` datasets per INSERT and
    database commit; then CKAN's own indexing of those datasets
    (ckan.lib.search.rebuild, as `ckan search-index rebuild` does) with one
    Solr commit at the end."""
    import ckan.plugins.toolkit as tk
    from ckan import model
    from ckan.lib import search

    app = _make_app(config)
    report: dict[str, Any] = {"config": config, "range": [lo, hi]}
    with app._wsgi_app.test_request_context():
        orgs = organisations()
        if first:
            _ensure_orgs_and_member(config, orgs)
        existing = {name for (name,) in model.Session.query(model.Package.name)}
        todo = [i for i in range(lo, hi) if logical_dataset(i, orgs)["name"] not in existing]
        create = tk.get_action("package_create")
        if first:
            todo = todo[:plain]
            t0 = time.perf_counter()
            for i in todo:
                create(_site_context(), dataset_for(config, logical_dataset(i, orgs)))
            report["plain"] = {"datasets": len(todo), "seconds": round(time.perf_counter() - t0, 2)}
            print(json.dumps(report), flush=True)
            return

        ids: list[str] = []
        t0 = time.perf_counter()
        user_id = model.User.by_name(_site_context()["user"]).id
        for start in range(0, len(todo), batch):
            writer = BulkWriter(user_id)
            for i in todo[start:start + batch]:
                ids.append(writer.add(_validated(dataset_for(config, logical_dataset(i, orgs)))))
            writer.flush()
            model.repo.commit()
            model.Session.remove()
        t1 = time.perf_counter()
        search.rebuild(package_ids=ids, defer_commit=True, quiet=True)
        search.commit()
        t2 = time.perf_counter()
        report["bulk"] = {"datasets": len(ids), "create_seconds": round(t1 - t0, 2),
                          "index_seconds": round(t2 - t1, 2)}
    print(json.dumps(report), flush=True)


def worker_reindex(config: str, only_missing: bool) -> None:
    """Index the datasets of the site again: all of them (after a change of
    plugins or code), or those missing from the index."""
    from ckan.lib import search

    app = _make_app(config)
    with app._wsgi_app.test_request_context():
        t0 = time.perf_counter()
        search.rebuild(only_missing=only_missing, defer_commit=True, quiet=True,
                       clear=not only_missing)
        search.commit()
    print(json.dumps({"config": config, "only_missing": only_missing,
                      "reindex_seconds": round(time.perf_counter() - t0, 2)}), flush=True)


def worker_clear_index(config: str) -> None:
    from ckan.lib import search

    app = _make_app(config)
    with app._wsgi_app.test_request_context():
        search.clear_all()
    print(json.dumps({"config": config, "cleared": True}), flush=True)


def worker_measure(config: str) -> None:
    """Answer requests from the parent, one JSON line in, one JSON line out."""
    import ckan.plugins.toolkit as tk
    from werkzeug.test import Client

    app = _make_app(config)
    with app._wsgi_app.test_request_context():
        token = tk.get_action("api_token_create")(
            _site_context(), {"user": MEMBER, "name": f"bench-{int(time.time())}"}
        )["token"]
    client = Client(app)
    print(json.dumps({"ready": config}), flush=True)
    for line in sys.stdin:
        q = json.loads(line)
        url = "/api/3/action/package_search?" + urllib.parse.urlencode([tuple(p) for p in q["params"]])
        headers = {"Authorization": token} if q["member"] else {}
        t0 = time.perf_counter()
        resp = client.get(url, headers=headers)
        body = resp.get_data()
        ms = (time.perf_counter() - t0) * 1000.0
        out: dict[str, Any] = {"ms": ms, "status": resp.status_code}
        try:
            data = json.loads(body)
            out["count"] = data["result"]["count"]
            out["facets"] = {k: sorted(v.items()) for k, v in data["result"]["facets"].items()}
        except (ValueError, KeyError, TypeError):
            out["error"] = body[:300].decode("utf-8", "replace")
        print(json.dumps(out), flush=True)


# ---------------------------------------------------------------- parent side


def run_worker(role: str, config: str, *extra: str, check: bool = True) -> dict[str, Any]:
    cmd = [str(VENV / "bin" / "python"), str(Path(__file__).resolve()), "--worker", role,
           "--config", config, *extra]
    proc = subprocess.run(cmd, env=clean_env(), stdout=subprocess.PIPE, text=True)
    if check and proc.returncode != 0:
        sys.exit(f"the {role} step of {config} failed (exit code {proc.returncode})")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def ckan_cli(config: str, *args: str) -> None:
    BENCH_STATE.joinpath("logs").mkdir(parents=True, exist_ok=True)
    logf = BENCH_STATE / "logs" / f"ckan-{config}.log"
    with open(logf, "a", encoding="utf-8") as f:
        f.write(f"\n$ ckan -c {ini_path(config)} {' '.join(args)}\n")
        f.flush()
        rc = subprocess.run([str(VENV / "bin" / "ckan"), "-c", str(ini_path(config)), *args],
                            env=clean_env(), stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        sys.exit(f"`ckan {' '.join(args)}` failed for {config} (log: {logf})")


def db_count(config: str) -> int | None:
    """Active datasets in the bench database, None when it has no tables yet."""
    import psycopg2

    try:
        conn = psycopg2.connect(pg_url(CONFIGS[config]["db"]))
    except psycopg2.OperationalError as e:
        sys.exit(f"cannot connect to database {CONFIGS[config]['db']} ({str(e).strip()}); "
                 "run bench/run_search_latency.sh, which creates it")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.package')")
            if cur.fetchone()[0] is None:
                return None
            cur.execute("SELECT count(*) FROM package WHERE state = 'active' AND type = %s",
                        (CONFIGS[config]["dataset_type"],))
            return cur.fetchone()[0]
    finally:
        conn.close()


def solr_count(config: str) -> int:
    cfg = CONFIGS[config]
    qs = urllib.parse.urlencode({"q": "*:*", "fq": f'site_id:"{cfg["site_id"]}"', "rows": 0,
                                 "wt": "json"})
    try:
        with urllib.request.urlopen(f"{solr_url(cfg['core'])}/select?{qs}", timeout=30) as r:
            return json.load(r)["response"]["numFound"]
    except OSError as e:
        sys.exit(f"Solr core {cfg['core']} does not answer ({e}); run bench/run_search_latency.sh, "
                 "which prepares it")


def _sha(*parts: bytes) -> str:
    import hashlib

    h = hashlib.sha256()
    for part in parts:
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def data_fingerprint() -> str:
    """Changes when the generated data would change (this file's generator,
    or which of the generated fields the schema declares): the sites are then
    seeded again."""
    import inspect

    mod = sys.modules[__name__]
    src = "".join(inspect.getsource(getattr(mod, f)) for f in
                  ("logical_dataset", "dataset_for", "organisation_for", "organisations"))
    orgs = organisations()
    generated = set().union(*(logical_dataset(i, orgs)["fields"] for i in range(100)))
    consts = json.dumps([TOPICS, COMMON_TAGS, LIFECYCLE, FREQUENCY, FORMATS, YEARS,
                         sorted(generated & schema_fields()), MEMBER, MEMBER_ORGS])
    return _sha(src.encode(), consts.encode(), COUNCILS_CSV.read_bytes())


def code_fingerprint(config: str) -> str:
    """Changes when what builds a site's index changes (its plugins, their
    code, the installed packages): the site is then indexed again."""
    from importlib import metadata

    dists = ["ckan"]
    parts = [(our_plugins() if config == "ours" else CONFIGS[config]["plugins"]).encode()]
    if config == "ours":
        dists += ["ckanext-scheming", "ckanext-validation", "ckanext-dcat"]
        for path in sorted((ROOT / "ckanext").rglob("*")):
            if path.is_file() and path.suffix in (".py", ".yaml", ".yml", ".json"):
                parts += [str(path.relative_to(ROOT)).encode(), path.read_bytes()]
    for dist in dists:
        try:
            parts.append(f"{dist}=={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            parts.append(dist.encode())
    return _sha(*parts)


def seed_state_path(config: str) -> Path:
    return BENCH_STATE / f"seed-{config}.json"


def _worker_cmd(role: str, config: str, *extra: str) -> list[str]:
    return [str(VENV / "bin" / "python"), str(Path(__file__).resolve()), "--worker", role,
            "--config", config, *extra]


def _run_tasks(tasks: list[tuple[str, list[str]]], jobs: int) -> list[tuple[str, dict | None]]:
    """Run worker commands, at most `jobs` at a time; (config, report or None)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(task: tuple[str, list[str]]) -> tuple[str, dict | None]:
        config, cmd = task
        proc = subprocess.run(cmd, env=clean_env(), stdout=subprocess.PIPE, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            log(f"[{config}] {' '.join(cmd[3:])}: failed (exit code {proc.returncode})")
            return config, None
        return config, json.loads(lines[-1])

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, tasks))


def run_seeding(n: int, to_seed: list[str], to_reindex: list[str], plain_sample: int,
                batch: int, jobs: int, check: int = 20) -> dict[str, Any]:
    """Seed and index the sites, `jobs` processes at a time: first a sample
    created the ordinary way (with the organisations and the member; it also
    creates, in practice, every tag), then the rest in bulk chunks, those of
    both sites interleaved so that every core stays busy until the slower site
    is done. A chunk that fails (e.g. two processes creating the same new tag
    at once) is run again on its own; datasets a failed chunk left unindexed
    are indexed at the end. A site in to_reindex is indexed again in full."""
    out: dict[str, Any] = {}
    first = []
    for c in to_seed:
        out[c] = {"plain": None, "bulk": {"datasets": 0, "create_seconds": 0.0,
                                          "index_seconds": 0.0, "chunks": 0}}
        first.append((c, _worker_cmd("seed", c, "--first", "--plain-sample", str(plain_sample),
                                     "--range", f"0:{n}")))
    for config, rep in _run_tasks(first, jobs):
        if rep is None:
            sys.exit(f"seeding {config} failed")
        out[config]["plain"] = pl = rep["plain"]
        if pl["datasets"]:
            log(f"[{config}] ordinary package_create, one at a time: {pl['datasets']} datasets in "
                f"{pl['seconds']:.1f} s ({pl['datasets'] / max(pl['seconds'], 1e-9):.2f}/s)")
    if check:
        for config, rep in _run_tasks([(c, _worker_cmd("bulk-check", c, "--check", str(check)))
                                       for c in to_seed], jobs):
            if rep is None:
                sys.exit(f"[{config}] the bulk writer's rows differ from package_create's "
                         f"(log: {BENCH_STATE / 'logs'}); nothing was seeded in bulk")
            out[config]["bulk_check"] = rep
            log(f"[{config}] bulk writer checked against package_create: {rep['checked']} datasets, "
                "same package_show and index documents")
    chunk = max(500, -(-n // (2 * max(jobs, 1))))
    chunks = {c: [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)] for c in to_seed}
    tasks = []
    for k in range(max((len(v) for v in chunks.values()), default=0)):
        for c in to_seed:
            if k < len(chunks[c]):
                lo, hi = chunks[c][k]
                tasks.append((c, _worker_cmd("seed", c, "--batch", str(batch),
                                             "--range", f"{lo}:{hi}")))
    tasks += [(c, _worker_cmd("reindex", c)) for c in to_reindex]
    results = _run_tasks(tasks, jobs)
    retry = [task for task, (_, rep) in zip(tasks, results) if rep is None]
    if retry:
        log(f"running {len(retry)} failed step(s) again, one at a time")
        results += _run_tasks(retry, 1)
    for config, rep in results:
        if rep is None:
            continue
        if "reindex_seconds" in rep:
            out[config] = rep
            continue
        b, r = out[config]["bulk"], rep["bulk"]
        b["datasets"] += r["datasets"]
        b["create_seconds"] = round(b["create_seconds"] + r["create_seconds"], 2)
        b["index_seconds"] = round(b["index_seconds"] + r["index_seconds"], 2)
        b["chunks"] += 1
    for config in to_seed:
        b = out[config]["bulk"]
        if b["datasets"]:
            log(f"[{config}] bulk: {b['datasets']} datasets created in {b['create_seconds']:.0f} s and "
                f"indexed in {b['index_seconds']:.0f} s of process time ({b['chunks']} chunks, "
                f"{jobs} at a time)")
        if db_count(config) != solr_count(config):
            log(f"[{config}] indexing the datasets missing from the index")
            _, rep = _run_tasks([(config, _worker_cmd("reindex", config, "--only-missing"))], 1)[0]
            out[config]["index_missing"] = rep
    return out


def prepare_data(n: int, reseed: bool, plain_sample: int, batch: int,
                 jobs: int, keep_index: bool = False, check: int = 20) -> dict[str, Any]:
    """Make both sites hold exactly datasets 0..n-1, indexed by their current
    code. Reuses what an earlier run made when it still fits. Returns what
    was done."""
    seeding: dict[str, Any] = {}
    data_fp = data_fingerprint()
    to_seed, to_reindex, stale = [], [], []
    for config in CONFIGS:
        count = db_count(config)
        try:
            state = json.loads(seed_state_path(config).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        why = None
        if reseed:
            why = "--reseed"
        elif count and state.get("data") != data_fp:
            why = "the generated data changed since it was seeded (or its record is missing)"
        elif count is not None and count > n:
            why = f"it holds {count} datasets, more than {n}"
        if why:
            log(f"[{config}] emptying the database and the search index: {why}")
            seed_state_path(config).unlink(missing_ok=True)
            if count is not None:
                ckan_cli(config, "db", "clean", "--yes")
            ckan_cli(config, "db", "init")
            run_worker("clear-index", config)
            count = 0
        else:
            ckan_cli(config, "db", "init")  # idempotent: migrations of the enabled plugins
            count = count or 0
        if count < n:
            to_seed.append(config)
            log(f"[{config}] database holds {count} datasets; creating {n - count}")
            if count and state.get("code") != code_fingerprint(config) and not keep_index:
                log(f"[{config}] its plugins or their code changed since it was indexed: "
                    "reindexing after seeding")
                stale.append(config)
        elif state.get("code") != code_fingerprint(config) and not keep_index:
            log(f"[{config}] its plugins or their code changed since it was indexed: reindexing "
                "(--keep-index to skip)")
            to_reindex.append(config)
        elif solr_count(config) != n:
            log(f"[{config}] the database holds {n} datasets but the index {solr_count(config)}: "
                "reindexing")
            to_reindex.append(config)
        else:
            log(f"[{config}] reusing its {n} datasets (database and index); --reseed to start again")
            seeding[config] = {"reused": True, "seeded": state.get("report")}
    t0 = time.perf_counter()
    if to_seed or to_reindex:
        seeding.update(run_seeding(n, to_seed, to_reindex, plain_sample, batch, jobs, check))
        for config, rep in _run_tasks([(c, _worker_cmd("reindex", c)) for c in stale], jobs):
            if rep is None:
                sys.exit(f"reindexing {config} failed")
            seeding[config]["reindex"] = rep
        seeding["wall_seconds"] = round(time.perf_counter() - t0, 2)
        log(f"data prepared in {seeding['wall_seconds']:.1f} s")
    for config in CONFIGS:
        db, idx = db_count(config), solr_count(config)
        if db != n or idx != n:
            sys.exit(f"[{config}] {db} datasets in the database, {idx} in the index; expected {n}")
        if config in to_seed or config in to_reindex:
            previous = {}
            try:
                previous = json.loads(seed_state_path(config).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass
            record = {"data": data_fp, "code": code_fingerprint(config), "n": n,
                      "indexed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      "report": seeding[config] if config in to_seed else previous.get("report")}
            seed_state_path(config).write_text(json.dumps(record, indent=2) + "\n",
                                               encoding="utf-8")
    return seeding


class Worker:
    def __init__(self, config: str) -> None:
        self.config = config
        cmd = [str(VENV / "bin" / "python"), str(Path(__file__).resolve()), "--worker", "measure",
               "--config", config]
        self.proc = subprocess.Popen(cmd, env=clean_env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)

    def wait_ready(self) -> None:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                sys.exit(f"the {self.config} worker exited before it was ready")
            if line.startswith("{") and json.loads(line).get("ready"):
                return

    def ask(self, query: dict[str, Any]) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(query) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                sys.exit(f"the {self.config} worker exited")
            if line.startswith("{"):
                return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def percentile(values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    k = (len(s) - 1) * pct / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
        "mean": round(statistics.fmean(values), 2),
        "n": len(values),
    }


def solr_up() -> bool:
    try:
        for cfg in CONFIGS.values():
            with urllib.request.urlopen(f"{solr_url(cfg['core'])}/admin/ping?wt=json", timeout=5) as r:
                if json.load(r).get("status") != "OK":
                    return False
        return True
    except (OSError, ValueError):
        return False


def tests_running() -> bool:
    """Whether a test suite runs on this machine (it competes for the CPUs and
    its service tests stop and start Solr)."""
    return subprocess.run(["pgrep", "-f", r"(-m pytest|bin/pytest)( |$)"],
                          stdout=subprocess.DEVNULL).returncode == 0


def measure(n_queries: int, warmup: int) -> dict[str, Any]:
    """Send every query to both sites, one at a time, alternating which goes
    first. When a site does not answer 200 (e.g. Solr was restarted by
    someone else), wait for Solr and ask both again: a query only counts when
    both sites answered it in the same round."""
    org_names = [o["name"] for o in organisations()]
    warm = make_queries(warmup, "lgdp-bench-warmup", org_names)
    queries = make_queries(n_queries, "lgdp-bench-queries", org_names)
    workers = {c: Worker(c) for c in CONFIGS}
    for w in workers.values():
        w.wait_ready()
    names = list(CONFIGS)
    load_before, tests_before = os.getloadavg(), tests_running()
    retried: list[str] = []

    def ask_both(idx: int, q: dict[str, Any]) -> dict[str, dict[str, Any]]:
        for attempt in range(5):
            answers = {c: workers[c].ask(q) for c in (names if idx % 2 == 0 else names[::-1])}
            bad = {c: a for c, a in answers.items() if a["status"] != 200 or "count" not in a}
            if not bad:
                return answers
            c, a = next(iter(bad.items()))
            retried.append(f"{c}: HTTP {a['status']} {a.get('error', '')[:160]}")
            log(f"query {idx}: {retried[-1]}; waiting for Solr, then asking both sites again")
            deadline = time.monotonic() + 180
            while not solr_up() and time.monotonic() < deadline:
                time.sleep(2)
            time.sleep(2)
        sys.exit(f"query {idx} failed 5 times: {retried[-1]}")

    for idx, q in enumerate(warm):
        ask_both(idx, q)
    times: dict[str, list[float]] = {c: [] for c in names}
    by_kind: dict[str, dict[str, list[float]]] = {c: {} for c in names}
    mismatches = []
    for idx, q in enumerate(queries):
        answers = ask_both(idx, q)
        for c, a in answers.items():
            times[c].append(a["ms"])
            by_kind[c].setdefault(q["kind"], []).append(a["ms"])
        ours, stock = answers["ours"], answers["stock"]
        if ours["count"] != stock["count"] or ours["facets"] != stock["facets"]:
            mismatches.append({"query": q, "ours": ours["count"], "stock": stock["count"],
                               "facets_differ": ours["facets"] != stock["facets"]})
    # What each identity sees: the member must see more than the public.
    visible: dict[str, dict[str, int]] = {c: {} for c in names}
    for who, member in (("anonymous", False), ("member", True)):
        answers = ask_both(0, {"member": member, "params": [("rows", "0"),
                                                             ("include_private", "true")]})
        for c in names:
            visible[c][who] = answers[c]["count"]
    for w in workers.values():
        w.close()
    return {
        "summary": {c: summary(times[c]) for c in names},
        "by_kind": {c: {k: summary(v) for k, v in sorted(by_kind[c].items())} for c in names},
        "mismatches": mismatches,
        "visible": visible,
        "retried": retried,
        "loadavg": {"before": [round(x, 2) for x in load_before],
                    "after": [round(x, 2) for x in os.getloadavg()]},
        "tests_running": {"before": tests_before, "after": tests_running()},
    }


def report(n: int, args: argparse.Namespace, seeding: dict[str, Any],
           result: dict[str, Any]) -> dict[str, Any]:
    s = result["summary"]
    ratio = {k: round(s["ours"][k] / s["stock"][k], 2) for k in ("p50", "p95", "p99", "mean")}
    p95_ok = s["ours"]["p95"] <= GOAL_P95_MS
    ratio_ok = ratio["p95"] <= GOAL_RATIO
    plugins = our_plugins()
    code = git_state()
    lines = [
        "",
        f"package_search latency, N={n:,} datasets per site, {args.queries} queries per site "
        f"(after {args.warmup} warm-up), interleaved",
        f"  ours:  {plugins}",
        f"  stock: {CONFIGS['stock']['plugins']}",
        f"  code:  commit {code['commit']}"
        + (f" with {code['changed_files']} changed files under ckanext/, config/"
           if code["changed_files"] else ""),
        "",
        f"  {'site':<16}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean ms':>9}",
    ]
    for c in ("ours", "stock"):
        lines.append(f"  {c:<16}{s[c]['p50']:>9.1f}{s[c]['p95']:>9.1f}{s[c]['p99']:>9.1f}"
                     f"{s[c]['mean']:>9.1f}")
    lines.append(f"  {'ratio ours/stock':<16}{ratio['p50']:>9.2f}{ratio['p95']:>9.2f}"
                 f"{ratio['p99']:>9.2f}{ratio['mean']:>9.2f}")
    lines += ["", f"  {'by kind (p50/p95 ms)':<22}{'n':>5}{'ours':>16}{'stock':>16}"]
    for kind in result["by_kind"]["ours"]:
        o, st = result["by_kind"]["ours"][kind], result["by_kind"]["stock"][kind]
        lines.append(f"  {kind:<22}{o['n']:>5}{o['p50']:>8.1f}/{o['p95']:<7.1f}"
                     f"{st['p50']:>8.1f}/{st['p95']:<7.1f}")
    mm = result["mismatches"]
    lines += [
        "",
        f"  same answers: {args.queries - len(mm)}/{args.queries} queries gave the same count and "
        "facets on both sites",
    ]
    for m in mm[:5]:
        qd = dict(m["query"]["params"])
        lines.append(f"    differs: q={qd.get('q', '')!r} fq={qd.get('fq', '')!r} "
                     f"ours={m['ours']} stock={m['stock']}"
                     + (" (facets differ)" if m["facets_differ"] else ""))
    vis = result["visible"]
    lines.append(f"  visible datasets (of {n:,}): anonymous {vis['ours']['anonymous']:,} / "
                 f"{vis['stock']['anonymous']:,}, member {vis['ours']['member']:,} / "
                 f"{vis['stock']['member']:,} (ours / stock)")
    la, tr = result["loadavg"], result["tests_running"]
    lines.append(f"  load average (1 min) before/after measuring: {la['before'][0]:.2f} / "
                 f"{la['after'][0]:.2f} on {os.cpu_count()} CPUs"
                 + ("; a test suite was running" if tr["before"] or tr["after"] else ""))
    if result["retried"]:
        lines.append(f"  asked again after a failed answer: {len(result['retried'])} times "
                     f"(first: {result['retried'][0]})")
    lines += [
        "",
        f"  goal (at N={GOAL_AT_N:,}): p95 <= {GOAL_P95_MS:.0f} ms and <= {GOAL_RATIO}x stock; "
        f"at N={n:,}: p95 {s['ours']['p95']:.1f} ms {'met' if p95_ok else 'NOT met'}, "
        f"ratio {ratio['p95']:.2f} {'met' if ratio_ok else 'NOT met'}",
    ]
    for c in ("ours", "stock"):
        sd = seeding.get(c, {})
        if sd.get("reused"):
            lines.append(f"  seeding {c}: reused the datasets of an earlier run"
                         + (f" (then: {json.dumps(sd['seeded'])})" if sd.get("seeded") else ""))
        elif sd:
            lines.append(f"  seeding {c}: {json.dumps(sd)}")
    if "wall_seconds" in seeding:
        lines.append(f"  seeding wall time: {seeding['wall_seconds']:.1f} s")
    print("\n".join(lines), flush=True)
    record = {
        "benchmark": "package_search_latency",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n": n,
        "queries": args.queries,
        "warmup": args.warmup,
        "ours_plugins": plugins,
        "stock_plugins": CONFIGS["stock"]["plugins"],
        "ours": s["ours"],
        "stock": s["stock"],
        "ratio": ratio,
        "goal": {"p95_ms": GOAL_P95_MS, "ratio": GOAL_RATIO, "at_n": GOAL_AT_N,
                 "p95_met": p95_ok, "ratio_met": ratio_ok},
        "same_answers": args.queries - len(mm),
        "visible": result["visible"],
        "loadavg": result["loadavg"],
        "tests_running": result["tests_running"],
        "retried": len(result["retried"]),
        "code": code,
        "seeding": seeding,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    print("BENCH_JSON " + json.dumps(record, separators=(",", ":")), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"search_latency-n{n}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({**record, "by_kind": result["by_kind"],
                                "mismatches": mm}, indent=2) + "\n", encoding="utf-8")
    print(f"  results: {path.relative_to(ROOT)}", flush=True)
    return record


def git_state() -> dict[str, Any]:
    """The commit measured and whether the working tree differed from it."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    changed = [ln for ln in git("status", "--porcelain", "--", "ckanext", "config").splitlines() if ln]
    return {"commit": git("rev-parse", "--short", "HEAD"), "changed_files": len(changed)}


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="datasets per site (default 10000)")
    ap.add_argument("--queries", type=int, default=400, help="measured queries per site (400)")
    ap.add_argument("--warmup", type=int, default=60, help="warm-up queries per site (60)")
    ap.add_argument("--reseed", action="store_true",
                    help="empty both sites and create their datasets again")
    ap.add_argument("--plain-sample", type=int, default=200,
                    help="datasets created one by one the ordinary way to time that path (200)")
    ap.add_argument("--batch", type=int, default=200, help="datasets per database commit (200)")
    ap.add_argument("--keep-index", action="store_true",
                    help="reuse an index even if our plugins' code changed since it was built")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                    help="processes seeding at a time (the number of CPUs)")
    ap.add_argument("--check", type=int, default=20,
                    help="datasets per site created both ways before bulk seeding and compared (20)")
    ap.add_argument("--seed-only", action="store_true", help="prepare the data, measure nothing")
    ap.add_argument("--range", default="0:0", help=argparse.SUPPRESS)
    ap.add_argument("--first", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--only-missing", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--write-configs", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--config", choices=list(CONFIGS), help=argparse.SUPPRESS)
    args = ap.parse_args(list(argv) if argv is not None else None)

    if args.worker:
        if args.worker == "seed":
            lo, hi = (int(x) for x in args.range.split(":"))
            worker_seed(args.config, args.first, args.plain_sample, args.batch, lo, hi)
        elif args.worker == "bulk-check":
            worker_bulk_check(args.config, args.check)
        elif args.worker == "reindex":
            worker_reindex(args.config, args.only_missing)
        elif args.worker == "clear-index":
            worker_clear_index(args.config)
        elif args.worker == "measure":
            worker_measure(args.config)
        else:
            sys.exit(f"unknown worker {args.worker}")
        return
    paths = write_configs()
    if args.write_configs:
        for name, path in paths.items():
            print(f"{name} {path}")
        return
    if args.n < 1 or args.queries < 1:
        sys.exit("--n and --queries must be positive")
    seeding = prepare_data(args.n, args.reseed, args.plain_sample, args.batch, args.jobs,
                           args.keep_index, args.check)
    if args.seed_only:
        print(json.dumps(seeding))
        return
    result = measure(args.queries, args.warmup)
    report(args.n, args, seeding, result)


if __name__ == "__main__":
    main()
