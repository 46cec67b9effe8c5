"""`make bench`: run every bench/bench_*.py in its own interpreter and print its figures."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for script in sorted(here.glob("bench_*.py")):
        print(f"\n=== {script.stem} ===", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], cwd=here.parent)
        print(f"({script.stem}: {time.perf_counter() - start:.1f} s, exit {code})", flush=True)
        if code:
            failed.append(script.stem)
    if failed:
        print(f"\nbenchmarks that missed their goal or failed: {', '.join(failed)}")
        return 1
    print("\nall benchmarks met their goals")
    return 0


if __name__ == "__main__":
    sys.exit(main())
