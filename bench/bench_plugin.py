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


def _one_import(policy: str) -> float:
    code = "import time; t=time.perf_counter(); import verl; print(time.perf_counter()-t)"
    env = {**os.environ, "VERL_USE_EXTERNAL_PLUGINS": policy}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def import_times() -> tuple[float, float]:
    """Medians with plugin discovery off and on, runs interleaved so machine drift hits both alike."""
    off, on = [], []
    for _ in range(REPEATS):
        off.append(_one_import("none"))
        on.append(_one_import("auto"))
    return statistics.median(off), statistics.median(on)


def plugin_module_time() -> float:
    """Cumulative import time of our entry-point module alone (``python -X importtime``), in seconds."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import qwenlong_verl.worker.plugin"], capture_output=True, text=True
    )
    for line in out.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == "qwenlong_verl.worker.plugin":
            return int(parts[1]) / 1e6
    raise RuntimeError("qwenlong_verl.worker.plugin not in -X importtime output")


def main() -> int:
    _one_import("auto")  # warm the file cache
    base, ours = import_times()
    added = ours - base
    print(f"import verl, plugins off : {base * 1000:8.1f} ms (median of {REPEATS})")
    print(f"import verl, with ours   : {ours * 1000:8.1f} ms")
    print(f"added by qwenlong-verl   : {added * 1000:8.1f} ms   (goal <= 300 ms) ratio {ours / base:.3f}x")
    module = plugin_module_time()
    print(f"qwenlong_verl.worker.plugin alone: {module * 1000:8.1f} ms   (python -X importtime, cumulative)")
    ok = added <= 0.3 and module <= 0.3
    for recipe in sorted((ROOT / "qwenlong_verl" / "recipes").glob("*.yaml")):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "qwenlong_verl.driver.cli", "plan", str(recipe)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        took = time.perf_counter() - start
        status = "ok" if out.returncode == 0 else "FAILED"
        print(f"plan {recipe.stem:<24}: {took:6.2f} s  {status}  (goal < 10 s)")
        ok = ok and out.returncode == 0 and took < 10
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
