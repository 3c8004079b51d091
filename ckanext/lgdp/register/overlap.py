"""Duplicate detection between data standards.

When a return is proposed or its standard changes, its fields (names, titles,
descriptions, types) are compared with every other active standard, and the
overlapping returns and fields are reported with a score, so the reviewer
sees "this asks again for 7 of the 9 fields in HL1". Shown on the proposal
page and returned by the API (``lgdp_return_overlap``).

How two standards are compared:

1. Each field's name, title and description are normalised to tokens: case,
   separators and camelCase, common abbreviations (no/num/number,
   hh/households, ta/temporary accommodation, pct/percent/%, gbp/£, ...),
   stop words, and a simple stemming (plurals, -ed, -ing, -ment, -ness).
2. A field pair's similarity is a soft Dice coefficient of the tokens of the
   names and of the titles (and of the descriptions when both have one, only
   ever as extra evidence), times the compatibility of the two types
   (integer ~ number is fine; string against number is penalised).
3. Fields are paired one to one, greedily from the most similar pair, above
   ``FIELD_THRESHOLD``.
4. The identifier fields every return shares by design (GSS code, council
   code or name, period or financial year) are left out of the score and
   reported separately as "shared keys".

score = matched fields / fields of the proposal (shared keys excluded).

The functions above the action are pure: no CKAN, no database.
"""
from __future__ import annotations

import difflib
import functools
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import ckan.plugins.toolkit as tk
from ckan.types import Context, DataDict

from ckanext.lgdp.params import validate
from ckanext.lgdp.register import RETURN_TYPE, schema
from ckanext.lgdp.register.search import iter_returns
from ckanext.lgdp.register.standards import StandardError, parse_standard

__all__ = ["lgdp_return_overlap"]

log = logging.getLogger(__name__)

# Two fields above this similarity are "the same field".
FIELD_THRESHOLD = 0.75
# Returns overlapping less than this are not reported (action default).
DEFAULT_MIN_SCORE = 0.3
# The lifecycle states of the returns a proposal is compared with.
COMPARED_STATUSES = ("approved", "active", "under_review")

# --------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------

# Symbols that carry meaning, before the text is split into words.
_SYMBOLS = {"%": " percent ", "£": " gbp ", "&": " and ", "#": " number ", "+": " plus "}

# Abbreviations and synonyms -> canonical words (before stemming).
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    # counts
    "no": ("number",), "nos": ("number",), "num": ("number",), "nbr": ("number",),
    "nr": ("number",), "n": ("number",), "count": ("number",), "cnt": ("number",),
    "qty": ("quantity",), "amt": ("amount",), "tot": ("total",), "avg": ("average",),
    # housing and homelessness
    "hh": ("household",), "hhs": ("household",), "hhold": ("household",), "hholds": ("household",),
    "ta": ("temporary", "accommodation"), "temp": ("temporary",), "tmp": ("temporary",),
    "accom": ("accommodation",), "accomm": ("accommodation",), "accomodation": ("accommodation",),
    "hmls": ("homeless",), "homelessness": ("homeless",),
    "app": ("application",), "apps": ("application",), "appln": ("application",),
    "applns": ("application",),
    "assmt": ("assessment",), "assmts": ("assessment",),
    "chld": ("child",), "chn": ("child",), "children": ("child",), "kids": ("child",),
    "ppl": ("person",), "people": ("person",), "persons": ("person",),
    "dwg": ("dwelling",), "dwgs": ("dwelling",),
    "hb": ("housing", "benefit"),
    # money and rates
    "pct": ("percent",), "perc": ("percent",), "percentage": ("percent",), "pc": ("percent",),
    "gbp": ("gbp",), "pound": ("gbp",), "pounds": ("gbp",), "stg": ("gbp",), "sterling": ("gbp",),
    "ctax": ("council", "tax"), "ctr": ("council", "tax", "reduction"),
    # time and place
    "yr": ("year",), "yrs": ("year",), "fy": ("financial", "year"), "fin": ("financial",),
    "qtr": ("quarter",), "qtrs": ("quarter",), "mth": ("month",), "mths": ("month",),
    "wk": ("week",), "wks": ("week",), "dt": ("date",), "hrs": ("hour",), "mins": ("minute",),
    "la": ("local", "authority"), "auth": ("authority",),
    # environment
    "tonnage": ("tonne",), "tonnes": ("tonne",), "tons": ("tonne",), "kg": ("kilogram",),
}

# Two words that are one word.
_BIGRAMS = {("per", "cent"): "percent", ("sub", "total"): "subtotal", ("post", "code"): "postcode"}

STOP_WORDS = frozenset(
    "a an the of in on at for to by and or per with from as is are was were be been being "
    "e g eg ie i etc this that these those which who whose their its it all any each into "
    "than then there where when what how if not".split()
)

# Words that say little about what a field holds: they count a quarter.
WEAK_WORDS = frozenset(
    "number total amount value figure quantity data receiv record report provid current "
    "actual overall gross".split()
)
WEAK_WEIGHT = 0.25

_IRREGULAR = {"child": "child", "person": "person", "women": "woman", "men": "man", "data": "data"}


def stem(word: str) -> str:
    """A deliberately simple stemmer: the same word in its different forms
    ends in the same stem (households ~ household, assessed ~ assessment)."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.isdigit() or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ness") and len(word) > 6:
        word = word[:-4]
    elif word.endswith("ment") and len(word) >= 7:
        word = word[:-4]
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("ed") and len(word) > 4:
        word = word[:-2]
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def words(text: Any) -> list[str]:
    """Lower-case words of a field name, title or description, split at
    separators and camelCase, with %, £, & and # as words."""
    if not text:
        return []
    text = str(text)
    for symbol, word in _SYMBOLS.items():
        text = text.replace(symbol, word)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)
    return re.findall(r"[a-z0-9]+", text.lower())


@functools.lru_cache(maxsize=16384)
def _normalise(text: str) -> tuple[str, ...]:
    raw = words(text)
    joined: list[str] = []
    i = 0
    while i < len(raw):
        if i + 1 < len(raw) and (raw[i], raw[i + 1]) in _BIGRAMS:
            joined.append(_BIGRAMS[(raw[i], raw[i + 1])])
            i += 2
        else:
            joined.append(raw[i])
            i += 1
    out: list[str] = []
    for word in joined:
        for expanded in ABBREVIATIONS.get(word, (word,)):
            if expanded in STOP_WORDS:
                continue
            token = stem(expanded)
            if token not in out:
                out.append(token)
    return tuple(out)


def normalise(text: Any) -> tuple[str, ...]:
    """The normalised tokens of a field name, title or description, in order
    of first appearance: abbreviations expanded, stop words dropped, stemmed.

    >>> normalise("No_HH_in_TA")
    ('number', 'household', 'temporary', 'accommodation')
    """
    return _normalise(str(text)) if text else ()


# --------------------------------------------------------------------------
# Shared keys: the identifier columns every return has by design
# --------------------------------------------------------------------------

# Which kind of key a token points to.
_KEY_ANCHORS = {
    "gss": "council", "ons": "council", "council": "council", "authority": "council",
    "area": "council", "period": "period", "year": "period", "quarter": "period",
    "month": "period", "week": "period",
}
# Every token of a key's name must be one of these (stemmed, as normalise gives).
_KEY_VOCABULARY = frozenset(_KEY_ANCHORS) | frozenset(
    stem(w) for w in (
        "code name local financial calendar academic reporting start end ending "
        "date id identifier label s12"
    ).split()
)
_KEY_BOUNDS = frozenset({"start", "end"})


def shared_key_kind(field: Mapping[str, Any]) -> str | None:
    """'council' or 'period' when the field is one of the identifier columns
    every return shares (gss_code, council code or name, period,
    financial_year, quarter_ending, ...), judged by its name or else its
    title; None otherwise."""
    for text in (field.get("name"), field.get("title")):
        tokens = normalise(text)
        if not tokens or not set(tokens) <= _KEY_VOCABULARY:
            continue
        anchors = [i for i, t in enumerate(tokens) if t in _KEY_ANCHORS]
        if not anchors:
            continue
        bounds = [i for i, t in enumerate(tokens) if t in _KEY_BOUNDS]
        # "quarter_ending", "period_start" or "end_date" are keys;
        # "started_in_year" is a count
        if bounds and min(bounds) < anchors[0] and not {"period", "date"} & set(tokens):
            continue
        kinds = [_KEY_ANCHORS[tokens[i]] for i in anchors]
        # "council area" and "gss code" are council; "financial year" period
        return "council" if "council" in kinds else kinds[0]
    return None


# --------------------------------------------------------------------------
# Field similarity
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A field of a standard, normalised once for comparison."""

    name: str
    type: str
    name_tokens: tuple[str, ...]
    title_tokens: tuple[str, ...]
    description_tokens: tuple[str, ...]
    key_kind: str | None

    @classmethod
    def of(cls, field: Mapping[str, Any]) -> "Field":
        name = str(field.get("name") or "")
        name_tokens = normalise(name)
        # a field without a title is known by its name
        title_tokens = normalise(field.get("title")) or name_tokens
        return cls(
            name=name,
            type=str(field.get("type") or "string").lower(),
            name_tokens=name_tokens,
            title_tokens=title_tokens,
            description_tokens=normalise(field.get("description")),
            key_kind=shared_key_kind(field),
        )

    @functools.cached_property
    def label_tokens(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.name_tokens + self.title_tokens))

    @functools.cached_property
    def prefixes(self) -> frozenset[str]:
        """What a candidate field must share with this one to be compared: the
        start of a word (a shortened or misspelt word keeps its first letters)."""
        strong = [t for t in self.label_tokens if t not in WEAK_WORDS] or self.label_tokens
        return frozenset(t[:3] for t in strong)


@functools.lru_cache(maxsize=65536)
def token_similarity(a: str, b: str) -> float:
    """1 for the same token; a little less for a shortened word or a typo
    (applic ~ application, temporay ~ temporary); 0 otherwise."""
    if a == b:
        return 1.0
    short, long_ = sorted((a, b), key=len)
    if short.isdigit() or long_.isdigit():
        return 0.0
    if len(short) >= 4 and long_.startswith(short) and len(short) / len(long_) >= 0.5:
        return 0.8
    if len(short) >= 5:
        ratio = difflib.SequenceMatcher(None, a, b).ratio()
        if ratio >= 0.85:
            return ratio
    return 0.0


def token_set_similarity(a: Iterable[str], b: Iterable[str]) -> float:
    """A weighted, soft Dice coefficient of two token sets: each token counts
    as much as its best match on the other side; weak words count a quarter."""
    a, b = tuple(dict.fromkeys(a)), tuple(dict.fromkeys(b))
    if not a or not b:
        return 0.0
    return (_matched(a, b) + _matched(b, a)) / (_total(a) + _total(b))


def _matched(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """The weight of the tokens of `a`, each by its best match in `b`."""
    exact = set(b)
    out = 0.0
    for x in a:
        # a shortened word or a typo keeps its first letter
        best = 1.0 if x in exact else max((token_similarity(x, y) for y in b if y[0] == x[0]), default=0.0)
        out += best * (WEAK_WEIGHT if x in WEAK_WORDS else 1.0)
    return out


def _total(tokens: tuple[str, ...]) -> float:
    return sum(WEAK_WEIGHT if t in WEAK_WORDS else 1.0 for t in tokens)


_NUMERIC = {"integer", "number"}
_TEMPORAL = {"date", "datetime", "time", "year", "yearmonth"}


def type_compatibility(a: str, b: str) -> float:
    """How compatible two Table Schema types are, as a factor of the
    similarity: 1 for the same type, integer ~ number 0.95, string against a
    number 0.6."""
    a, b = (a or "string").lower(), (b or "string").lower()
    if a == b:
        return 1.0
    if {a, b} <= _NUMERIC:
        return 0.95
    if "any" in (a, b):
        return 0.9
    if {a, b} <= _TEMPORAL:
        return 0.9
    if {a, b} & {"year"} and {a, b} & _NUMERIC:
        return 0.85
    if {a, b} & {"string"} and {a, b} & _NUMERIC:
        return 0.6
    return 0.7


def field_similarity(
    a: Mapping[str, Any] | Field, b: Mapping[str, Any] | Field, floor: float = 0.0
) -> float:
    """The similarity (0 to 1) of two Table Schema fields, from their names,
    titles, descriptions and types.

    With `floor`, a pair that cannot reach it may be answered with a lower
    bound (the descriptions are then not compared): for matching only.
    """
    fa = a if isinstance(a, Field) else Field.of(a)
    fb = b if isinstance(b, Field) else Field.of(b)
    types = type_compatibility(fa.type, fb.type)
    name = token_set_similarity(fa.name_tokens, fb.name_tokens)
    title = token_set_similarity(fa.title_tokens, fb.title_tokens)
    text = max(0.4 * name + 0.6 * title, token_set_similarity(fa.label_tokens, fb.label_tokens))
    if fa.description_tokens and fb.description_tokens and (0.8 * text + 0.2) * types >= floor:
        # a similar description confirms; a differently worded one does not refute
        description = token_set_similarity(fa.description_tokens, fb.description_tokens)
        text = max(text, 0.8 * text + 0.2 * description)
    return round(text * types, 3)


# --------------------------------------------------------------------------
# Standards
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Standard:
    """A standard's fields, normalised once: those that count and the keys."""

    fields: tuple[Field, ...]
    keys: tuple[Field, ...]

    @classmethod
    def of(cls, standard: Any) -> "Standard":
        parsed = parse_standard(standard)
        # the same standard is compared again at every proposal: normalise once
        return _standard(json.dumps(parsed["fields"], sort_keys=True))


@functools.lru_cache(maxsize=1024)
def _standard(fields_json: str) -> Standard:
    all_fields = [Field.of(f) for f in json.loads(fields_json)]
    return Standard(
        fields=tuple(f for f in all_fields if not f.key_kind),
        keys=tuple(f for f in all_fields if f.key_kind),
    )


def _pairs(fields: Sequence[Field], others: Sequence[Field], threshold: float) -> list[tuple[float, int, int]]:
    by_prefix: dict[str, set[int]] = {}
    for j, other in enumerate(others):
        for prefix in other.prefixes:
            by_prefix.setdefault(prefix, set()).add(j)
    pairs = []
    for i, field in enumerate(fields):
        candidates = set().union(*(by_prefix.get(p, set()) for p in field.prefixes))
        for j in candidates:
            similarity = field_similarity(field, others[j], floor=threshold)
            if similarity >= threshold:
                pairs.append((similarity, i, j))
    return pairs


def _greedy(
    pairs: list[tuple[float, int, int]], fields: Sequence[Field], others: Sequence[Field]
) -> list[tuple[str, str, float]]:
    """One to one, the most similar pair first (ties in field order)."""
    used_a: set[int] = set()
    used_b: set[int] = set()
    matched = []
    for similarity, i, j in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        matched.append((i, fields[i].name, others[j].name, similarity))
    return [(a, b, s) for _, a, b, s in sorted(matched)]


def match_fields(
    fields: Iterable[Mapping[str, Any] | Field],
    other_fields: Iterable[Mapping[str, Any] | Field],
    threshold: float = FIELD_THRESHOLD,
) -> list[tuple[str, str, float]]:
    """Pair fields one to one (greedily, most similar first) where their
    similarity reaches `threshold`: [(field, other_field, similarity)], in the
    order of `fields`."""
    a = [f if isinstance(f, Field) else Field.of(f) for f in fields]
    b = [f if isinstance(f, Field) else Field.of(f) for f in other_fields]
    return _greedy(_pairs(a, b, threshold), a, b)


def _shared_keys(keys: tuple[Field, ...], other_keys: tuple[Field, ...]) -> list[tuple[str, str, float]]:
    """Keys of the same kind (council, period), paired one to one."""
    pairs = [
        (field_similarity(a, b), i, j)
        for i, a in enumerate(keys)
        for j, b in enumerate(other_keys)
        if a.key_kind == b.key_kind
    ]
    return _greedy(pairs, keys, other_keys)


def summary(n_matched: int, n_other_fields: int, title: str) -> str:
    """The overlap in words: "asks again for 7 of the 9 fields in HL1"."""
    return tk.ungettext(
        "asks again for {n} of the {total} field in {title}",
        "asks again for {n} of the {total} fields in {title}",
        n_other_fields,
    ).format(n=n_matched, total=n_other_fields, title=title)


def compare_standards(standard: Any, other: Any, threshold: float = FIELD_THRESHOLD) -> dict[str, Any]:
    """How much of `other` the proposal `standard` asks again (either may be
    a Table Schema dict, its JSON text or a parsed Standard):

    score (matched / the proposal's fields, shared keys excluded), n_matched,
    n_fields (the proposal's, without shared keys), n_other_fields (the
    other's, likewise), matched [(field, other_field, similarity)] and
    shared_keys [(field, other_field, similarity)].
    """
    mine = standard if isinstance(standard, Standard) else Standard.of(standard)
    theirs = other if isinstance(other, Standard) else Standard.of(other)
    matched = _greedy(_pairs(mine.fields, theirs.fields, threshold), mine.fields, theirs.fields)
    n_fields = len(mine.fields)
    return {
        "score": round(len(matched) / n_fields, 3) if n_fields else 0.0,
        "n_matched": len(matched),
        "n_fields": n_fields,
        "n_other_fields": len(theirs.fields),
        "matched": matched,
        "shared_keys": _shared_keys(mine.keys, theirs.keys),
    }


def find_overlaps(
    standard: Any,
    others: Iterable[Mapping[str, Any]],
    min_score: float = DEFAULT_MIN_SCORE,
    threshold: float = FIELD_THRESHOLD,
) -> list[dict[str, Any]]:
    """The returns among `others` whose standards the proposal `standard`
    overlaps by at least `min_score` (and at least one field), most
    overlapping first.

    Each of `others` is a return: a dict with `data_standard` and optionally
    `id`, `name`, `title` and `lifecycle_status`; one whose standard is not a
    Table Schema is skipped. Each overlap carries those, the figures of
    `compare_standards` and `summary`, a sentence in words.
    """
    mine = standard if isinstance(standard, Standard) else Standard.of(standard)
    overlaps = []
    for other in others:
        try:
            theirs = Standard.of(other.get("data_standard"))
        except StandardError:
            continue
        result = compare_standards(mine, theirs, threshold)
        if not result["n_matched"] or result["score"] < min_score:
            continue
        title = other.get("title") or other.get("name") or ""
        overlaps.append({
            "id": other.get("id"),
            "name": other.get("name"),
            "title": title,
            "lifecycle_status": other.get("lifecycle_status"),
            **result,
            "summary": summary(result["n_matched"], result["n_other_fields"], title),
        })
    overlaps.sort(key=lambda o: (-o["score"], -o["n_matched"], o["name"] or ""))
    return overlaps


# --------------------------------------------------------------------------
# The action
# --------------------------------------------------------------------------


def _read_context(context: Context) -> Context:
    """A fresh context for the reads this action makes as its caller."""
    return {"user": context.get("user", ""), "ignore_auth": context.get("ignore_auth", False)}


def _returns_compared(context: Context, exclude: str | None) -> Iterator[dict[str, Any]]:
    """Every data return the caller may see whose lifecycle status is
    approved, active or under review, but `exclude` (an id)."""
    for pkg in iter_returns(context, states=COMPARED_STATUSES):
        if pkg["id"] != exclude:
            yield pkg


@tk.side_effect_free
@validate(schema.return_overlap)
def lgdp_return_overlap(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Which other data returns ask again for the fields of a return's data
    standard (duplicate detection, for the proposal page and reviewers).

    The standard is compared with that of every other return whose lifecycle
    status is approved, active or under review; the identifier fields every
    return shares (GSS code, council, period, financial year) do not count.

    :param id: the name or id of a data return whose data standard is compared
        (optional when ``data_standard`` is given; with both, ``data_standard``
        is compared and the return ``id`` is left out of the comparison)
    :type id: string
    :param data_standard: a Frictionless Table Schema, as a dict or JSON text,
        for a proposal not yet saved or a change not yet made (optional)
    :type data_standard: dict or string
    :param min_score: the smallest score reported, 0 to 1 (optional, default 0.3)
    :type min_score: float

    :returns: ``overlaps``: the overlapping returns, most overlapping first,
        each with ``id``, ``name``, ``title``, ``lifecycle_status``, ``score``
        (matched fields / the proposal's fields), ``n_matched``, ``n_fields``,
        ``n_other_fields``, ``matched`` ([field, other_field, similarity]),
        ``shared_keys`` (the same, for identifier fields) and ``summary``
        ("asks again for 7 of the 9 fields in <title>"); ``threshold`` (the
        field similarity from which two fields are the same), ``min_score``,
        ``n_fields`` and ``shared_keys`` (the proposal's identifier fields)
        and ``compared`` (how many returns were compared).
    :rtype: dictionary
    """
    tk.check_access("lgdp_return_overlap", context, data_dict)
    data = data_dict

    exclude = None
    proposal = data.get("data_standard")
    if data.get("id"):
        try:
            pkg = tk.get_action("package_show")(_read_context(context), {"id": data["id"]})
        except tk.ObjectNotFound:
            raise tk.ObjectNotFound(tk._("Data return not found"))
        if pkg.get("type") != RETURN_TYPE:
            raise tk.ObjectNotFound(tk._("Data return not found"))
        exclude = pkg["id"]
        if proposal is None:
            if not pkg.get("data_standard"):
                raise tk.ValidationError({"data_standard": [tk._("This return has no data standard to compare")]})
            try:
                proposal = parse_standard(pkg["data_standard"])
            except StandardError as exc:
                raise tk.ValidationError({"data_standard": [str(exc)]})
    elif proposal is None:
        raise tk.ValidationError({"id": [tk._("Give the id of a data return, or a data_standard")]})

    min_score = data.get("min_score", DEFAULT_MIN_SCORE)
    standard = Standard.of(proposal)
    compared = list(_returns_compared(context, exclude))
    overlaps = find_overlaps(standard, compared, min_score=min_score, threshold=FIELD_THRESHOLD)
    return {
        "overlaps": [
            {
                **o,
                "matched": [list(m) for m in o["matched"]],
                "shared_keys": [list(k) for k in o["shared_keys"]],
            }
            for o in overlaps
        ],
        "threshold": FIELD_THRESHOLD,
        "min_score": min_score,
        "n_fields": len(standard.fields),
        "shared_keys": [k.name for k in standard.keys],
        "compared": len(compared),
    }
