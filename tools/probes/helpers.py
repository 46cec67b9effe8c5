"""Set-up the probes share: the commands they call (one builder per command, so every probe of ``eval`` runs the
same base command), good rows of each input schema, servers, and the checks that look inside what a command wrote
(were the bad rows left out, is everything else there)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from probes.core import Check, Ctx, Outcome
from probes.servers import MODEL, FakeServer

MARKER = "PROBEBAD"
"""Every bad row carries this text where it can: it must not reach any training row or score."""

DOC = (
    "Xland is a small country. The capital of Xland is Yville, a city on the river Zed. "
    "Yville has a population of about 40,000 people and hosts the national archive. "
) * 4

NO_RETRY = ("--max-retries", "0")
"""A failed request is not tried again (the fake servers answer at once or are meant to fail)."""

GOOD = 3
"""Good rows around each bad one."""


# ----------------------------------------------------------------------------- the commands probes call


def prepare_argv(input_name: str, output: str, *, plot: bool = False) -> list[str]:
    """``prepare`` with the builtin tokenizer and one window (fast, no hub); the plot only where a probe wants the
    run to last longer."""
    return ["prepare", "--input", input_name, "--output", output, "--tokenizer", "builtin", "--phases", "4096"] + (
        [] if plot else ["--no-plot"]
    )


def sft_argv(input_name: str, output: str, *extra: str) -> list[str]:
    return ["sft-data", "--input", input_name, "--output", output, *extra]


def score_argv(input_name: str, output: str) -> list[str]:
    """``score`` by the rule alone (no judge to reach)."""
    return ["score", "--input", input_name, "--output", output, "--no-judge"]


def synth_argv(out: str, n: int = 2, max_tokens: int = 1800) -> list[str]:
    return ["synth", "--out", out, "--n", str(n), "--min-tokens", "1500", "--max-tokens", str(max_tokens)]


def eval_argv(url: str, *extra: str, bench: str = "probe=raw.jsonl", out: str = "ev") -> list[str]:
    """``eval`` of one benchmark against the policy server at ``url``, without the rating step."""
    return ["eval", "--model-url", url, "--model", MODEL, "--bench", bench, "--out", out, "--no-rating", *extra]


def difficulty_argv(url: str, input_name: str, n: int, *extra: str) -> list[str]:
    """``difficulty`` of ``input_name`` with ``n`` samples a row from the policy server at ``url``, no retries."""
    return [
        "difficulty",
        "--input",
        input_name,
        "--model-url",
        url,
        "--model",
        MODEL,
        "--out",
        "dif",
        "--n",
        str(n),
        *NO_RETRY,
        *extra,
    ]


# ----------------------------------------------------------------------------- rows


def raw_record(i: int, marker: bool = False) -> dict[str, Any]:
    """A raw record (``prepare``, ``sft-data``, a generic ``eval`` benchmark); ``marker`` tags it as the bad one."""
    tag = f"{MARKER} " if marker else ""
    return {
        "id": f"{'bad' if marker else 'good'}-{i}",
        "documents": [{"title": "Xland almanac", "text": tag + DOC}],
        "question": f"{tag}What is the capital of Xland (variant {i})?",
        "answer": "Yville",
        "task": "qa",
    }


def score_record(i: int, marker: bool = False) -> dict[str, Any]:
    """A response to score (``score``)."""
    tag = f"{MARKER} " if marker else ""
    return {
        "data_source": "qwenlong_raw",
        "response": f"{tag}Reading the text. Therefore, the answer is Yville.",
        "ground_truth": "Yville",
        "extra_info": {"question": f"{tag}What is the capital of Xland (variant {i})?", "answer_type": "qa"},
    }


def good_rows(make: Callable[[int], dict], n: int = GOOD) -> list[dict]:
    return [make(i) for i in range(n)]


def jsonl_bytes(rows: Sequence[Any], newline: bytes = b"\n") -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + newline for r in rows)


def parquet_bytes(rows: list[dict]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


_PREPARED: dict[str, bytes] = {}


def prepared_rows_parquet() -> bytes:
    """A real ``prepare`` output bin of three good rows (built once per process, in-process)."""
    if "phase1" not in _PREPARED:
        import tempfile

        from probes.core import run_in_process

        with tempfile.TemporaryDirectory(prefix="probe-prepared-") as tmp:
            root = Path(tmp)
            (root / "raw.jsonl").write_bytes(jsonl_bytes(good_rows(raw_record)))
            outcome = run_in_process(prepare_argv("raw.jsonl", "out"), root)
            if outcome.rc != 0:
                raise RuntimeError(f"could not prepare the probe rows: {outcome.stderr[-400:]}")
            _PREPARED["phase1"] = (root / "out" / "phase1.parquet").read_bytes()
    return _PREPARED["phase1"]


def serve(ctx: Ctx, fault: str = "ok", **kwargs: Any) -> FakeServer:
    """A fake server for the length of the probe."""
    server = FakeServer(fault, **kwargs).__enter__()
    ctx.on_exit(lambda: server.__exit__(None, None, None))
    return server


# ----------------------------------------------------------------------------- looking inside outputs


def table_text(path: Path) -> str:
    """All text of a parquet or jsonl output (for marker searches)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return json.dumps(pq.read_table(path).to_pylist(), default=str)
    return path.read_text("utf-8", "replace")


def parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def rows_written(name: str, expected: int) -> Check:
    """The output ``name`` (parquet or jsonl, under the probe folder) holds exactly ``expected`` rows, none of
    them a bad one."""

    def check(ctx: Ctx, outcome: Outcome) -> str | None:
        if outcome.rc != 0:
            return None
        path = ctx.path(name)
        if not path.is_file():
            return f"{name} was not written"
        n = parquet_rows(path) if path.suffix == ".parquet" else sum(1 for ln in path.read_text().splitlines() if ln)
        if n != expected:
            return f"{name} holds {n} rows, expected the {expected} good ones"
        if MARKER in table_text(path):
            return f"a bad row reached {name}"
        return None

    return check


def prepare_dropped(folder: str, good: int, bad: int) -> Check:
    """``prepare`` wrote the ``good`` rows, counted ``bad`` dropped ones in stats.json, and no bad row is in a
    bin."""

    def check(ctx: Ctx, outcome: Outcome) -> str | None:
        if outcome.rc != 0:
            return None
        out = ctx.path(folder)
        try:
            stats = json.loads((out / "stats.json").read_text())
        except (OSError, ValueError) as exc:
            return f"{folder}/stats.json unreadable ({exc})"
        dropped = sum(stats.get("dropped", {}).values())
        if stats.get("rows_written") != good or dropped != bad:
            return f"stats.json says {stats.get('rows_written')} written, {dropped} dropped; expected {good} and {bad}"
        for path in out.glob("phase*.parquet"):
            if MARKER in table_text(path):
                return f"a bad row reached {path.name}"
        return None

    return check
