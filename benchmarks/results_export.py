"""A batch's results exported by the command line: its peak memory must not grow with the batch.

For each size, a SQLite ledger holding one batch of N cases is built in bulk (most cases done with a
reference and an output, one in ten handed back with an error, one in a hundred with evidence). The
workflow marks ``account_number`` secret, and every output and error quotes it, so the export masks on
every row. Then ``autoclerk results export`` writes the batch in each format, as a subprocess, ``--runs``
times: its peak resident memory (sampled every 20 ms), seconds, rows per second and the file's size,
medians of the runs. Baseline, same run: the peak of ``autoclerk --help``, the bare process (interpreter,
click and the command line's imports), so the report says what the export adds. Per format it prints the
ratio of the peaks at the largest and the smallest size (memory flat with the batch: about 1), and it
checks once per size and format that the file holds N data rows and that no secret value shows in it.

    python benchmarks/results_export.py --sizes 10000,1000000 [--formats csv,jsonl,xlsx] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sampling import Sampler  # noqa: E402
from bots.processes import descendants, rss_mb  # noqa: E402

FORMATS = ("csv", "jsonl", "xlsx")
CHUNK_ROWS = 20_000
WORKFLOW = """\
# The workflow of benchmarks/results_export.py: its cases are written straight into the ledger, never run.
name: results-bench
version: 1
systems: {target: {}}
input:
  case_ref: {type: string, pattern: "^T[0-9]+$"}
  account_number: {type: string, pattern: "^[0-9]{8}$", secret: true}
steps:
  - goto: /record/{{ case.case_ref }}
"""
SECRET_BASE = 90_000_000
"""Case ``n``'s account number is ``SECRET_BASE - n``: eight digits, and no other value of a case has eight
digits in a row (references have seven), so any eight-digit number in an export is a candidate leak."""
EIGHT_DIGITS = re.compile(rb"(?<![0-9])[0-9]{8}(?![0-9])")
XLSX_ROW = re.compile(rb"<row[ >]")
MASK = "••••••".encode()  # workflows.FIELD_MASK, as it is written in every format (UTF-8, unescaped)


# -- measuring --------------------------------------------------------------------------------------
class PeakRss(Sampler):
    """Samples the resident memory of a process and its children; keeps the peak (MB)."""

    def __init__(self, pid: int, interval_s: float = 0.02) -> None:
        super().__init__(interval_s)
        self.pid, self.peak_mb = pid, 0.0

    def sample(self) -> None:
        self.peak_mb = max(self.peak_mb, sum(rss_mb(p) for p in descendants(self.pid)))


@dataclass
class Run:
    """One run of a command: its peak resident memory (MB) and its wall-clock seconds."""

    peak_mb: float
    seconds: float


def measure(command: list[str], folder: Path) -> Run:
    """Run ``command`` to its end, sampling its memory.

    Raises:
        SystemExit: it failed (its standard error is shown).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOCLERK_LOG_LEVEL": "WARNING"}
    with tempfile.TemporaryFile(dir=folder) as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            with PeakRss(proc.pid) as memory:
                code = proc.wait(timeout=3600)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
        seconds = time.perf_counter() - started
        if code != 0:
            stderr.seek(0)
            raise SystemExit(f"results_export: {' '.join(command[2:])} exited with {code}: "
                             f"{stderr.read().decode(errors='replace').strip()[-500:]}")
    return Run(memory.peak_mb, seconds)


# -- the ledger -------------------------------------------------------------------------------------
def build_ledger(folder: Path, size: int) -> tuple[str, str]:
    """A SQLite ledger holding one batch of ``size`` finished cases; returns its URL and the batch's id."""
    from sqlalchemy import insert

    from orchestrator import Ledger
    from orchestrator.ledger.schema import transactions
    from workflows import load_workflow

    workflow_path = folder / "results-bench.yaml"
    workflow_path.write_text(WORKFLOW)
    loaded = load_workflow(workflow_path)
    url = f"sqlite:///{folder / f'ledger-{size}.db'}"
    ledger = Ledger(url)
    try:
        ledger.workflows.save(loaded)
        name, version = loaded.definition.name, loaded.definition.version
        batch_id = ledger.batches.create(name, loaded.digest, "cases.csv")
        common = {"workflow": name, "version": version, "digest": loaded.digest, "batch_id": batch_id,
                  "max_attempts": 3, "fence": 1, "published": 1, "history": "[]", "priority": 0}
        for start in range(1, size + 1, CHUNK_ROWS):
            now = time.time()
            rows = [case_row(n, now) | common for n in range(start, min(start + CHUNK_ROWS, size + 1))]
            with ledger.engine.begin() as conn:
                conn.execute(insert(transactions), rows)
        ledger.batches.finish_intake(batch_id, rejected=0, stopped=False, rows_read=size, accepted=size)
    finally:
        ledger.close()
    return url, batch_id


def case_row(n: int, now: float) -> dict[str, Any]:
    """Case ``n``'s own columns: done with a reference, or (one in ten) handed back with an error."""
    ref, account = f"T{n}", str(SECRET_BASE - n)
    row: dict[str, Any] = {"case_ref": ref, "payload": json.dumps({"case_ref": ref, "account_number": account}),
                           "attempts": 1, "created_at": now, "updated_at": now, "result_ref": None,
                           "output": None, "error_class": None, "error_message": None, "error_detail": None,
                           "evidence": None}
    if n % 10 == 0:
        row |= {"state": "business_exception", "error_class": "AccountClosed",
                "error_message": f"account {account} is closed; the case was handed back to a person",
                "error_detail": f'the portal answered:\n  "Account {account} was closed on 2024-03-01, '
                                f'no change made."\n  step 3 of 5 (goto)'}
    else:
        row |= {"state": "done", "result_ref": f"REF-{n:07d}",
                "output": json.dumps({"reference": f"REF-{n:07d}", "confirmation": f"address of {account} changed"})}
    if n % 100 == 1:
        row["evidence"] = json.dumps([f"evidence/{ref}/attempt-1/step-2.png", f"evidence/{ref}/attempt-1/page.html"])
    return row


# -- checking an export -----------------------------------------------------------------------------
@dataclass
class Check:
    """What an export file holds: data rows, account numbers left unmasked, masks."""

    rows: int
    secrets_shown: int
    masked: int


def check_export(path: Path, fmt: str, size: int) -> Check:
    """Data rows in the file, how many secret values show in it, and how many masks it holds."""
    if fmt == "xlsx":
        if not zipfile.is_zipfile(path):
            return Check(rows=0, secrets_shown=0, masked=0)
        with zipfile.ZipFile(path) as book:
            members = [m for m in book.namelist() if m.startswith("xl/worksheets/") or m == "xl/sharedStrings.xml"]
            if "xl/worksheets/sheet1.xml" not in members:
                return Check(rows=0, secrets_shown=0, masked=0)
            rows = shown = masked = 0
            for member in members:
                with book.open(member) as fh:
                    for piece in pieces(fh, b">"):  # no row tag, number or mask holds a '>': none is cut
                        if member == "xl/worksheets/sheet1.xml":
                            rows += len(XLSX_ROW.findall(piece))
                        shown += secrets_in(piece, size)
                        masked += piece.count(MASK)
            return Check(rows=rows - 1, secrets_shown=shown, masked=masked)
    with open(path, "rb") as fh:
        shown = masked = lines = 0
        for piece in pieces(fh, b"\n"):
            lines += piece.count(b"\n")
            shown += secrets_in(piece, size)
            masked += piece.count(MASK)
    if fmt == "jsonl":
        return Check(rows=lines, secrets_shown=shown, masked=masked)
    with open(path, newline="", encoding="utf-8") as text:
        records = sum(1 for _ in csv.reader(text))  # a quoted cell may span lines
    return Check(rows=records - 1, secrets_shown=shown, masked=masked)


def pieces(stream: IO[bytes], cut: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    """A binary stream in pieces of about ``size`` bytes, each ending just after a ``cut`` byte (but the last)."""
    carry = b""
    while chunk := stream.read(size):
        buffer = carry + chunk
        end = buffer.rfind(cut) + 1
        carry = buffer[end:]
        if end:
            yield buffer[:end]
    if carry:
        yield carry


def secrets_in(piece: bytes, size: int) -> int:
    """How many account numbers of the batch's cases show in ``piece``."""
    return sum(1 <= SECRET_BASE - int(found) <= size for found in EIGHT_DIGITS.findall(piece))


# -- the benchmark ----------------------------------------------------------------------------------
@dataclass
class Export:
    """One size and format: the medians of its runs, and the check of its file."""

    size: int
    format: str
    peak_mb: float
    added_mb: float
    seconds: float
    rows_per_s: float
    file_mb: float
    rows: int
    secrets_shown: int
    masked: int

    @property
    def correct(self) -> bool:
        # every case quotes its account number once: masked at least once per row
        return self.rows == self.size and self.secrets_shown == 0 and self.masked >= self.size


def export(folder: Path, url: str, batch_id: str, size: int, fmt: str, runs: int, bare_mb: float) -> Export:
    """Export the batch in ``fmt`` ``runs`` times through the command line; check the first file."""
    out = folder / f"results-{size}.{fmt}"
    command = [sys.executable, "-m", "orchestrator", "results", "export", batch_id, "--format", fmt,
               "--out", str(out), "--ledger", url]
    measured = [measure(command, folder)]
    check = check_export(out, fmt, size)  # once: every run writes the same file
    for _ in range(runs - 1):
        out.unlink()
        measured.append(measure(command, folder))
    peak = statistics.median(r.peak_mb for r in measured)
    seconds = statistics.median(r.seconds for r in measured)
    result = Export(size=size, format=fmt, peak_mb=round(peak, 1), added_mb=round(peak - bare_mb, 1),
                    seconds=round(seconds, 2), rows_per_s=round(size / seconds), file_mb=round(out.stat().st_size / 2**20, 2),
                    **asdict(check))
    out.unlink()
    return result


def ratios(exports: list[Export], formats: Iterable[str]) -> dict[str, dict[str, float]]:
    """Per format, the peak at the largest size over the peak at the smallest, and the growth in MB."""
    found: dict[str, dict[str, float]] = {}
    for fmt in formats:
        ours = sorted((e for e in exports if e.format == fmt), key=lambda e: e.size)
        if len(ours) >= 2:
            small, large = ours[0], ours[-1]
            found[fmt] = {"ratio": round(large.peak_mb / small.peak_mb, 3),
                          "growth_mb": round(large.peak_mb - small.peak_mb, 1)}
    return found


def print_table(bare: dict[str, float], exports: list[Export], flat: dict[str, dict[str, float]]) -> None:
    print(f"bare process (autoclerk --help): peak {bare['peak_mb']:.1f} MB, {bare['seconds']:.2f} s")
    print(f"{'cases':>11}  {'format':<6} {'peak MB':>8} {'+bare MB':>9} {'seconds':>8} {'rows/s':>9} "
          f"{'file MB':>8} {'rows':>11}  {'secrets shown':>13}  check")
    for e in exports:
        print(f"{e.size:>11,}  {e.format:<6} {e.peak_mb:>8.1f} {e.added_mb:>+9.1f} {e.seconds:>8.2f} "
              f"{e.rows_per_s:>9,.0f} {e.file_mb:>8.2f} {e.rows:>11,}  {e.secrets_shown:>13,}  "
              f"{'ok' if e.correct else 'WRONG'}")
    sizes = sorted({e.size for e in exports})
    for fmt, figures in flat.items():
        print(f"{fmt}: peak at {sizes[-1]:,} cases / peak at {sizes[0]:,} = {figures['ratio']} "
              f"({figures['growth_mb']:+.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="cases per batch, comma-separated")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated, of csv, jsonl, xlsx")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="End with one JSON object on the last line.")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    formats = [f.strip() for f in args.formats.split(",")]
    if unknown := [f for f in formats if f not in FORMATS]:
        parser.error(f"unknown format(s): {', '.join(unknown)}")
    from orchestrator.queue.results import XLSX_MAX_CASES

    exports: list[Export] = []
    build_s: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="autoclerk-export-bench-") as tmp:
        folder = Path(tmp)
        bare_runs = [measure([sys.executable, "-m", "orchestrator", "--help"], folder) for _ in range(args.runs)]
        bare = {"peak_mb": round(statistics.median(r.peak_mb for r in bare_runs), 1),
                "seconds": round(statistics.median(r.seconds for r in bare_runs), 2)}
        print(f"bare process: peak {bare['peak_mb']:.1f} MB", flush=True)
        for size in sizes:
            started = time.perf_counter()
            url, batch_id = build_ledger(folder, size)
            build_s[size] = round(time.perf_counter() - started, 1)
            print(f"{size:,} cases written to the ledger in {build_s[size]:.1f} s", flush=True)
            for fmt in formats:
                if fmt == "xlsx" and size > XLSX_MAX_CASES:
                    print(f"{size:,} cases: xlsx skipped (a sheet holds {XLSX_MAX_CASES:,} cases)", flush=True)
                    continue
                exports.append(export(folder, url, batch_id, size, fmt, args.runs, bare["peak_mb"]))
                e = exports[-1]
                print(f"{size:,} cases, {fmt}: peak {e.peak_mb:.1f} MB ({e.added_mb:+.1f} over bare), "
                      f"{e.seconds:.2f} s, {e.rows_per_s:,.0f} rows/s, {e.file_mb:.2f} MB", flush=True)
            for file in folder.glob(f"ledger-{size}.db*"):  # the next size needs the disk more than this one
                file.unlink()
    flat = ratios(exports, formats)
    correct = all(e.correct for e in exports)
    print_table(bare, exports, flat)
    if args.json:
        print(json.dumps({"sizes": sizes, "formats": formats, "runs": args.runs, "bare": bare, "build_s": build_s,
                          "exports": [asdict(e) | {"correct": e.correct} for e in exports], "ratios": flat,
                          "correct": correct}))
    if not correct:
        sys.exit(1)


if __name__ == "__main__":
    main()
