"""Run the hostile-input probes of the ``qwenlong-verl`` CLI and write a report.

    python tools/probe.py                         # every probe, one line of summary
    python tools/probe.py --only prepare/ --jobs 2 --report probe_report.md

Exit 1 when any probe is answered poorly or loses data. The catalogue is ``tools/probes/`` (one module per area).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "tests")]  # the probes, and the tests' local HTTP server

import probes  # noqa: E402
from probes.core import WELL  # noqa: E402
from probes.runner import run_probes, summary_line, write_report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="SUBSTR", action="append", help="probes whose name contains SUBSTR")
    parser.add_argument("--report", metavar="FILE.md", help="write the markdown report here")
    parser.add_argument("--jobs", type=int, default=2, metavar="N", help="worker processes (default 2)")
    parser.add_argument("--list", action="store_true", help="list the probes and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="a line per probe as it finishes")
    args = parser.parse_args(argv)
    selected = [p for p in probes.catalogue() if not args.only or any(s in p.name for s in args.only)]
    if args.list:
        for p in selected:
            sys.stdout.write(f"{p.name}\t{p.expect}\t{p.what}\n")
        return 0
    if not selected:
        parser.error(f"no probe matches {args.only}")

    def show(result) -> None:
        if args.verbose or result.verdict != WELL:
            sys.stdout.write(f"{result.verdict:>4}  {result.name}  ({result.seconds:.1f} s) {result.reason}\n")
            sys.stdout.flush()

    start = time.perf_counter()
    results = run_probes(selected, jobs=args.jobs, on_result=show)
    took = time.perf_counter() - start
    if args.report:
        write_report(args.report, results, took)
    sys.stdout.write(f"{summary_line(results)} ({took:.0f} s)\n")
    return 0 if all(r.verdict == WELL for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
