"""The report folder: ``README.md`` (tables), ``summary.json`` (the same numbers for scripts) and the PNG plots.

Benchmarks whose published metric is an LLM rating (Loong) get a rating section: mean rating and perfect rate
beside accuracy, for the benchmark and per group (task type, length set), and a plot of them.

Everything is rebuilt from the eval folder's files (``qwenlong-verl report DIR``), never from memory, so a
report always shows exactly what the folder holds — including an interrupted run's unfinished samples.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from qwenlong_verl.common.files import atomic_folder
from qwenlong_verl.common.openai_client import redact
from qwenlong_verl.driver.eval.agent_report import (
    Comparison,
    MemorySummary,
    agent_label,
    compare_runs,
    memory_summary,
)
from qwenlong_verl.driver.eval.benchmarks.registry import rating_specs
from qwenlong_verl.driver.eval.rating import RatingRow, RatingSpec, rating_rows
from qwenlong_verl.driver.eval.scoring import (
    DEFAULT_LENGTH_EDGES,
    BucketRow,
    FolderResults,
    GroupSummary,
    default_ks,
    length_buckets,
    outcomes,
    summarize,
)
from qwenlong_verl.driver.eval.store import (
    EvalFolder,
    StoreError,
    latest_by_key,
    latest_generations,
    read_jsonl,
    write_json,
)

logger = logging.getLogger(__name__)

BENCHMARK_PLOT = "accuracy_by_benchmark.png"
LENGTH_PLOT = "accuracy_by_length.png"
RATING_PLOT = "rating_by_group.png"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def summary_columns(ks: Sequence[int]) -> list[str]:
    return ["benchmark", "items", "n", "accuracy %", *[f"pass@{k} %" for k in ks], "rule only %", "no answer %"]


def summary_cells(row: GroupSummary, ks: Sequence[int]) -> list[str]:
    """The short table (CLI and report): accuracy, pass@k, rule-only accuracy, extraction failures."""
    return [
        row.name,
        str(row.items),
        str(row.n),
        _pct(row.accuracy),
        *[_pct(row.pass_at.get(k)) for k in ks],
        _pct(row.rule_accuracy),
        _pct(row.extraction_failures),
    ]


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def table_ks(n: int) -> list[int]:
    """pass@k columns shown in tables: pass@1 and pass@n (summary.json has every power of two)."""
    return sorted({1, n})


def render_markdown(
    manifest: Mapping[str, Any],
    rows: Sequence[GroupSummary],
    buckets: Sequence[BucketRow],
    plots: Sequence[str],
    ratings: Sequence[RatingRow] = (),
    specs: Mapping[str, RatingSpec] | None = None,
    sections: Sequence[str] = (),
) -> str:
    """The README; ``sections``: markdown lines placed after the input-length table (agent sections)."""
    n = int(manifest["n"])
    ks = table_ks(n)
    gen = manifest.get("generation", {})
    judge = manifest.get("judge") or {}
    out = [f"# Evaluation report: {gen.get('model', '?')}", ""]
    settings = [
        ("endpoint", redact(str(gen.get("base_url")))),  # a manifest edited by hand may hold credentials
        ("samples per item (n)", n),
        ("temperature / top_p", f"{gen.get('temperature')} / {gen.get('top_p')}"),
        ("max output tokens", gen.get("max_tokens")),
        ("max input tokens", manifest.get("max_input_tokens") or "no truncation"),
        ("tokenizer", manifest.get("tokenizer") or "none (server-reported lengths)"),
        ("agent", agent_label(manifest)),
        ("judge", redact(", ".join(map(str, judge.get("judge_urls", [])))) or "none (rule only)"),
        ("benchmarks", ", ".join(manifest.get("benchmarks", {}))),
        ("report built", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    out += [f"- **{k}**: {v}" for k, v in settings] + [""]
    unfinished = sum(r.unfinished for r in rows if r.name != "average" and "/" not in r.name)
    if unfinished:
        out += [
            f"> **Incomplete:** {unfinished} samples have no generation or no score yet (failed or interrupted); "
            "they count as wrong. Rerun the same `qwenlong-verl eval` command to finish them.",
            "",
        ]
    out += ["## Accuracy per benchmark", ""]
    out.append(_markdown_table(summary_columns(ks), [summary_cells(r, ks) for r in rows]))
    out += _rating_section(manifest, ratings, specs or {})
    out += ["", "## Failures and lengths", ""]
    header = [
        "benchmark",
        "failed requests",
        "unscored",
        "judge errors",
        "response tokens mean / median / max",
        "cut at max tokens %",
        "input tokens mean",
        "truncated items",
    ]
    cells = [
        [
            r.name,
            str(r.request_failures),
            str(r.unfinished - r.request_failures),
            str(r.judge_failures),
            f"{_num(r.response_tokens_mean)} / {_num(r.response_tokens_median)} / {_num(r.response_tokens_max)}",
            _pct(r.cut_at_max_tokens),
            _num(r.input_tokens_mean),
            str(r.truncated_items),
        ]
        for r in rows
    ]
    out.append(_markdown_table(header, cells))
    out += ["", "## Accuracy by input length (tokens)", ""]
    if buckets:
        benches = list(dict.fromkeys(b.benchmark for b in buckets))
        labels = list(dict.fromkeys(b.label for b in sorted(buckets, key=lambda b: b.lo)))
        index = {(b.label, b.benchmark): b for b in buckets}
        table = []
        for label in labels:
            row = [label]
            for bench in benches:
                b = index.get((label, bench))
                row.append(f"{_pct(b.accuracy)} ({b.items})" if b else "–")
            table.append(row)
        out.append(_markdown_table(["input tokens", *[f"{b} % (items)" for b in benches]], table))
    else:
        out.append("No input lengths known (no tokenizer and no server-reported prompt tokens).")
    out += [""]
    out += sections
    for plot in plots:
        out += [f"![{Path(plot).stem.replace('_', ' ')}]({plot})", ""]
    out += [
        "## Definitions",
        "",
        "- **accuracy**: share of all items × n samples judged correct by the training reward "
        "(rule verifier, then the LLM judge where the rule says wrong); unfinished samples count as wrong.",
        "- **pass@k**: unbiased estimator 1 − C(n−c, k) / C(n, k) per item (c correct of n), averaged over items.",
        "- **rule only**: accuracy of the rule verifier alone; the difference to accuracy is what the judge added.",
        "- **no answer**: share of scored samples from which no final answer could be extracted.",
        "- **average**: unweighted mean over benchmarks, as reported in the QwenLong papers.",
        *(
            [
                "- **mean rating**: mean LLM rating (0-100) of the rated samples; **perfect**: share of rated "
                "samples rated 100 (Loong's perfect rate); **rated**: samples with a rating of all items × n "
                "(unrated ones — rater errors, failed generations — are left out of both, as Loong does).",
            ]
            if specs
            else []
        ),
        "",
    ]
    return "\n".join(out)


def _rating_section(
    manifest: Mapping[str, Any], ratings: Sequence[RatingRow], specs: Mapping[str, RatingSpec]
) -> list[str]:
    """One table per rated benchmark: the benchmark, then each group (task type, length set)."""
    out: list[str] = []
    judge = manifest.get("judge") or {}
    for bench, spec in specs.items():
        mine = [r for r in ratings if r.benchmark == bench]
        out += ["", f"## LLM rating: {bench}", "", f"{spec.name}; source: {spec.source}.", ""]
        if manifest.get("rating") is False:
            out += ["Not rated by the last run (`--no-rating`); any ratings below are from earlier runs.", ""]
        elif not any(r.rated or r.rating_errors for r in mine):
            where = redact(", ".join(map(str, judge.get("judge_urls", []))))
            out += [
                f"No sample rated yet (rater: {where or 'the judge endpoint; none given'}). The rater is the judge "
                "endpoint: rerun `qwenlong-verl eval` with `--judge-url` (and `--judge-model`).",
                "",
            ]
        errors = sum(r.rating_errors for r in mine if r.group == "all")
        if errors:
            out += [f"> **{errors} samples unrated** (the rater failed); rerun the same command to rate them.", ""]
        header = ["group", "", "items", "rated / samples", "mean rating", "perfect %", "accuracy %", "rater errors"]
        cells = [
            [
                r.group,
                r.name,
                str(r.items),
                f"{r.rated} / {r.samples}",
                "–" if r.mean_rating is None else f"{r.mean_rating:.2f}",
                _pct(r.perfect_rate),
                _pct(r.accuracy),
                str(r.rating_errors),
            ]
            for r in mine
        ]
        out.append(_markdown_table(header, cells))
    return out


def _budget(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and value > 0 else "--max-tokens"


def _memory_section(summary: MemorySummary | None) -> list[str]:
    """Markdown lines of the memory-agent section (none for another agent's run)."""
    if summary is None:
        return []
    s = summary.settings
    mean = "–" if summary.generations_mean is None else f"{summary.generations_mean:.2f}"
    share = summary.memory_truncations / summary.memory_updates if summary.memory_updates else None
    out = [
        "## Memory agent",
        "",
        f"Each document was read in chunks of {s.get('chunk_tokens', 0):,} tokens with a memory of at most "
        f"{s.get('memory_tokens', 0):,} tokens"
        + (f" and a plan of {s['plan_tokens']:,}" if s.get("plan_tokens") else "")
        + (f", at most {s['max_chunks']} chunks" if s.get("max_chunks") else ", every chunk")
        + f" (tokenizer {s.get('tokenizer')}); a memory update may write {_budget(s.get('update_tokens'))} tokens, "
        f"the answer {_budget(s.get('answer_tokens'))}. A sample is K = ceil(document tokens / chunk) memory "
        "updates and one answer.",
        "",
        f"- **trajectories**: {summary.answered} of {summary.trajectories} answered "
        f"({summary.failed} failed, {summary.trajectories - summary.answered - summary.failed} unfinished)",
        f"- **generations**: {summary.generations:,} in the answered trajectories, {mean} per trajectory "
        f"(max {summary.generations_max if summary.generations_max is not None else '–'})",
        f"- **memory cut to its budget**: {summary.memory_truncations} of {summary.memory_updates} memory updates "
        f"({_pct(share)} %); documents cut at max chunks: {summary.documents_cut}",
        f"- **server-counted tokens**: {summary.prompt_tokens:,} prompt, {summary.completion_tokens:,} completion; "
        f"generations stopped at their token budget: {summary.cut_at_max_tokens}",
        "",
    ]
    cells = [
        [
            b.label,
            str(b.items),
            _pct(b.accuracy),
            str(b.answered),
            "–" if b.generations_mean is None else f"{b.generations_mean:.2f}",
            _pct(b.memory_truncated_share),
        ]
        for b in summary.buckets
    ]
    header = ["input tokens", "items", "accuracy %", "answered", "generations / trajectory", "memory cut %"]
    return [*out, _markdown_table(header, cells), ""]


def _compare_section(comparison: Comparison | None) -> list[str]:
    """Markdown lines of the comparison (none without ``--compare``)."""
    if comparison is None:
        return []
    c = comparison
    out = [
        f"## Beside {c.other}",
        "",
        f"This run: {c.agent}. Beside it: {c.other_agent}. Items in both: {c.common} "
        f"({c.only_here} only here, {c.only_there} only there), placed by the length of their whole input.",
        "",
    ]
    if not c.rows:
        return out + ["No item in common (compare runs of the same benchmark files).", ""]
    cells = [[r.label, str(r.items), _pct(r.accuracy), _pct(r.other_accuracy), str(r.other_truncated)] for r in c.rows]
    header = ["input tokens", "items", "this run %", "beside %", "truncated there"]
    return [*out, _markdown_table(header, cells), ""]


def plot_benchmarks(rows: Sequence[GroupSummary], n: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if "/" not in r.name]
    names = [r.name for r in shown]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) + 2), 4.2))
    xs = range(len(names))
    width = 0.4 if n > 1 else 0.6
    acc = [100 * r.accuracy for r in shown]
    ax.bar([x - (width / 2 if n > 1 else 0) for x in xs], acc, width, label="accuracy (pass@1)", color="#3b6ea8")
    if n > 1:
        best = [100 * r.pass_at.get(n, 0.0) for r in shown]
        ax.bar([x + width / 2 for x in xs], best, width, label=f"pass@{n}", color="#e39b3b")
    for x, v in zip(xs, acc, strict=True):
        ax.text(x - (width / 2 if n > 1 else 0), v + 1, f"{v:.1f}", ha="center", fontsize=8)
    ax.set_xticks(list(xs), names, rotation=30, ha="right")
    ax.set_ylim(0, 118)  # headroom for the legend above the 100 % line
    ax.set_yticks(range(0, 101, 20))
    ax.axhline(100, color="#999999", linewidth=0.5)
    ax.set_ylabel("%")
    ax.set_title("Accuracy per benchmark")
    ax.legend(loc="upper center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_lengths(buckets: Sequence[BucketRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(b.label for b in sorted(buckets, key=lambda b: b.lo)))
    pos = {label: i for i, label in enumerate(labels)}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) + 2), 4.2))
    overall = [b for b in buckets if b.benchmark == "all"]
    ax.bar([pos[b.label] for b in overall], [100 * b.accuracy for b in overall], 0.6, color="#cfd8e3", label="all")
    for b in overall:
        ax.text(
            pos[b.label], 100 * b.accuracy + 1, f"{b.items} item{'s' if b.items != 1 else ''}", ha="center", fontsize=7
        )
    for bench in dict.fromkeys(b.benchmark for b in buckets if b.benchmark != "all"):
        mine = sorted((b for b in buckets if b.benchmark == bench), key=lambda b: b.lo)
        ax.plot([pos[b.label] for b in mine], [100 * b.accuracy for b in mine], marker="o", label=bench)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, 125)  # headroom for the legend above the 100 % line
    ax.set_yticks(range(0, 101, 20))
    ax.axhline(100, color="#999999", linewidth=0.5)
    ax.set_xlabel("input tokens")
    ax.set_ylabel("accuracy %")
    ax.set_title("Accuracy by input length")
    ax.legend(fontsize=7, ncol=5, loc="upper center", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_ratings(ratings: Sequence[RatingRow], path: Path) -> None:
    """Mean rating and perfect rate of each rated benchmark and each of its groups."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in ratings if r.rated]
    names = [
        r.name if r.group == "all" or len({x.benchmark for x in shown}) == 1 else f"{r.benchmark}/{r.name}"
        for r in shown
    ]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(names) + 2), 4.6))
    xs = range(len(names))
    mean = [r.mean_rating or 0.0 for r in shown]
    perfect = [100 * (r.perfect_rate or 0.0) for r in shown]
    ax.bar([x - 0.2 for x in xs], mean, 0.4, label="mean rating (0-100)", color="#3b6ea8")
    ax.bar([x + 0.2 for x in xs], perfect, 0.4, label="perfect rate %", color="#e39b3b")
    for x, v in zip(xs, mean, strict=True):
        ax.text(x - 0.2, v + 1, f"{v:.0f}", ha="center", fontsize=7)
    ax.set_xticks(list(xs), names, rotation=30, ha="right")
    ax.set_ylim(0, 118)  # headroom for the legend above the 100 line
    ax.set_yticks(range(0, 101, 20))
    ax.axhline(100, color="#999999", linewidth=0.5)
    ax.set_title("LLM rating by task type and length set")
    ax.legend(loc="upper center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def read_results(root: str | Path) -> FolderResults:
    """Read an eval folder's items, latest generations and scores into outcomes (nothing is written)."""
    folder = EvalFolder(root)
    manifest = folder.read_manifest()
    if not folder.items.is_file():  # a manifest without items: a run killed before it recorded them, or damage
        raise StoreError(f"{folder.items} is missing; rerun `qwenlong-verl eval` with the same arguments first")
    n = int(manifest["n"])
    items = [it for it in folder.iter_items() if it["benchmark"] in manifest.get("benchmarks", {})]
    generations = latest_generations(read_jsonl(folder.generations))
    scores = latest_by_key(read_jsonl(folder.scores))
    # Without a tokenizer the input length is what the server counted.
    for it in items:
        if not isinstance(it.get("input_tokens"), int):
            counts = [
                g["prompt_tokens"]
                for k in range(n)
                if (g := generations.get((it["id"], k))) and isinstance(g.get("prompt_tokens"), int)
            ]
            if counts:
                it["input_tokens"] = max(counts)
    by_id = {it["id"]: it for it in items}
    return FolderResults(folder, manifest, n, items, generations, outcomes(by_id, generations, scores, n))


def build_report(
    root: str | Path, compare: str | Path | None = None
) -> tuple[list[GroupSummary], list[BucketRow], Path]:
    """Read an eval folder, write ``report/``; returns (summary rows, length buckets, report directory).

    ``compare``: another eval folder (e.g. a full-context run of the same benchmark) shown beside this one by
    input length, on the items both hold."""
    loaded = read_results(root)
    folder, manifest, n, items = loaded.folder, loaded.manifest, loaded.n, loaded.items
    generations, results = loaded.generations, loaded.results
    rows = summarize(items, results, n, default_ks(n))
    edges = manifest.get("length_edges") or DEFAULT_LENGTH_EDGES
    buckets = length_buckets(items, results, n, edges)
    specs = rating_specs(it["benchmark"] for it in items)
    ratings = rating_rows(items, results, generations, latest_by_key(read_jsonl(folder.ratings)), n, specs)
    memory = memory_summary(loaded, edges)
    comparison = compare_runs(loaded, read_results(compare), edges) if compare is not None else None

    out = folder.report_dir
    with atomic_folder(out) as new:  # a report is several files: all from this build, or the previous report
        plots = []
        if rows:
            plot_benchmarks(rows, n, new / BENCHMARK_PLOT)
            plots.append(BENCHMARK_PLOT)
        if buckets:
            plot_lengths(buckets, new / LENGTH_PLOT)
            plots.append(LENGTH_PLOT)
        if any(r.rated for r in ratings):
            plot_ratings(ratings, new / RATING_PLOT)
            plots.append(RATING_PLOT)
        sections = [*_memory_section(memory), *_compare_section(comparison)]
        readme = render_markdown(manifest, rows, buckets, plots, ratings, specs, sections)
        (new / "README.md").write_text(readme, encoding="utf-8", errors="backslashreplace")  # lone surrogates
        write_json(
            new / "summary.json",
            {
                "model": manifest.get("generation", {}).get("model"),
                "n": n,
                "benchmarks": [r.as_dict() for r in rows],
                "length_buckets": [b.__dict__ for b in buckets],
                "ratings": [r.__dict__ for r in ratings],
                **({"memory_agent": asdict(memory)} if memory is not None else {}),
                **({"compare": asdict(comparison)} if comparison is not None else {}),
            },
        )
    return rows, buckets, out
