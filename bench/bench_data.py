"""Data throughput: ``synth`` (goal >= 1M document tokens per minute) and ``prepare`` token counting.

Baselines measured in the same run:

* synth vs *the builtin tokenizer alone* encoding the very same documents: the cost of merely measuring the
  text, while synth generates, measures and writes it.
* prepare in-process (the default: the tokenizer's Rust threads encode each batch on every core) vs with a
  2-worker process pool, on the synth output, with the same bytes written; goal: the default counts >= 5M prompt
  tokens per minute, start-up included (DocQA-RL-1.6K, ~50M tokens, in about 10 minutes on 2 cores).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

SYNTH_GOAL = 1_000_000  # document tokens per minute
PREPARE_GOAL = 5_000_000  # prompt tokens per minute, default (in-process) path


def main() -> int:
    from qwenlong_verl.driver.data.prepare import prepare
    from qwenlong_verl.driver.data.synth import synth
    from qwenlong_verl.driver.data.synth.tokens import count_tokens

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "synth.jsonl"
        synth(Path(tmp) / "warm.jsonl", n=2, min_tokens=2000, max_tokens=3000, seed=1)  # tokenizer + filler pool
        start = time.perf_counter()
        stats = synth(out, n=120, min_tokens=20_000, max_tokens=60_000, seed=1)
        took = time.perf_counter() - start
        synth_rate = stats.document_tokens / took * 60

        texts = [d["text"] for line in out.open() for d in json.loads(line)["documents"]]
        start = time.perf_counter()
        counted = sum(sum(count_tokens(texts[i : i + 256])) for i in range(0, len(texts), 256))
        base = counted / (time.perf_counter() - start) * 60
        print(f"synth: {stats.examples} examples, {stats.document_tokens:,} document tokens in {took:.2f} s")
        print(f"synth                      : {synth_rate / 1e6:8.2f} M tokens/min   (goal >= {SYNTH_GOAL / 1e6:.0f} M)")
        print(
            f"baseline: tokenizer alone  : {base / 1e6:8.2f} M tokens/min   ratio synth/baseline {synth_rate / base:.2f}"
        )
        ok &= synth_rate >= SYNTH_GOAL

        rates = {}
        for workers in (1, 2):
            start = time.perf_counter()
            result = prepare(
                [str(out)],
                str(Path(tmp) / f"p{workers}"),
                "builtin",
                phases=[30_000, 61_000],
                workers=workers,
                plot=False,
            )
            took = time.perf_counter() - start
            tokens = sum(p.tokens["mean"] * p.rows for p in result.phase_stats if p.rows)
            rates[workers] = tokens / took * 60
            print(
                f"prepare, {workers} worker(s)       : {rates[workers] / 1e6:8.2f} M tokens/min   "
                f"({took:.2f} s, {result.rows_written} rows)"
            )
        same = all(
            (Path(tmp) / "p1" / name).read_bytes() == (Path(tmp) / "p2" / name).read_bytes()
            for name in ("phase1.parquet", "phase2.parquet", "stats.json")
        )
        print(
            f"prepare pool / in-process  : ratio {rates[2] / rates[1]:.2f}x, identical output: {same}   "
            f"(goal in-process >= {PREPARE_GOAL / 1e6:.0f} M)"
        )
        ok &= same and rates[1] >= PREPARE_GOAL
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
