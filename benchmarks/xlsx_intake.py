"""Cases read from an .xlsx workbook, against the same rows read from CSV, same run: rows per second and peak memory.

The rows are N change-of-address cases (``demo_portal.generate_cases``, one in twenty invalid). The CSV
is that file; the workbook holds the same rows on one sheet, written as Excel writes them (text in the
shared-strings table, the effective date as a date cell). Each run is a fresh child process that reads
the file through ``read_cases`` (the intake of ``autoclerk run`` and of the hand-off service: the reader
and every row checked against the input schema) and reports its seconds and its peak resident memory
(VmHWM). Baseline: the same child for the CSV, and the bare child (its imports, no file), so the report
says what the reading adds. It prints the medians of ``--runs``, the ratio of xlsx to CSV, and for each
format the peak at the largest size over the peak at the smallest (memory flat with the file: about 1).

    python benchmarks/xlsx_intake.py --sizes 10000,100000 [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXAMPLE = ROOT / "workflows" / "examples" / "change_of_address.yaml"
FORMATS = ("csv", "xlsx")


def peak_mb() -> float:
    """This process's peak resident memory (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(path: str | None) -> None:
    """Read ``path`` through the intake (nothing when ``None``) and print one JSON line of figures."""
    from orchestrator.queue import AcceptedCase, read_cases
    from workflows import load_workflow

    definition = load_workflow(EXAMPLE).definition
    rows = accepted = 0
    started = time.perf_counter()
    if path is not None:
        for item in read_cases(Path(path), definition):
            rows += 1
            accepted += isinstance(item, AcceptedCase)
    print(json.dumps({"rows": rows, "accepted": accepted, "seconds": time.perf_counter() - started, "peak_mb": peak_mb()}))


def write_files(folder: Path, size: int) -> dict[str, Path]:
    """The CSV of ``size`` cases and a workbook of the same rows."""
    import xlsxwriter

    from demo_portal import generate_cases

    paths = {"csv": folder / f"cases-{size}.csv", "xlsx": folder / f"cases-{size}.xlsx"}
    generate_cases(paths["csv"], size, seed=19)
    book = xlsxwriter.Workbook(str(paths["xlsx"]))  # the default mode: shared strings, as Excel writes them
    sheet = book.add_worksheet("Cases")
    dates = book.add_format({"num_format": "dd/mm/yyyy"})
    with open(paths["csv"], newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        sheet.write_row(0, 0, header)
        when = header.index("effective_date")
        for r, values in enumerate(reader, start=1):
            for c, value in enumerate(values):
                if c == when:
                    sheet.write_datetime(r, c, dt.datetime.fromisoformat(value), dates)
                elif value:
                    sheet.write_string(r, c, value)
    book.close()
    return paths


@dataclass
class Reading:
    """One size and format: the medians of its runs."""

    size: int
    format: str
    file_mb: float
    seconds: float
    rows_per_s: float
    peak_mb: float
    added_mb: float
    rows: int
    accepted: int


def measure(path: Path | None) -> dict[str, float]:
    """One fresh child process reading ``path``; its figures.

    Raises:
        SystemExit: the child failed (its standard error is shown).
    """
    command = [sys.executable, __file__, "--child", str(path) if path else "-"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"xlsx_intake: reading {path} failed: {done.stderr.strip()[-500:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="rows per file, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="End with one JSON object on the last line.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(None if args.child == "-" else args.child)
        return
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    bare_runs = [measure(None) for _ in range(args.runs)]
    bare = round(statistics.median(r["peak_mb"] for r in bare_runs), 1)
    print(f"bare child (imports, no file): peak {bare:.1f} MB", flush=True)
    readings: list[Reading] = []
    with tempfile.TemporaryDirectory(prefix="autoclerk-xlsx-bench-") as tmp:
        for size in sizes:
            paths = write_files(Path(tmp), size)
            runs: dict[str, list[dict[str, float]]] = {fmt: [] for fmt in FORMATS}
            for _ in range(args.runs):  # interleaved, so a busy moment of the machine hits both formats alike
                for fmt in FORMATS:
                    runs[fmt].append(measure(paths[fmt]))
            for fmt, ours in runs.items():
                seconds = statistics.median(r["seconds"] for r in ours)
                peak = statistics.median(r["peak_mb"] for r in ours)
                readings.append(Reading(size=size, format=fmt, file_mb=round(paths[fmt].stat().st_size / 2**20, 2),
                                        seconds=round(seconds, 2), rows_per_s=round(ours[0]["rows"] / seconds),
                                        peak_mb=round(peak, 1), added_mb=round(peak - bare, 1),
                                        rows=int(ours[0]["rows"]), accepted=int(ours[0]["accepted"])))
                r = readings[-1]
                print(f"{size:,} rows, {fmt}: {r.rows_per_s:,.0f} rows/s ({r.seconds:.2f} s), peak {r.peak_mb:.1f} MB "
                      f"({r.added_mb:+.1f} over bare), file {r.file_mb:.2f} MB", flush=True)
    by = {(r.size, r.format): r for r in readings}
    ratios = {size: {"rows_per_s": round(by[size, "xlsx"].rows_per_s / by[size, "csv"].rows_per_s, 3),
                     "peak_mb": round(by[size, "xlsx"].peak_mb / by[size, "csv"].peak_mb, 3)} for size in sizes}
    flat = {fmt: round(by[sizes[-1], fmt].peak_mb / by[sizes[0], fmt].peak_mb, 3) for fmt in FORMATS}
    same = all(by[size, "xlsx"].rows == by[size, "csv"].rows == size
               and by[size, "xlsx"].accepted == by[size, "csv"].accepted for size in sizes)
    print(f"{'rows':>9}  {'format':<6} {'rows/s':>9} {'seconds':>8} {'peak MB':>8} {'+bare MB':>9} {'file MB':>8}")
    for r in readings:
        print(f"{r.size:>9,}  {r.format:<6} {r.rows_per_s:>9,.0f} {r.seconds:>8.2f} {r.peak_mb:>8.1f} "
              f"{r.added_mb:>+9.1f} {r.file_mb:>8.2f}")
    for size, ratio in ratios.items():
        print(f"{size:,} rows: xlsx/csv rows per second {ratio['rows_per_s']}, peak memory {ratio['peak_mb']}")
    for fmt, ratio in flat.items():
        print(f"{fmt}: peak at {sizes[-1]:,} rows / peak at {sizes[0]:,} = {ratio}")
    print("the same rows and the same accepted cases from both formats" if same else "the formats read DIFFERENT rows")
    if args.json:
        print(json.dumps({"sizes": sizes, "runs": args.runs, "bare_peak_mb": bare,
                          "readings": [asdict(r) for r in readings], "xlsx_over_csv": ratios,
                          "peak_largest_over_smallest": flat, "same_rows": same}))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
