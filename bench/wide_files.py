"""How fast, and in how little memory, intake refuses a file over its
limits: files of 20,000 to 1,000,000 columns, a cell past the cell limit, a
file past the row limit; and, for scale, how long the same intake takes to
pass a normal file of 1M rows (one streaming pass).

    bench/run_wide_files.sh

Pure Python, no services. Figures are printed (wall and CPU seconds, peak
Python memory traced by tracemalloc), never asserted.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ckanext.lgdp.submissions import intake  # noqa: E402

HEADER = ["gss_code", "financial_year", "chargeable_dwellings", "net_collectable_gbp",
          "collected_by_year_end_gbp", "in_year_collection_rate_pct"]
ROW = ["S12000033", "2023-24", "110000", "125000000", "120000000", "96.0"]
LIMITS = intake.Limits(columns=12, cell_chars=32_768, rows=2_000_000)


def _file(directory: str, name: str, text_lines) -> str:
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        for line in text_lines:
            f.write(line)
    return path


def _wide(columns: int):
    extra = columns - len(HEADER)
    yield ",".join(HEADER + [f"extra_{i}" for i in range(extra)]) + "\n"
    yield ",".join(ROW + ["1"] * extra) + "\n"


def _rows(n: int, long_cell: int = 0):
    yield ",".join(HEADER) + "\n"
    line = ",".join(ROW) + "\n"
    for _ in range(n):
        yield line
    if long_cell:
        yield ",".join(ROW[:5] + ["7" * long_cell]) + "\n"


def _run(path: str) -> str:
    try:
        found = intake.inspect_upload(path, os.path.basename(path), max_bytes=10**10, limits=LIMITS)
        found.cleanup()
        return "passed"
    except intake.IntakeError as e:
        return e.code


def measure(path: str) -> tuple[str, float, float, float]:
    """Times from a plain run; the peak from a second run under tracemalloc
    (which slows allocation, so it is not timed)."""
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = _run(path)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    tracemalloc.start()
    _run(path)
    _now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return outcome, wall, cpu, peak / 1e6


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="lgdp-bench-wide-") as d:
        cases = [(f"{n:,} columns", _file(d, f"wide-{n}.csv", _wide(n))) for n in (20_000, 100_000, 1_000_000)]
        cases.append(("a 40,000-character cell after 100k rows", _file(d, "long-cell.csv", _rows(100_000, 40_000))))
        cases.append(("1,000,000 rows (normal file)", _file(d, "rows-1m.csv", _rows(1_000_000))))
        print(f"{'file':<42} {'MB':>7} {'outcome':<18} {'wall s':>7} {'CPU s':>7} {'peak MB':>8}")
        print("-" * 94)
        for label, path in cases:
            outcome, wall, cpu, peak = measure(path)
            print(f"{label:<42} {os.path.getsize(path) / 1e6:>7.1f} {outcome:<18} {wall:>7.3f} {cpu:>7.3f} {peak:>8.2f}")


if __name__ == "__main__":
    main()
