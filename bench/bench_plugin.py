"""Cost of our entry point on `import verl` (goal: <= 0.3 s added) and of `plan` per shipped recipe (< 10 s).

Baseline in the same run: `import verl` with veRL's plugin discovery off (VERL_USE_EXTERNAL_PLUGINS=none).
Each figure is the median of several fresh interpreters.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 7


def import_time(policy: str) -> float:
    code = "import time; t=time.perf_counter(); import verl; print(time.perf_counter()-t)"
    env = {**os.environ, "VERL_USE_EXTERNAL_PLUGINS": policy}
    times = []
    for _ in range(REPEATS):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> int:
    import_time("auto")  # warm the file cache
    base = import_time("none")
    ours = import_time("auto")
    added = ours - base
    print(f"import verl, plugins off : {base * 1000:8.1f} ms (median of {REPEATS})")
    print(f"import verl, with ours   : {ours * 1000:8.1f} ms")
    print(f"added by qwenlong-verl   : {added * 1000:8.1f} ms   (goal <= 300 ms) ratio {ours / base:.3f}x")
    ok = added <= 0.3
    for recipe in sorted((ROOT / "recipes").glob("*.yaml")):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "qwenlong_verl.cli", "plan", str(recipe)], capture_output=True, text=True, cwd=ROOT
        )
        took = time.perf_counter() - start
        status = "ok" if out.returncode == 0 else "FAILED"
        print(f"plan {recipe.stem:<24}: {took:6.2f} s  {status}  (goal < 10 s)")
        ok = ok and out.returncode == 0 and took < 10
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
