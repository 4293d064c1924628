"""Every benchmark, one table: ``python -m bench`` (or ``make bench``).

Runs the rule, ingest, scheduling, load, history, workbench, floor and ratio benchmarks in turn — each
in its own process, on SQLite and PostgreSQL where it measures a store — and prints one table of
the headline figures they report (figure, value, target, pass/FAIL), with each benchmark's exit
status. The detailed output of each is printed as it runs. ``--quick`` shortens every run (for a
smoke check; the figures of a quick run are not the ones to quote). Exit status: 1 if any benchmark broke.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench.figures import Figure, parse

ROOT = Path(__file__).resolve().parent.parent


def suite(quick: bool) -> list[tuple[str, list[str]]]:
    """(title, command arguments) of every benchmark, full or quick."""
    seconds = "5" if quick else "20"
    return [
        ("rules", ["bench.rules", "--patients", "5000" if quick else "100000"]),
        ("ingest", ["bench.ingest", "--database", "both", "--seconds", seconds, "--workers", "2"]),
        ("schedule", ["bench.schedule", *(["--patients", "5000"] if quick else [])]),
        ("load", ["bench.load", "--seconds", "10" if quick else "60", "--workers", "2"]),
        (
            "history",
            ["bench.history", "--days", "60" if quick else "365", "--repeat", "5" if quick else "20"],
        ),
        ("workbench", ["bench.workbench", "--patients", "300" if quick else "2000"]),
        ("floor", ["bench.floor", "--seconds", "3" if quick else "10"]),
        ("ratio", ["bench.ratio", "--seconds", "5" if quick else "20", "--repeat", "1" if quick else "3"]),
    ]


def run(title: str, arguments: list[str]) -> tuple[int, list[Figure], float]:
    print(f"\n=== {title}: python -m {' '.join(arguments)}", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", *arguments],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if not line.startswith("FIGURE\t"):
            print(line, end="", flush=True)
    status = process.wait()
    return status, parse("".join(lines)), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke check")
    parser.add_argument(
        "--only", nargs="*", help="run only these (rules ingest schedule load history workbench floor ratio)"
    )
    args = parser.parse_args(argv)
    results = []
    for title, arguments in suite(args.quick):
        if args.only and title not in args.only:
            continue
        results.append((title, *run(title, arguments)))
    rows = [
        (f"{title}: {f.name}", f.value, f.target, f.verdict)
        for title, _, figures, _ in results
        for f in figures
    ]
    rows += [(f"{title}: exit status ({seconds:.0f} s)", str(status), "0", "pass" if status == 0 else "FAIL")
             for title, status, _, seconds in results]  # fmt: skip
    widths = [max(len(row[i]) for row in [("figure", "value", "target", "")] + rows) for i in range(4)]
    print(
        "\n" + "  ".join(h.ljust(w) for h, w in zip(("figure", "value", "target", ""), widths, strict=True))
    )
    print("-" * (sum(widths) + 6))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 1 if any(status != 0 for _, status, _, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
