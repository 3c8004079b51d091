#!/usr/bin/env python3
"""Validation throughput: ``fastcsv.validate_csv`` against ``frictionless.validate``.

For each size (default 10,000, 100,000 and 1,000,000 rows) a CSV of the
12-column standard ``annual-return-charter`` (ckanext/lgdp/schemas/standards; two string
key columns with patterns, two integer and eight number columns, minimum 0
everywhere and maximum 100 on the four percentages) is generated with a
small number of planted errors: type errors, constraint errors (negative
values, percentages over 100, malformed codes and years, empty required
cells), duplicate keys and ragged rows (short and long), fewer than the
default error limit of 1,000 so that both engines read the whole file.

Then, one after the other, each engine validates the file in a fresh child
process of its own (so the peak RSS of each, ru_maxrss of the child, is its
own): frictionless as ckanext-validation calls it
(``fastcsv.frictionless_report``: ``frictionless.validate(path, format="csv",
schema=...)`` in a trusted context) and ``fastcsv.validate_csv``. Seconds are
those of the validation call inside the child (imports and interpreter start
excluded, and after a warm-up call on the file's first 200 lines, which
pays the one-off costs a long-running worker pays once: lazy imports,
chardet's models; that first call is reported apart); rows/s is data rows /
seconds. The parent compares the two
reports: every error's (type, rowNumber, fieldNumber, note), and the whole
reports with their timings removed.

    bench/run_validation_throughput.sh                       # 10k, 100k, 1M rows
    bench/run_validation_throughput.sh --sizes 10000,100000
    bench/run_validation_throughput.sh --quote-all           # every cell quoted

Data files go to .state/bench/validation/ (git-ignored; generated once per
size, seed and layout, reused afterwards); a JSON summary to bench/results/.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("LGDP_STATE") or ROOT / ".state")
DATA = STATE / "bench" / "validation"
RESULTS = ROOT / "bench" / "results"
STANDARD = ROOT / "ckanext" / "lgdp" / "schemas" / "standards" / "annual-return-charter.v1.json"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)

# Targets tracked in bench/README.md.
GOAL_RATIO = 8.0  # at the largest size (1M rows); smaller files pay a fixed start-up cost
GOAL_RSS_MB = 300.0


# Data


def _key(i: int) -> list[str]:
    """Landlord code and financial year of row i: 40 years per code, so keys are unique."""
    year = 1985 + i % 40
    return [f"S12{i // 40:06d}", f"{year}-{(year + 1) % 100:02d}"]


def _row(rnd: random.Random, i: int) -> list[str]:
    """A plausible row of the Annual Return on the Charter."""
    return _key(i) + [
        str(rnd.randint(300, 60000)),  # homes owned
        f"{rnd.randint(600, 1000) / 10}",  # % meeting SHQS
        f"{rnd.randint(6500, 11000) / 100:.2f}",  # average weekly rent
        f"{rnd.randint(0, 150) / 10}",  # % gross rent arrears
        f"{rnd.randint(0, 40) / 10}",  # % rent lost on empty homes
        str(rnd.randint(10, 5000)),  # lets
        f"{rnd.randint(50, 1200) / 10}",  # days to re-let
        f"{rnd.randint(10, 150) / 10}",  # emergency repairs, hours
        f"{rnd.randint(20, 250) / 10}",  # non-emergency repairs, days
        f"{rnd.randint(600, 1000) / 10}",  # % tenants satisfied
    ]


FAULTS = ["type", "type-number", "minimum", "maximum", "pattern", "required", "duplicate-key", "short-row", "long-row"]


def _damage(rnd: random.Random, row: list[str], i: int, kind: str) -> None:
    """Plant one fault of ``kind`` in row i (each gives one error, but a
    short row: one missing-cell error per missing cell)."""
    if kind == "type":
        row[rnd.choice([2, 7])] = rnd.choice(["n/a", "12.5", "1 234", "x"])
    elif kind == "type-number":
        row[rnd.randrange(3, 12)] = rnd.choice(["n/a", "1.2.3", "-", "12%"])
    elif kind == "minimum":
        row[rnd.randrange(2, 12)] = "-3"
    elif kind == "maximum":
        row[rnd.choice([3, 5, 6, 11])] = "104.2"
    elif kind == "pattern":
        column = rnd.choice([0, 1])
        row[column] = rnd.choice(["S1200003", "s12000001"] if column == 0 else ["2024/25", "24-25"])
    elif kind == "required":
        row[rnd.randrange(2, 12)] = ""
    elif kind == "duplicate-key":
        row[:2] = _key(rnd.randrange(i))
    elif kind == "short-row":
        del row[rnd.randrange(10, 12):]
    elif kind == "long-row":
        row.append("extra")


def make_data(size: int, seed: int, quote_all: bool) -> tuple[Path, dict[str, Any]]:
    """Write the file row by row (the parent stays small: a child forked from
    it starts with its resident set, which would count in the child's peak)."""
    DATA.mkdir(parents=True, exist_ok=True)
    layout = "quoted" if quote_all else "plain"
    path = DATA / f"annual-return-charter-{size}-{seed}-{layout}.csv"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        return path, json.loads(meta_path.read_text())
    rnd = random.Random(seed * 1_000_003 + size)
    schema = json.loads(STANDARD.read_text())
    count = min(400, 20 + size // 2500)
    faults = dict(zip(sorted(rnd.sample(range(1, size), count)), (rnd.choice(FAULTS) for _ in range(count))))
    planted = {kind: 0 for kind in FAULTS}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\r\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
        writer.writerow([field["name"] for field in schema["fields"]])
        for i in range(size):
            row = _row(rnd, i)
            kind = faults.get(i)
            if kind:
                _damage(rnd, row, i, kind)
                planted[kind] += 1
            writer.writerow(row)
    tmp.replace(path)
    meta = {"rows": size, "faults": count, "planted": planted, "bytes": path.stat().st_size, "layout": layout}
    meta_path.write_text(json.dumps(meta))
    return path, meta


# Children


def child(engine: str, path: str, out: str) -> None:
    sys.path.insert(0, str(ROOT))
    from ckanext.lgdp.submissions import fastcsv

    schema = json.loads(STANDARD.read_text())
    validate = fastcsv.validate_csv if engine == "fast" else fastcsv.frictionless_report
    # Warm up on the first 200 lines, as a worker that has validated a file
    # before: lazy imports, chardet's models, regex caches. Timed apart.
    warm = Path(out).with_suffix(".warmup.csv")
    with open(path, newline="", encoding="utf-8") as f, open(warm, "w", newline="", encoding="utf-8") as w:
        for _, line in zip(range(200), f):
            w.write(line)
    started = time.perf_counter()
    validate(str(warm), schema)
    first_call = time.perf_counter() - started
    warm.unlink()
    started = time.perf_counter()
    report = validate(path, schema)
    seconds = time.perf_counter() - started
    Path(out).write_text(json.dumps(report))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb, "first_call_200_lines": first_call}))


def run_child(engine: str, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    out = path.with_suffix(f".{engine}.report.json")
    result = subprocess.run(
        [sys.executable, __file__, "--child", engine, str(path), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    report = json.loads(out.read_text())
    out.unlink()
    return measured, report


# Comparison


def _signature(report: dict) -> list[tuple]:
    return [
        (e.get("type"), e.get("rowNumber"), e.get("fieldNumber"), e.get("note"))
        for task in report.get("tasks", [])
        for e in task.get("errors", [])
    ]


def _without_timing(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    report["stats"].pop("seconds", None)
    for task in report.get("tasks", []):
        task["stats"].pop("seconds", None)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated row counts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quote-all", action="store_true", help="quote every cell (the csv-module path)")
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "CSV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    print(f"# validation throughput: {STANDARD.name} (12 columns), python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)
    results = []
    for size in sizes:
        path, meta = make_data(size, args.seed, args.quote_all)
        print(f"# {size:,} rows, {meta['bytes'] / 1e6:.1f} MB, {meta['faults']} planted faults {meta['planted']}", flush=True)
        slow, slow_report = run_child("frictionless", path)
        fast, fast_report = run_child("fast", path)
        same_errors = _signature(slow_report) == _signature(fast_report)
        same_report = _without_timing(slow_report) == _without_timing(fast_report)
        rows = fast_report["tasks"][0]["stats"].get("rows", 0)
        results.append({
            "rows": size,
            "data_rows_read": rows,
            "bytes": meta["bytes"],
            "layout": meta["layout"],
            "errors": len(_signature(fast_report)),
            "frictionless": {**slow, "rows_per_s": size / slow["seconds"]},
            "fast": {**fast, "rows_per_s": size / fast["seconds"]},
            "ratio": slow["seconds"] / fast["seconds"],
            "identical_errors": same_errors,
            "identical_reports": same_report,
        })

    print()
    head = f"{'rows':>10} {'engine':<13} {'seconds':>8} {'rows/s':>10} {'peak RSS MB':>12} {'errors':>7} {'ratio':>6}  identical errors / reports"
    print(head)
    print("-" * len(head))
    for r in results:
        for name in ("frictionless", "fast"):
            m = r[name]
            tail = ""
            if name == "fast":
                tail = f"{r['ratio']:>5.1f}x  {'yes' if r['identical_errors'] else 'NO'} / {'yes' if r['identical_reports'] else 'NO'}"
            label = "frictionless" if name == "frictionless" else "validate_csv"
            print(f"{r['rows']:>10,} {label:<13} {m['seconds']:>8.2f} {m['rows_per_s']:>10,.0f} {m['rss_mb']:>12.1f} {r['errors']:>7} {tail}")
    for r in results:
        if r["data_rows_read"] != r["rows"]:
            print(f"# {r['rows']:,} rows: the error limit stopped validation at data row {r['data_rows_read']:,}")
    largest = max(r["rows"] for r in results)
    ok = all(
        (r["ratio"] >= GOAL_RATIO or r["rows"] < largest) and r["fast"]["rss_mb"] <= GOAL_RSS_MB
        and r["identical_errors"] and r["identical_reports"]
        for r in results
    )
    print()
    print(f"goal (ratio >= {GOAL_RATIO:g}x at {largest:,} rows, validate_csv peak RSS <= {GOAL_RSS_MB:g} MB, "
          "identical errors and reports at every size): "
          f"{'met' if ok else 'NOT met'}")
    summary = {
        "benchmark": "validation_throughput",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "standard": STANDARD.name,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "results": results,
        "goal_met": ok,
    }
    print("BENCH_JSON " + json.dumps(summary))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"validation_throughput-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"# written {out.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
