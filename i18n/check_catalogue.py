#!/usr/bin/env python3
"""Check the translation catalogues of ckanext-lgdp; exit 1 on any problem.

    .venv/bin/python i18n/check_catalogue.py            # every locale in ckanext/lgdp/i18n/
    .venv/bin/python i18n/check_catalogue.py gd         # one locale

For each locale, against ckanext/lgdp/i18n/ckanext-lgdp.pot:

* every msgid of the template is in the .po, translated (every plural form),
  and not fuzzy; no msgid of the .po is missing from the template;
* the placeholders of each msgstr are exactly those of its msgid:
  `{name}` / `{size:.1f}` fields (with their format spec and conversion) and
  `%(x)s` / `%s` ones, counted; a plural form is compared with msgid_plural;
* each msgstr can be formatted like its msgid (no stray `{` or `}`);
* the code words and identifiers of a msgid (API, CSV, GSS, XLSX, DataStore,
  JSON, lgdp_submission_create, ...) are kept untranslated;
* the Plural-Forms header is the expected one for the language;
* the compiled .mo, read with Python's gettext, gives the .po's msgstr for
  every msgid (so a stale .mo fails, whatever the file dates), and its plural rule picks the expected
  form for sample numbers; a few known strings are spot-checked.
"""
from __future__ import annotations

import gettext
import re
import string
import sys
from collections import Counter
from pathlib import Path

from babel.messages.pofile import read_po

# The catalogue ships inside the package; this tool stays in the checkout.
ROOT = Path(__file__).resolve().parent.parent
I18N = ROOT / "ckanext" / "lgdp" / "i18n"
DOMAIN = "ckanext-lgdp"
POT = I18N / f"{DOMAIN}.pot"

PLURAL_FORMS = {
    "gd": "nplurals=4; plural=(n==1 || n==11) ? 0 : (n==2 || n==12) ? 1 : "
    "(n > 2 && n < 20) ? 2 : 3;",
}
# n -> the plural form index the language's rule must give
PLURAL_SAMPLES = {
    "gd": {0: 3, 1: 0, 2: 1, 3: 2, 10: 2, 11: 0, 12: 1, 13: 2, 19: 2, 20: 3, 21: 3, 100: 3},
}
# msgid -> expected translation, read back through gettext from the .mo
SPOT_CHECKS = {
    "gd": {
        "Council": "Comhairle",
        "Data return": "Tilleadh dàta",
        "Submission": "Tagradh",
        "Validation": "Dearbhadh",
        "Upload": "Luchdaich suas",
        "Period": "Ùine",
        "Due": "Ri lìbhrigeadh",
        "Agency": "Buidheann",
        "Council not found: {name}": "Cha deach a' chomhairle a lorg: {name}",
    },
}
KEEP_WORDS = ["API", "CSV", "GSS", "XLSX", "xlsx", "DataStore", "JSON", "URL",
              "UTF-8", "UTC", "MB", "Table Schema", "iCalendar", "YYYY-MM-DD"]
IDENTIFIER = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")  # lgdp_return_transition
PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[sdifFeEgGxXorcra%]")


def placeholders(text: str) -> Counter:
    found: Counter = Counter()
    try:
        for _literal, field, spec, conversion in string.Formatter().parse(text):
            if field is not None:
                found[f"{{{field}{'!' + conversion if conversion else ''}"
                      f"{':' + spec if spec else ''}}}"] += 1
    except ValueError as e:  # unbalanced braces
        found[f"<invalid braces: {e}>"] += 1
    for m in PERCENT.finditer(text):
        if m.group() != "%%":
            found[m.group()] += 1
    return found


def dummy_values(text: str) -> dict:
    values = {}
    try:
        for _literal, field, spec, _conv in string.Formatter().parse(text):
            if field:
                values[field.split(".")[0].split("[")[0]] = 1234.5 if spec else "x"
    except ValueError:
        pass
    return values


def keep_words(text: str) -> Counter:
    words = Counter(w for w in KEEP_WORDS for _ in re.finditer(rf"(?<![\w.]){re.escape(w)}(?!\w)", text))
    words.update(IDENTIFIER.findall(text))
    return words


def check_locale(locale: str, template) -> list[str]:
    problems: list[str] = []
    po_path = I18N / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo_path = po_path.with_suffix(".mo")
    if not po_path.exists():
        return [f"{po_path}: missing"]
    with po_path.open("rb") as f:
        catalog = read_po(f, locale=locale)

    expected_forms = PLURAL_FORMS.get(locale)
    if expected_forms and catalog.plural_forms != expected_forms:
        problems.append(f"Plural-Forms is {catalog.plural_forms!r}, expected {expected_forms!r}")

    template_ids = {m.id for m in template if m.id}
    catalog_ids = {m.id for m in catalog if m.id}
    for msgid in sorted(template_ids - catalog_ids, key=str):
        problems.append(f"not in the .po (run pybabel update): {msgid!r}")
    for msgid in sorted(catalog_ids - template_ids, key=str):
        problems.append(f"not in the template any more: {msgid!r}")

    translated = 0
    for m in catalog:
        if not m.id:
            continue
        label = repr(m.id if isinstance(m.id, str) else m.id[0])
        if m.fuzzy:
            problems.append(f"fuzzy: {label}")
        strings = list(m.string) if m.pluralizable else [m.string]
        if m.pluralizable and len(strings) != catalog.num_plurals:
            problems.append(f"{len(strings)} plural forms instead of {catalog.num_plurals}: {label}")
        if not all(s and s.strip() for s in strings):
            problems.append(f"not translated: {label}")
            continue
        translated += 1
        sources = [m.id] if not m.pluralizable else [m.id[1]] * len(strings)
        for i, (source, target) in enumerate(zip(sources, strings)):
            where = f"{label}" + (f" [form {i}]" if m.pluralizable else "")
            want, got = placeholders(source), placeholders(target)
            if want != got:
                problems.append(f"placeholders differ in {where}: msgid {sorted(want.elements())}"
                                f" msgstr {sorted(got.elements())}")
            elif want and any(k.startswith("{") for k in want):
                try:
                    target.format(**dummy_values(source))
                except (KeyError, ValueError, IndexError) as e:
                    problems.append(f"msgstr cannot be formatted in {where}: {e}")
            missing_words = keep_words(source) - keep_words(target)
            if missing_words:
                problems.append(f"code words translated or lost in {where}: {sorted(missing_words)}")

    # the compiled catalogue, as CKAN reads it (gettext, domain, localedir)
    if not mo_path.exists():
        problems.append(f"{mo_path}: missing (run pybabel compile)")
    else:
        trans = gettext.translation(DOMAIN, localedir=str(I18N), languages=[locale])
        for m in catalog:
            if not m.id:
                continue
            if m.pluralizable:
                for n, form in PLURAL_SAMPLES.get(locale, {}).items():
                    got = trans.ngettext(m.id[0], m.id[1], n)
                    if m.string[form] and got != m.string[form]:
                        problems.append(f".mo gives {got!r} for {m.id[0]!r} n={n}, "
                                        f"expected form {form}: {m.string[form]!r}")
            elif m.string and trans.gettext(m.id) != m.string:
                problems.append(f".mo is stale for {m.id!r}: {trans.gettext(m.id)!r}")
        for msgid, want in SPOT_CHECKS.get(locale, {}).items():
            got = trans.gettext(msgid)
            if got != want:
                problems.append(f"spot check {msgid!r}: got {got!r}, expected {want!r}")
        if not problems:
            samples = [(msgid, trans.gettext(msgid)) for msgid in list(SPOT_CHECKS.get(locale, {}))[:4]]
            for msgid, got in samples:
                print(f"  {locale}: {msgid!r} -> {got!r}")

    total = len(catalog_ids)
    print(f"{po_path.relative_to(ROOT)}: {translated}/{total} translated, "
          f"{len(problems)} problem(s)")
    return problems


def main(argv: list[str]) -> int:
    with POT.open("rb") as f:
        template = read_po(f)
    print(f"{POT.relative_to(ROOT)}: {len([m for m in template if m.id])} msgids")
    locales = argv or sorted(p.name for p in I18N.iterdir() if (p / "LC_MESSAGES").is_dir())
    if not locales:
        print("no locale in ckanext/lgdp/i18n/")
        return 1
    failed = False
    for locale in locales:
        problems = check_locale(locale, template)
        for problem in problems:
            print(f"  {locale}: {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
