"""Cross-council quality-assurance checks on a return's consolidated table.

Pure functions over pandas DataFrames: no database. The caller passes the
consolidated table of one return series, the standard's Table Schema, the
councils and (for a table without populations) mid-year estimates, and
gets back a list of :class:`Flag` objects to store (``Flag.key`` is stable,
so storing them can be an idempotent upsert).

Input table: one row per council x period (several rows per council-period
are allowed) with the columns ``council_gss``, ``council_name``, ``period``
(the submission's period label: "2023-24", "2024-Q3", "2024-07"),
``period_start`` (ISO date) and the fields of the standard.

Checks (``Flag.check``):

``outlier``  (warning; error when |z| > 2 x ``QAConfig.outlier_z``)
    Per period and field, a robust z-score ``(x - median) / scale`` across
    the councils reporting that period, with ``scale = 1.4826 x MAD``.
    Needs at least ``QAConfig.min_councils`` councils with a value.
    *MAD = 0* (more than half the councils report exactly the median value,
    typically zeros or a common policy value): the scale falls back to
    ``1.2533 x`` the mean absolute deviation from the median (the fallback of
    Iglewicz and Hoaglin's modified z-score; 1.2533 makes it a normal sigma,
    so the threshold keeps its meaning), ``detail["scale_method"] ==
    "meanad"``. An IQR rule was rejected: with MAD = 0 the quartiles sit
    inside the cluster of equal values, so the IQR is tiny or 0 and every
    council off the cluster is flagged (11 councils at 50%, others at
    45-55%: 45 and 55 would be "outliers"); the mean deviation uses the
    whole spread and flags only the council that is really far out. When
    every council reports the same value (a field constant across councils)
    the scale is 0 and the field is not compared in that period. Note that
    when all but one council share a value, that one is always flagged.

``jump``  (warning)
    Per council and field, the period against the council's previous period
    present in the table (ordered by ``period_start``): flagged when the
    relative change exceeds ``QAConfig.jump_ratio`` (0.5 = +-50%) *and* the
    absolute change exceeds a floor: ``QAConfig.jump_floor`` (10) in raw
    counts/amounts for size-dependent fields (so 2 -> 4 households is not a
    jump), ``QAConfig.jump_floor_other`` (1, e.g. one percentage point) for
    fields compared as they are. Size-dependent fields are compared as rates
    per 1,000 population when both periods have a population (population
    growth is then no jump), otherwise as raw values. A change from 0 is an
    infinite relative change (flagged if above the floor).

``missing``  (info)
    A council in ``councils`` with no row for a period present in the table
    (or for ``period`` when given, even if nobody has reported it yet).

``totals``  (error)
    A row (before aggregation) where a declared total (``lgdp:totals``)
    differs from the sum of its parts by more than ``max(1, 0.001 x |total|)``.
    Rows with a missing total or part are not checked. Several failing rows
    of one council-period and declaration give one flag (the first row's
    numbers, ``detail["rows_failing"]`` counts them). The key's last part is
    ``total=part+part`` because a total may have several declarations
    (joint-staffing-watch: headcount by sex and by contract).

How fields are compared (:func:`field_kinds`). Identifier and string fields,
primary-key fields and non-numeric fields are never compared.

* ``lgdp:countable: true`` -> "countable": compared across councils as a rate
  per 1,000 population.
* Other numeric fields whose name or title marks them as a ratio already
  (``pct``, ``percent``, ``rate``, ``average``, ``mean``, ``median``, ``per``,
  ``share``, ``ratio``, ``index`` as a word of the name, or "%" in the title),
  or explicitly marked ``"lgdp:countable": false`` -> "ratio": compared as
  they are.
* Other numeric fields ("amount": money such as ``net_collectable_gbp``,
  counts the standard does not mark countable such as ``uao_breaches``) are
  as size-dependent as countables: comparing Glasgow's raw pounds with
  Orkney's would flag the big councils every period. By default
  (``QAConfig.unmarked_numeric = "per_1000"``) they are compared per 1,000
  population like countables; "as_is" compares them raw, "skip" leaves them
  out of the outlier and jump checks.

Populations and rates: a consolidated table stores each row's population
and population_year and the rate per 1,000 of each countable field
(``<field>_per_1000``); the checks read those. For a table without them,
the population of a period is the estimate ``reference.nearest_estimate``
chooses for the calendar year of ``period_start`` (that year, else the
nearest earlier, else the nearest later: ``detail["population_year"]``), and
every rate is ``reference.rate_per_1000``. With no population for a council, the size-dependent fields of
that council are left out of the outlier check entirely (raw counts across
councils of different sizes are meaningless), and its jumps use raw values.

Several rows per council-period: countable and amount fields are summed per
council-period (all-missing stays missing); a ratio field keeps its value
when the rows agree and is left out otherwise (a percentage of a whole
cannot be rebuilt from the percentages of its parts without weights).
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field as dc_field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ckanext.lgdp.register import standards
from ckanext.lgdp.repository import reference

__all__ = [
    "CHECKS",
    "Flag",
    "QAConfig",
    "field_kinds",
    "rates_per_1000",
    "run_checks",
]

CHECKS = ("outlier", "jump", "missing", "totals")
MAD_SCALE = 1.4826
MEANAD_SCALE = 1.2533  # sqrt(pi/2): mean absolute deviation -> sigma

_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
_CHECK_RANK = {c: i for i, c in enumerate(("totals", "outlier", "jump", "missing"))}
_RATIO_WORDS = frozenset(
    {"pct", "percent", "percentage", "rate", "ratio", "average", "avg", "mean",
     "median", "per", "share", "proportion", "index"}
)
_UNIT_SUFFIX = re.compile(r"\s*\((%|gbp|£|tonnes|km)\)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class QAConfig:
    outlier_z: float = 3.5
    min_councils: int = 8
    jump_ratio: float = 0.5
    # floor on the absolute change of raw counts/amounts (size-dependent fields)
    jump_floor: float = 10.0
    # floor on the absolute change of fields compared as they are (e.g. 1 point)
    jump_floor_other: float = 1.0
    # numeric fields neither countable nor ratio-like: "per_1000" | "as_is" | "skip"
    unmarked_numeric: str = "per_1000"


@dataclass
class Flag:
    check: str
    severity: str
    council_gss: str
    council_name: str
    period: str
    field: str | None
    value: float | None
    expected: float | None
    reason: str
    detail: dict = dc_field(default_factory=dict)
    key: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------
# fields


@dataclass(frozen=True)
class _Field:
    name: str
    label: str
    kind: str  # "countable" | "amount" | "ratio"
    basis: str | None  # "per_1000" | "as_is" | None (not compared)
    unit: str | None  # "%", "£", "tonnes", "km" or None


def _unit(name: str, title: str) -> str | None:
    low = name.lower()
    if low.endswith("_pct") or "(%)" in title or "%" in title:
        return "%"
    if low.endswith("_gbp") or "(gbp)" in title.lower():
        return "£"
    if low.endswith("_tonnes"):
        return "tonnes"
    if low.endswith("_km"):
        return "km"
    return None


def _fields(schema: dict, config: QAConfig) -> list[_Field]:
    pk = schema.get("primaryKey") or []
    if isinstance(pk, str):
        pk = [pk]
    out = []
    for f in schema.get("fields") or []:
        name = str(f.get("name") or "")
        if not name or name in pk or f.get("type") not in ("integer", "number"):
            continue
        title = f.get("title") or re.sub(r"_(pct|gbp)$", "", name).replace("_", " ").capitalize()
        label = _UNIT_SUFFIX.sub("", title).strip() or title
        words = set(re.split(r"[^a-z0-9]+", name.lower()))
        basis: str | None
        if standards.is_countable(f):
            kind, basis = "countable", "per_1000"
        elif f.get("lgdp:countable") is False or words & _RATIO_WORDS or "%" in title:
            kind, basis = "ratio", "as_is"
        else:
            kind = "amount"
            basis = {"per_1000": "per_1000", "as_is": "as_is"}.get(config.unmarked_numeric)
        out.append(_Field(name, label, kind, basis, _unit(name, title)))
    return out


def field_kinds(schema: dict, config: QAConfig = QAConfig()) -> dict[str, dict[str, Any]]:
    """{field: {"kind", "basis", "unit"}} for the numeric fields the checks
    consider: kind "countable" | "amount" | "ratio"; basis "per_1000",
    "as_is" or None (not compared across councils)."""
    return {f.name: {"kind": f.kind, "basis": f.basis, "unit": f.unit} for f in _fields(schema, config)}


def aggregation(schema: dict) -> tuple[list[str], list[str]] | None:
    """How the checks fold several rows of a council-period into one
    (``_prepare``): (fields summed, ratio fields kept where the rows agree).
    A caller may give the checks the table already folded so, one row per
    council-period, with the same flags. None when the standard declares
    totals: that check reads every row."""
    if schema.get("lgdp:totals"):
        return None
    return _folding(_fields(schema, QAConfig()))


def _folding(fields: list[_Field]) -> tuple[list[str], list[str]]:
    """(fields summed, ratio fields kept where a council-period's rows agree)."""
    return [f.name for f in fields if f.kind != "ratio"], [f.name for f in fields if f.kind == "ratio"]


# --------------------------------------------------------------------------
# populations


def _period_year(period_start: pd.Series) -> pd.Series:
    when = pd.to_datetime(period_start, errors="coerce", format="ISO8601")
    return when.dt.year.astype("Int64")


def _populations(gss: pd.Series, year: pd.Series, population: pd.DataFrame | None) -> pd.DataFrame:
    """For each (gss, year) given, positionally: population and
    population_year, as ``reference.nearest_estimate`` chooses them from the
    ``population`` frame (gss_code, year, population); missing when the
    council has no estimate."""
    estimates: dict[str, dict[int, int]] = {}
    if population is not None and len(population):
        frame = pd.DataFrame({
            "gss": population["gss_code"].astype(str).str.strip(),
            "year": pd.to_numeric(population["year"], errors="coerce"),
            "population": pd.to_numeric(population["population"], errors="coerce"),
        })
        frame = frame[frame["year"].notna() & (frame["population"] > 0)]
        for code, y, people in frame.itertuples(index=False):
            estimates.setdefault(code, {})[int(y)] = people  # a later row for the same year wins
    chosen: dict[tuple[str, int], tuple[float, int] | None] = {}
    people_col, year_col = [], []
    for code, y in zip(gss.to_numpy(dtype=object), year.to_numpy(dtype=object)):
        found = None
        if code in estimates and y is not None and y is not pd.NA and not (isinstance(y, float) and math.isnan(y)):
            key = (code, int(y))
            if key not in chosen:
                chosen[key] = reference.nearest_estimate(estimates[code], int(y))
            found = chosen[key]
        people_col.append(float(found[0]) if found else np.nan)
        year_col.append(found[1] if found else pd.NA)
    return pd.DataFrame({"population": np.array(people_col, dtype=float),
                         "population_year": pd.array(year_col, dtype="Int64")})


def rates_per_1000(
    table: pd.DataFrame,
    schema: dict,
    population: pd.DataFrame | None,
    *,
    fields: Iterable[str] | None = None,
) -> pd.DataFrame:
    """A copy of ``table`` with ``<field>_per_1000`` for the countable fields
    of ``schema`` (or the ``fields`` given) and ``population_year`` (the
    mid-year estimate used: see the module docstring). Row-wise, no
    aggregation; missing where the council has no population (or
    ``population`` is None)."""
    out = table.copy()
    if fields is None:
        fields = standards.countable_fields(schema)
    fields = [f for f in fields if f in out.columns]
    starts = out["period_start"] if "period_start" in out.columns else pd.Series([None] * len(out))
    pops = _populations(out["council_gss"], _period_year(starts), population)
    people = pops["population"].to_numpy(dtype=float)
    for name in fields:
        values = pd.to_numeric(out[name], errors="coerce").to_numpy(dtype=float)
        out[reference.rate_column(name)] = reference.rate_per_1000(values, people)
    out["population_year"] = pd.array(pops["population_year"], dtype="Int64")
    return out


# --------------------------------------------------------------------------
# formatting


def _py(x: Any) -> Any:
    """JSON-friendly scalar."""
    if x is None or x is pd.NA:
        return None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return None if math.isnan(x) else x
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _fmt(x: float | None, unit: str | None = None, *, rate: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "no value"
    x = float(x)
    if rate:
        decimals = 1 if abs(x) >= 100 else 2 if abs(x) >= 1 else 3
        return f"{x:,.{decimals}f}"
    if unit == "%":
        return f"{x:,.1f}%"
    if unit == "£":
        decimals = 0 if abs(x) >= 1000 or x.is_integer() else 2
        text = f"£{abs(x):,.{decimals}f}"
        return f"-{text}" if x < 0 else text
    decimals = 0 if x.is_integer() else 1 if abs(x) >= 100 else 2
    text = f"{x:,.{decimals}f}"
    return f"{text} {unit}" if unit else text


def _change(rel: float, increase: bool) -> str:
    if math.isinf(rel):
        return "previously zero"
    return f"{'+' if increase else '-'}{rel * 100:.0f}%"


def _key(check: str, gss: str, period: str, field: str | None) -> str:
    return f"{check}|{gss}|{period}|{field or ''}"


# --------------------------------------------------------------------------
# preparation


def _prepare(table: pd.DataFrame, fields: list[_Field], population: pd.DataFrame | None) -> pd.DataFrame:
    """One row per council-period with numeric fields, ``_start`` (datetime),
    ``_population``/``_population_year`` and ``<field>__cmp`` (the value the
    outlier check compares: per 1,000 or as is)."""
    cols = {
        "council_gss": table["council_gss"].astype(str).to_numpy(dtype=object),
        "council_name": (table["council_name"] if "council_name" in table.columns else table["council_gss"])
        .astype(str)
        .to_numpy(dtype=object),
        "period": table["period"].astype(str).to_numpy(dtype=object),
        "_start": pd.to_datetime(
            table["period_start"] if "period_start" in table.columns else pd.Series([None] * len(table)),
            errors="coerce",
            format="ISO8601",
        ).to_numpy(),
    }
    present = [f for f in fields if f.name in table.columns]
    for f in present:
        cols[f.name] = pd.to_numeric(table[f.name], errors="coerce").to_numpy(dtype=float)
    # a consolidated table brings its stored populations and rates
    stored = "population" in table.columns
    rates: dict[str, str] = {}
    if stored:
        cols["_population"] = pd.to_numeric(table["population"], errors="coerce").to_numpy(dtype=float)
        cols["_population_year"] = pd.array(
            pd.to_numeric(table.get("population_year", pd.Series([None] * len(table))), errors="coerce"),
            dtype="Int64")
        for f in present:
            column = reference.rate_column(f.name)
            if f.kind == "countable" and column in table.columns:
                rates[f.name] = f"_rate_{f.name}"
                cols[rates[f.name]] = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
    df = pd.DataFrame(cols)

    if df.duplicated(["council_gss", "period"]).any():
        grouped = df.groupby(["council_gss", "period"], sort=False)
        parts = [grouped[["council_name"]].first(), grouped[["_start"]].min()]
        summed, ratios = _folding(present)
        if summed:
            parts.append(grouped[summed].sum(min_count=1))
        if ratios:
            first = grouped[ratios].first()
            agree = grouped[ratios].nunique() <= 1
            parts.append(first.where(agree))
        if stored:  # one population per council-period; its rows' rates add up as their figures do
            parts.append(grouped[["_population", "_population_year"]].first())
            if rates:
                parts.append(grouped[list(rates.values())].sum(min_count=1))
        df = pd.concat(parts, axis=1).reset_index()

    # internal columns start with "_" so that no field of a standard clashes
    if not stored:
        years = pd.Series(df["_start"]).dt.year.astype("Int64")
        pops = _populations(df["council_gss"], years, population)
        df["_population"] = pops["population"].to_numpy(dtype=float)
        df["_population_year"] = pd.array(pops["population_year"], dtype="Int64")
    for f in present:
        if f.basis == "per_1000":
            df[f"{f.name}__cmp"] = (df[rates[f.name]] if f.name in rates
                                    else reference.rate_per_1000(df[f.name], df["_population"]))
        elif f.basis == "as_is":
            df[f"{f.name}__cmp"] = df[f.name]
    return df.drop(columns=list(rates.values()))


# --------------------------------------------------------------------------
# checks


def _outliers(df: pd.DataFrame, fields: list[_Field], names: dict[str, str], config: QAConfig) -> list[Flag]:
    compared = [f for f in fields if f.basis and f"{f.name}__cmp" in df.columns]
    if df.empty or not compared:
        return []
    spec = {f.name: f for f in compared}
    cmp_cols = [f"{f.name}__cmp" for f in compared]
    ids = ["council_gss", "council_name", "period", "_population", "_population_year"]
    long = df[ids + cmp_cols].melt(id_vars=ids, value_vars=cmp_cols, var_name="field", value_name="value")
    long = long.rename(columns={"_population": "population", "_population_year": "population_year"})
    raw = df[[f.name for f in compared]].melt(value_name="raw")
    long["raw"] = raw["raw"].to_numpy()
    long["field"] = long["field"].str.slice(0, -len("__cmp"))
    long = long[long["value"].notna() & np.isfinite(long["value"])]
    if long.empty:
        return []
    by = [long["period"], long["field"]]
    g = long.groupby(by, sort=False)["value"]
    n = g.transform("count")
    med = g.transform("median")
    absdev = (long["value"] - med).abs()
    mad = absdev.groupby(by, sort=False).transform("median") * MAD_SCALE
    meanad = absdev.groupby(by, sort=False).transform("mean") * MEANAD_SCALE
    scale = mad.where(mad > 0, meanad)
    usable = (n >= config.min_councils) & (scale > 0)
    z = (long["value"] - med) / scale.where(usable)
    hit = usable & (z.abs() > config.outlier_z)
    if not hit.any():
        return []
    found = long.assign(n=n, median=med, scale=scale, mad=mad, z=z)[hit]
    flags = []
    for row in found.itertuples(index=False):
        f = spec[row.field]
        z_ = float(row.z)
        severity = "error" if abs(z_) > 2 * config.outlier_z else "warning"
        direction = ("far" if severity == "error" else "well") + (" above" if z_ > 0 else " below")
        per_1000 = f.basis == "per_1000"
        method = "mad" if row.mad > 0 else "meanad"
        if per_1000:
            year = int(row.population_year)
            what = (
                f"{f.label} of {_fmt(row.value, rate=True)} per 1,000 population "
                f"({_fmt(row.raw, f.unit)} for a population of {_fmt(row.population)}, mid-{year} estimate)"
            )
            median_text = f"{_fmt(row.median, rate=True)} per 1,000"
        else:
            what = f"{f.label} of {_fmt(row.value, f.unit)}"
            median_text = _fmt(row.median, f.unit)
        reason = (
            f"{what} is {direction} other councils (median {median_text}, robust z = {z_:.1f}) "
            f"in {row.period}; {int(row.n)} councils compared."
        )
        if method == "meanad":
            reason += f" More than half of them report exactly {median_text}."
        detail = {
            "basis": f.basis,
            "kind": f.kind,
            "z": round(z_, 3),
            "threshold": config.outlier_z,
            "median": _py(row.median),
            "scale": _py(row.scale),
            "scale_method": method,
            "councils_compared": int(row.n),
            "raw_value": _py(row.raw),
        }
        if per_1000:
            detail["population"] = _py(row.population)
            detail["population_year"] = int(row.population_year)
        gss = row.council_gss
        flags.append(
            Flag(
                check="outlier",
                severity=severity,
                council_gss=gss,
                council_name=names.get(gss, row.council_name),
                period=row.period,
                field=f.name,
                value=_py(row.value),
                expected=_py(row.median),
                reason=reason,
                detail=detail,
                key=_key("outlier", gss, row.period, f.name),
            )
        )
    return flags


def _jumps(
    df: pd.DataFrame, fields: list[_Field], names: dict[str, str], config: QAConfig, period: str | None
) -> list[Flag]:
    compared = [f for f in fields if f.basis and f.name in df.columns]
    if df.empty or not compared:
        return []
    df = df.sort_values(
        ["council_gss", "_start", "period"], na_position="last", kind="stable"
    ).reset_index(drop=True)
    g = df.groupby("council_gss", sort=False)
    prev_period = g["period"].shift(1)
    prev_pop_year = g["_population_year"].shift(1)
    current = df["period"] == period if period is not None else pd.Series(True, index=df.index)
    base = current & prev_period.notna()
    if not base.any():
        return []
    flags = []
    periods = df["period"].to_numpy(dtype=object)
    gss_codes = df["council_gss"].to_numpy(dtype=object)
    row_names = df["council_name"].to_numpy(dtype=object)
    prev_periods = prev_period.to_numpy(dtype=object)
    pop_years = df["_population_year"].to_numpy(dtype=object, na_value=None)
    prev_pop_years = prev_pop_year.to_numpy(dtype=object, na_value=None)
    base = base.to_numpy()
    for f in compared:
        raw = df[f.name].to_numpy(dtype=float)
        raw_prev = g[f.name].shift(1).to_numpy(dtype=float)
        if f.basis == "per_1000":
            rate = df[f"{f.name}__cmp"].to_numpy(dtype=float)
            rate_prev = g[f"{f.name}__cmp"].shift(1).to_numpy(dtype=float)
            use_rate = ~np.isnan(rate) & ~np.isnan(rate_prev)
            cur = np.where(use_rate, rate, raw)
            prev = np.where(use_rate, rate_prev, raw_prev)
            floor = config.jump_floor
        else:
            use_rate = np.zeros(len(df), dtype=bool)
            cur, prev = raw, raw_prev
            floor = config.jump_floor_other
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(cur - prev) / np.abs(prev)
            hit = base & (np.abs(raw - raw_prev) > floor) & (rel > config.jump_ratio)
        for i in np.flatnonzero(hit):
            c, p, r = float(cur[i]), float(prev[i]), float(rel[i])
            by_rate = bool(use_rate[i])
            rc, rp = float(raw[i]), float(raw_prev[i])
            verb = "rose" if c > p else "fell"
            pp, this, gss = prev_periods[i], periods[i], gss_codes[i]
            if by_rate:
                reason = (
                    f"{f.label} {verb} from {_fmt(p, rate=True)} to {_fmt(c, rate=True)} per 1,000 population "
                    f"({_change(r, c > p)}) between {pp} and {this} "
                    f"(from {_fmt(rp, f.unit)} to {_fmt(rc, f.unit)})."
                )
            else:
                reason = (
                    f"{f.label} {verb} from {_fmt(p, f.unit)} to {_fmt(c, f.unit)} "
                    f"({_change(r, c > p)}) between {pp} and {this}."
                )
            detail = {
                "basis": "per_1000" if by_rate else "raw",
                "kind": f.kind,
                "previous_period": pp,
                "previous_value": p,
                "relative_change": None if math.isinf(r) else round(r, 4),
                "absolute_change": c - p,
                "raw_value": rc,
                "raw_previous": rp,
                "threshold": config.jump_ratio,
            }
            if by_rate:
                detail["population_year"] = _py(pop_years[i])
                detail["previous_population_year"] = _py(prev_pop_years[i])
            flags.append(
                Flag(
                    check="jump",
                    severity="warning",
                    council_gss=gss,
                    council_name=names.get(gss, row_names[i]),
                    period=this,
                    field=f.name,
                    value=c,
                    expected=p,
                    reason=reason,
                    detail=detail,
                    key=_key("jump", gss, this, f.name),
                )
            )
    return flags


def _missing(df: pd.DataFrame, councils: list[dict], period: str | None) -> list[Flag]:
    if period is not None:
        periods = [period]
    else:
        order = df.sort_values(["_start", "period"], na_position="last", kind="stable")
        periods = list(dict.fromkeys(order["period"]))
    if not periods or not councils:
        return []
    roster = pd.DataFrame(
        {
            "council_gss": [c["gss_code"] for c in councils],
            "council_name": [c.get("name") or c["gss_code"] for c in councils],
        }
    ).drop_duplicates("council_gss")
    grid = roster.merge(pd.DataFrame({"period": periods}), how="cross")
    have = df[["council_gss", "period"]].drop_duplicates().assign(_have=True)
    grid = grid.merge(have, on=["council_gss", "period"], how="left")
    absent = grid[grid["_have"].isna()]
    reporting = (grid.assign(_r=grid["_have"].notna()).groupby("period")["_r"].sum()).to_dict()
    total = len(roster)
    flags = []
    for row in absent.itertuples(index=False):
        n = int(reporting.get(row.period, 0))
        flags.append(
            Flag(
                check="missing",
                severity="info",
                council_gss=row.council_gss,
                council_name=row.council_name,
                period=row.period,
                field=None,
                value=None,
                expected=None,
                reason=(
                    f"No data from {row.council_name} for {row.period}: "
                    f"{n} of the {total} councils have reported that period."
                ),
                detail={"councils_reporting": n, "councils_expected": total},
                key=_key("missing", row.council_gss, row.period, None),
            )
        )
    return flags


def _totals(
    table: pd.DataFrame, schema: dict, fields: list[_Field], names: dict[str, str], period: str | None
) -> list[Flag]:
    decls = schema.get("lgdp:totals") or []
    if not decls or table.empty:
        return []
    labels = {f.name: f for f in fields}
    periods = table["period"].astype(str)
    mask_period = periods == period if period is not None else pd.Series(True, index=table.index)
    flags = []
    for decl in decls:
        total, parts = decl.get("total"), list(decl.get("parts") or [])
        if not total or not parts or any(c not in table.columns for c in [total, *parts]):
            continue
        t = pd.to_numeric(table[total], errors="coerce")
        p = table[parts].apply(pd.to_numeric, errors="coerce")
        s = p.sum(axis=1, min_count=len(parts))
        diff = t - s
        bad = mask_period & t.notna() & s.notna() & (diff.abs() > np.maximum(1.0, 0.001 * t.abs()))
        if not bad.any():
            continue
        sub = pd.DataFrame(
            {
                "council_gss": table["council_gss"].astype(str),
                "period": periods,
                "row": np.arange(len(table)),
            }
        )[bad]
        counts = sub.groupby(["council_gss", "period"], sort=False)["row"].transform("size")
        sub = sub.assign(failing=counts).drop_duplicates(["council_gss", "period"], keep="first")
        spec = labels.get(total)
        unit = spec.unit if spec else None
        tlabel = spec.label if spec else total
        for row in sub.itertuples(index=False):
            i = row.row
            tv, sv = float(t.iat[i]), float(s.iat[i])
            part_values = {c: _py(p[c].iat[i]) for c in parts}
            listing = " + ".join(
                f"{labels[c].label if c in labels else c} {_fmt(part_values[c], unit)}" for c in parts
            )
            more = ""
            if row.failing > 1:
                more = f" ({row.failing} rows of this council and period fail the same way)"
            reason = (
                f"{tlabel} is {_fmt(tv, unit)} but its parts add up to {_fmt(sv, unit)} ({listing}), "
                f"a difference of {_fmt(tv - sv, unit)}, in {row.period}{more}."
            )
            gss = row.council_gss
            name = names.get(gss) or (
                str(table["council_name"].iat[i]) if "council_name" in table.columns else gss
            )
            flags.append(
                Flag(
                    check="totals",
                    severity="error",
                    council_gss=gss,
                    council_name=name,
                    period=row.period,
                    field=total,
                    value=tv,
                    expected=sv,
                    reason=reason,
                    detail={
                        "parts": part_values,
                        "difference": tv - sv,
                        "tolerance": max(1.0, 0.001 * abs(tv)),
                        "rows_failing": int(row.failing),
                        "row": int(i),
                    },
                    key=_key("totals", gss, row.period, f"{total}={'+'.join(parts)}"),
                )
            )
    return flags


def periods_read(keys: pd.DataFrame, period: str) -> list[str]:
    """The periods whose rows ``run_checks(..., period=period)`` reads:
    ``period`` and, for each council that reported it, the council's
    previous period present (the jump check), taken in the order the checks
    take them. ``keys``: ``council_gss``, ``period``, ``period_start`` of the
    table's rows (or of one row per council-period). The checks of the
    period over only these rows give the same flags as over the whole table."""
    df = pd.DataFrame({
        "council_gss": keys["council_gss"].astype(str).to_numpy(dtype=object),
        "period": keys["period"].astype(str).to_numpy(dtype=object),
        "_start": pd.to_datetime(keys["period_start"], errors="coerce", format="ISO8601").to_numpy(),
    })
    if df.duplicated(["council_gss", "period"]).any():
        df = df.groupby(["council_gss", "period"], sort=False)[["_start"]].min().reset_index()
    df = df.sort_values(["council_gss", "_start", "period"], na_position="last", kind="stable").reset_index(drop=True)
    previous = df.groupby("council_gss", sort=False)["period"].shift(1)
    wanted = (df["period"] == period) & previous.notna()
    return sorted({period, *previous[wanted]})


def run_checks(
    table: pd.DataFrame,
    schema: dict,
    *,
    period: str | None = None,
    councils: list[dict],
    population: pd.DataFrame | None = None,
    config: QAConfig = QAConfig(),
) -> list[Flag]:
    """All checks on a return's consolidated table (see the module
    docstring). With ``period``, only flags about that period. Flags are
    sorted by severity, period, council and field. ``population``: mid-year
    estimates (gss_code, year, population) for a table without a
    ``population`` column; a consolidated table's stored populations and
    rates are what the checks read."""
    fields = _fields(schema, config)
    names = {c["gss_code"]: c.get("name") or c["gss_code"] for c in councils}
    df = _prepare(table, fields, population)
    in_period = df if period is None else df[df["period"] == period]
    flags = (
        _totals(table, schema, fields, names, period)
        + _outliers(in_period, fields, names, config)
        + _jumps(df, fields, names, config, period)
        + _missing(df, councils, period)
    )
    starts = df.groupby("period")["_start"].min().to_dict() if not df.empty else {}
    far = pd.Timestamp.max

    def order(flag: Flag):
        start = starts.get(flag.period)
        start = far if start is None or pd.isna(start) else start
        return (
            _SEVERITY_RANK[flag.severity],
            start,
            flag.period,
            _CHECK_RANK[flag.check],
            flag.council_name,
            flag.field or "",
        )

    return sorted(flags, key=order)
