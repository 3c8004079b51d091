"""The figures of the dashboards, computed from the consolidated tables.

An *indicator* is a numeric field of a return's data standard, read from
the return's consolidated table (every standard version's table holding the
field). Per council and period the rows of a submission are summed for
countable fields (counts, amounts) and averaged otherwise (rates,
percentages). For countable fields the figure compared is the rate per
1,000 population; for the others the value itself.

- Scotland: countable fields, the sum over councils (rate: that sum per
  1,000 of the summed population of the councils reporting); other fields,
  the mean of the councils' values.
- Family group (LGBF): the mean of the compared figure over the council's
  family members reporting that period. Returns on people services use the
  "people" families (by deprivation), the others the "other" families (by
  sparsity).

Who may read an indicator is the access policy's decision on the table
(`access.can_read`): a published table for everyone, an unpublished one for
its agencies and the coordinating body.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import statistics
from typing import Any, Iterable

import sqlalchemy as sa

from ckan import model
from ckanext.datastore.backend.postgres import get_read_engine, identifier

from ckanext.lgdp import access
from ckanext.lgdp.model import QAFlag, StandardVersion
from ckanext.lgdp.register import standards
from ckanext.lgdp.repository import TABLE_TYPE, consolidate, reference

log = logging.getLogger(__name__)

NUMERIC = ("integer", "number")
# Return topics whose LGBF comparisons use the "people" family groups.
PEOPLE_TOPICS = frozenset({"education", "children", "social-care", "social-work", "housing", "health",
                           "communities", "justice"})


@dataclasses.dataclass(frozen=True)
class Indicator:
    return_id: str
    return_name: str
    return_title: str
    table_name: str
    published: bool
    field: str
    title: str
    description: str
    countable: bool
    family_type: str
    # DataStore resources (one per standard version) holding the field
    resources: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.return_name}:{self.field}"

    @property
    def measure(self) -> str:
        """What is compared across councils."""
        return "rate" if self.countable else "value"

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(id=self.id, measure=self.measure, resources=list(self.resources))
        return out


class Reader:
    """A user's read decisions, with their permission labels worked out once."""

    def __init__(self, who: access.Actor) -> None:
        self.who = who
        self.labels = frozenset(access.principals(who))
        self._scope: access.FlagScope | None = None

    def reads(self, pkg: model.Package) -> bool:
        obj = access.describe(pkg)
        if obj is None:
            return False
        return access.can_read(self.who, obj, self.labels)

    @property
    def flag_scope(self) -> access.FlagScope:
        if self._scope is None:
            self._scope = access.flag_scope(self.who)
        return self._scope


def _schemas(return_pkg: model.Package) -> dict[int, dict[str, Any]]:
    rows = model.Session.query(StandardVersion).filter(StandardVersion.return_id == return_pkg.id).all()
    found = {row.version: row.schema for row in rows}
    if not found:
        schema = standards.load(return_pkg.extras.get("data_standard"))
        if schema:
            found[1] = schema
    return found


def _family_type(return_pkg: model.Package) -> str:
    topic = (return_pkg.extras.get("topic") or "").lower()
    return "people" if topic in PEOPLE_TOPICS else "other"


# table id -> ((table modified, return modified), indicators): worked out again
# only when the table (its resources, publication) or its return (its
# standard) has changed since.
_CACHE: dict[str, tuple[tuple[Any, ...], list[Indicator]]] = {}


def table_indicators(table: model.Package) -> list[Indicator]:
    """The indicators of one consolidated table, newest standard first."""
    return_pkg = model.Package.get(table.extras.get("data_return") or "")
    if return_pkg is None or return_pkg.state != "active":
        return []
    stamp = (table.metadata_modified, return_pkg.metadata_modified, return_pkg.name)
    cached = _CACHE.get(table.id)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    found = _work_out(table, return_pkg)
    _CACHE[table.id] = (stamp, found)
    return found


def _work_out(table: model.Package, return_pkg: model.Package) -> list[Indicator]:
    # the table of each standard version as consolidation decides it (the
    # oldest resource with a DataStore table), from the database
    resources = consolidate.version_resources(table.id)
    if not resources:
        return []
    schemas = _schemas(return_pkg)
    published = str(table.extras.get("published", "")).lower() in ("true", "yes", "1")
    seen: dict[str, Indicator] = {}
    for version in sorted(resources, reverse=True):
        schema = schemas.get(version) or schemas.get(max(schemas)) if schemas else None
        if not schema:
            continue
        keys = set(schema.get("primaryKey") or [])
        if isinstance(schema.get("primaryKey"), str):
            keys = {schema["primaryKey"]}
        for f in schema.get("fields") or []:
            if f.get("type") not in NUMERIC or f["name"] in keys:
                continue
            if f["name"] in seen:
                old = seen[f["name"]]
                seen[f["name"]] = dataclasses.replace(old, resources=old.resources + (resources[version],))
                continue
            seen[f["name"]] = Indicator(
                return_id=return_pkg.id, return_name=return_pkg.name, return_title=return_pkg.title or return_pkg.name,
                table_name=table.name, published=published, field=f["name"], title=f.get("title") or f["name"],
                description=f.get("description") or "", countable=standards.is_countable(f),
                family_type=_family_type(return_pkg), resources=(resources[version],))
    return list(seen.values())


def indicators(reader: Reader) -> list[Indicator]:
    """Every indicator the reader may see, by return title then field order."""
    tables = (model.Session.query(model.Package)
              .filter(model.Package.type == TABLE_TYPE, model.Package.state == "active")
              .all())
    out: list[Indicator] = []
    for table in sorted(tables, key=lambda t: (t.title or t.name).lower()):
        if reader.reads(table):
            out.extend(table_indicators(table))
    return out


def find(reader: Reader, indicator_id: str) -> Indicator | None:
    """An indicator by id (``<return name>:<field>``), if the reader may see it."""
    return_name, _, field = (indicator_id or "").partition(":")
    table = (model.Session.query(model.Package)
             .filter(model.Package.type == TABLE_TYPE, model.Package.state == "active")
             .join(model.PackageExtra, model.PackageExtra.package_id == model.Package.id)
             .filter(model.PackageExtra.key == "data_return")
             .filter(model.PackageExtra.value == sa.select(model.Package.id)
                     .where(model.Package.name == return_name).scalar_subquery())
             .first())
    if table is None or not reader.reads(table):
        return None
    return next((i for i in table_indicators(table) if i.field == field), None)


# ---------------------------------------------------------------- reading

def observations(ind: Indicator) -> list[dict[str, Any]]:
    """One row per council and period: value (sum or mean of the submission's
    rows), population, rate per 1,000 (a countable's, as stored), period start."""
    agg = "sum" if ind.countable else "avg"
    # a countable's rate per 1,000 is stored beside it (consolidation): the
    # rows of a council-period share one population, so their rates add up
    rate = f"sum({identifier(reference.rate_column(ind.field))})" if ind.countable else "NULL"
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for resource_id in ind.resources:
        sql = (f"SELECT council_gss, max(council_name), period, min(period_start), "
               f"{agg}({identifier(ind.field)}), max(population), count({identifier(ind.field)}), {rate} "
               f"FROM {identifier(resource_id)} GROUP BY council_gss, period")
        try:
            with get_read_engine().connect() as conn:
                result = conn.execute(sa.text(sql)).fetchall()
        except sa.exc.ProgrammingError:  # a table without the column (or gone): nothing from it
            log.warning("%s: no column %s in %s", ind.id, ind.field, resource_id)
            continue
        for gss, name, period, start, value, population, n, stored_rate in result:
            key = (gss, period)
            if key in out or n == 0:  # the newest standard's table wins
                continue
            out[key] = {"gss": gss, "name": name, "period": period, "period_start": start,
                        "value": float(value) if value is not None else None,
                        "population": int(population) if population is not None else None,
                        "rate": float(stored_rate) if stored_rate is not None else None}
    return sorted(out.values(), key=lambda r: (r["period_start"], r["period"], r["gss"]))


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


@functools.lru_cache(maxsize=1)
def families() -> dict[str, dict[str, str]]:
    """gss -> {family type: family number}."""
    out: dict[str, dict[str, str]] = {}
    for row in reference.family_groups():
        out.setdefault(row["gss_code"], {})[row["family_type"]] = row["family"]
    return out


def family_members(gss: str, family_type: str) -> list[str]:
    mine = families().get(gss, {}).get(family_type)
    if mine is None:
        return []
    return sorted(code for code, fams in families().items() if fams.get(family_type) == mine)


def _flags(reader: Reader, ind: Indicator) -> list[dict[str, Any]]:
    rows = (model.Session.query(QAFlag)
            .filter(QAFlag.return_id == ind.return_id)
            .filter(QAFlag.status.in_(("open", "explained")))
            .filter(sa.or_(QAFlag.field == ind.field, QAFlag.field.is_(None)))
            .all())
    scope = reader.flag_scope
    return [f.dictize() for f in rows if scope.covers(f.return_id, f.council_gss)]


def figures(reader: Reader, ind: Indicator, council: str | None = None, period: str | None = None,
            period_from: str | None = None, period_to: str | None = None) -> dict[str, Any]:
    """Everything a dashboard panel shows, for one indicator: the council's
    figure against Scotland and its family group, the trend and the ranking
    of all councils for the period. ``council`` is a GSS code (None: sector
    view); ``period`` defaults to the latest with data."""
    obs = observations(ind)
    names = reference.council_names()
    all_periods: list[str] = []
    for row in obs:
        if row["period"] not in all_periods:
            all_periods.append(row["period"])
    periods = [p for p in all_periods
               if (not period_from or p >= period_from) and (not period_to or p <= period_to)]
    if period not in all_periods:
        period = periods[-1] if periods else (all_periods[-1] if all_periods else None)
    by_key = {(r["gss"], r["period"]): r for r in obs}
    by_period: dict[str, list[dict[str, Any]]] = {}
    for r in obs:
        by_period.setdefault(r["period"], []).append(r)

    def measure(row: dict[str, Any] | None) -> float | None:
        if row is None:
            return None
        return row["rate"] if ind.countable else row["value"]

    @functools.lru_cache(maxsize=None)
    def scotland(p: str) -> dict[str, Any]:
        rows = [r for r in by_period.get(p, []) if r["value"] is not None]
        if not rows:
            return {"value": None, "rate": None, "measure": None, "councils": 0}
        if ind.countable:
            total = sum(r["value"] for r in rows)
            pop = sum(r["population"] for r in rows if r["population"])
            with_pop = sum(r["value"] for r in rows if r["population"])
            rate = reference.rate_per_1000(with_pop, pop)  # Scotland's: all councils' figures over all their people
            return {"value": total, "rate": rate, "measure": rate, "councils": len(rows)}
        value = statistics.fmean(r["value"] for r in rows)
        return {"value": value, "rate": None, "measure": value, "councils": len(rows)}

    members = family_members(council, ind.family_type) if council else []

    def family(p: str) -> dict[str, Any]:
        rows = [by_key.get((g, p)) for g in members]
        return {"value": _mean(r["value"] if r else None for r in rows),
                "measure": _mean(measure(r) for r in rows),
                "councils": sum(1 for r in rows if r and r["value"] is not None)}

    flags = _flags(reader, ind)
    flagged = {(f["council_gss"], f["period"]) for f in flags}
    ranking = []
    if period:
        present = [r for r in by_period.get(period, []) if measure(r) is not None]
        present.sort(key=lambda r: (-measure(r), r["name"] or r["gss"]))
        for position, r in enumerate(present, start=1):
            ranking.append({"rank": position, "gss": r["gss"], "name": names.get(r["gss"], r["name"]),
                            "value": r["value"], "rate": r["rate"] if ind.countable else None,
                            "measure": measure(r), "population": r["population"],
                            "highlight": r["gss"] == council, "flagged": (r["gss"], period) in flagged,
                            "in_family": r["gss"] in members})
        reported = {r["gss"] for r in present}
        for gss in sorted(set(names) - reported, key=lambda g: names[g]):
            ranking.append({"rank": None, "gss": gss, "name": names[gss], "value": None, "rate": None,
                            "measure": None, "population": None, "highlight": gss == council,
                            "flagged": (gss, period) in flagged, "in_family": gss in members})
    trend = []
    for p in periods:
        mine = by_key.get((council, p)) if council else None
        trend.append({"period": p,
                      "council": measure(mine), "council_value": mine["value"] if mine else None,
                      "scotland": scotland(p)["measure"],
                      "family": family(p)["measure"] if council else None,
                      "flagged": (council, p) in flagged if council else False})
    headline = None
    if period:
        mine = by_key.get((council, period)) if council else None
        position = next((r for r in ranking if r["gss"] == council), None)
        headline = {"period": period,
                    "value": mine["value"] if mine else None,
                    "rate": mine["rate"] if mine and ind.countable else None,
                    "measure": measure(mine),
                    "scotland": scotland(period),
                    "family": family(period) if council else None,
                    "rank": position["rank"] if position else None,
                    "of": sum(1 for r in ranking if r["rank"] is not None),
                    "flagged": (council, period) in flagged if council else False}
    return {
        "indicator": ind.as_dict(),
        "council": ({"gss": council, "name": names.get(council, council), "family_type": ind.family_type,
                     "family": families().get(council, {}).get(ind.family_type),
                     "family_members": [{"gss": g, "name": names.get(g, g)} for g in members]}
                    if council else None),
        "period": period,
        "periods": periods,
        "all_periods": all_periods,
        "headline": headline,
        "trend": trend,
        "ranking": ranking,
        "flags": [f for f in flags if not council or f["council_gss"] in (council, None) or f["period"] == period],
    }
