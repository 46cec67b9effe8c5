"""``qwenlong-verl``: the command line (doctor, plan, and the commands later modules add).

Each command is a pair ``_add_<name>(subparsers)`` / ``_run_<name>(args) -> int``. Handlers import
their implementation lazily, so ``qwenlong-verl --help`` stays instant. Output goes through rich.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from qwenlong_verl import __version__

_console = None


def console():
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False, soft_wrap=False)
    return _console


def _json_object(text: str | None) -> dict | str:
    """A JSON-object option's value (``{}`` when absent), or the reason it is not one."""
    import json

    try:
        value = json.loads(text) if text else {}
    except ValueError as exc:
        return f"is not JSON: {exc}"
    return value if isinstance(value, dict) else "must be a JSON object"


def fail(message: str, code: int = 2) -> int:
    from rich.markup import escape

    console().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return code


# ----------------------------------------------------------------------------- doctor


def _add_doctor(sub) -> None:
    sub.add_parser("doctor", help="check veRL, our registrations and the optional GPU pieces")


def _run_doctor(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from qwenlong_verl.driver.doctor import broken, run_checks

    checks = run_checks()
    table = Table(title=f"qwenlong-verl {__version__} doctor", show_lines=False)
    for column in ("section", "check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for c in checks:
        status = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]missing[/]")
        table.add_row(c.section, c.item, status, escape(c.detail), escape(c.fix))
    console().print(table)
    bad = broken(checks)
    if bad:
        return fail("broken install: " + "; ".join(f"{c.item}: {c.fix or c.detail}" for c in bad), 1)
    console().print("[green]install OK[/] (GPU pieces are optional on a CPU machine)")
    return 0


# ----------------------------------------------------------------------------- plan


def _add_plan(sub) -> None:
    p = sub.add_parser("plan", help="compose and validate each phase's veRL config; print the launch commands")
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument("--show-config", action="store_true", help="also print each phase's full composed config")


def _run_plan(args) -> int:
    from rich.table import Table

    from qwenlong_verl.driver.plan import PlanError, plan_recipe
    from qwenlong_verl.driver.recipe import RecipeError, load_recipe

    try:
        recipe = load_recipe(args.recipe)
        plans = plan_recipe(recipe)
    except (RecipeError, PlanError) as exc:
        return fail(str(exc))

    from pathlib import Path

    table = Table(title=f"recipe {recipe.name}: {recipe.description}".rstrip(": "))
    for column in ("#", "phase", "input window", "output", "length", "train files", "data"):
        table.add_column(column)
    for plan in plans:
        ph = plan.phase
        length = f"{ph.total_training_steps} steps" if ph.total_training_steps else f"{ph.total_epochs} epochs"
        files = [str(f) for f in plan.config.data.train_files]  # what veRL will read (recipe or built by train)
        missing = [f for f in files if not Path(f).exists()]
        data = "[green]present[/]" if not missing else f"[yellow]{len(missing)} missing[/]"
        table.add_row(
            str(plan.index + 1),
            ph.name,
            f"{ph.max_prompt_length:,}",
            f"{ph.max_response_length:,}",
            length,
            ", ".join(files),
            data,
        )
    console().print(table)
    for plan in plans:
        console().print(f"\n[bold]phase {plan.index + 1} ({plan.phase.name})[/] — veRL config validated")
        console().print(plan.command_line, soft_wrap=True, markup=False)
        for note in plan.notes:
            console().print(f"  - {note}", soft_wrap=True, markup=False)
        if args.show_config:
            from omegaconf import OmegaConf

            console().print(OmegaConf.to_yaml(plan.config), markup=False)
    return 0


# ----------------------------------------------------------------------------- synth / prepare


def _add_synth(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="generate verifiable long-context questions (jsonl that `prepare` reads)",
        description="Corpus-level numeric aggregation over many generated reports with tables, multi-hop chains "
        "across distant documents, multiple-choice variants and relevant-looking distractors; answers computed "
        "by construction. Same arguments, same bytes.",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="jsonl to write")
    p.add_argument("--n", type=int, required=True, help="number of examples")
    p.add_argument("--min-tokens", type=int, required=True, help="shortest target input length (builtin tokenizer)")
    p.add_argument("--max-tokens", type=int, required=True, help="longest target input length")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--tasks", metavar="LIST", help="comma list of numeric, choice, qa (default: all three in turn)")


def _run_synth(args) -> int:
    import time

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from qwenlong_verl.common.tasks import UnknownTaskError
    from qwenlong_verl.driver.data.synth import SynthError, synth

    start = time.perf_counter()
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console(), transient=True) as bar:
            job = bar.add_task("synth", total=args.n)
            stats = synth(
                args.out,
                args.n,
                args.min_tokens,
                args.max_tokens,
                seed=args.seed,
                tasks=args.tasks,
                progress=lambda done, _total: bar.update(job, completed=done),
            )
    except (SynthError, UnknownTaskError) as exc:
        return fail(str(exc))
    took = time.perf_counter() - start
    console().print(
        f"wrote [bold]{stats.examples} examples[/] to {escape(stats.path)}: {stats.document_tokens:,} document tokens "
        f"in {took:.1f} s; tasks {', '.join(f'{k} {v}' for k, v in stats.tasks.items())}; "
        f"kinds {', '.join(f'{k} {v}' for k, v in sorted(stats.kinds.items()))}",
        soft_wrap=True,
    )
    return 0


def _add_prepare(sub) -> None:
    p = sub.add_parser(
        "prepare",
        help="validate records, count prompt tokens as veRL will, write one parquet per phase window",
        description="Reads jsonl/json/parquet (raw records or veRL rows such as DocQA-RL-1.6K), drops and lists bad "
        "rows by file and row (--strict: fails instead), and writes DIR/phase<N>.parquet (disjoint length bins), "
        "DIR/stats.json and DIR/lengths.png.",
    )
    p.add_argument("--input", nargs="+", action="extend", required=True, metavar="FILE", help="jsonl, json or parquet")
    p.add_argument("--output", required=True, metavar="DIR", help="output directory")
    p.add_argument(
        "--tokenizer", default="builtin", metavar="NAME_OR_PATH", help="the policy's tokenizer (default: builtin)"
    )
    p.add_argument(
        "--phases", default="20000,60000", help="increasing input windows in tokens (default 20000,60000; 20k works)"
    )
    p.add_argument("--strict", action="store_true", help="write nothing if any row is bad (default: drop and count)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="token-counting processes (default 1: in-process, the tokenizer's threads already use every core)",
    )
    p.add_argument(
        "--chat-template-kwargs",
        metavar="JSON",
        help="must equal data.apply_chat_template_kwargs of training, e.g. '{\"enable_thinking\": false}'",
    )
    p.add_argument("--no-plot", action="store_true", help="skip lengths.png")


def _run_prepare(args) -> int:

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from qwenlong_verl.driver.data.prepare import BadRowsError, PrepareError, prepare
    from qwenlong_verl.driver.data.tokenizer import TokenizerLoadError

    kwargs = _json_object(args.chat_template_kwargs)
    if isinstance(kwargs, str):
        return fail(f"--chat-template-kwargs {kwargs}")
    columns = (TextColumn("counting tokens"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console(), transient=True) as bar:
            job = bar.add_task("count", total=None)
            stats = prepare(
                args.input,
                args.output,
                tokenizer=args.tokenizer,
                phases=args.phases,
                strict=args.strict,
                workers=args.workers,
                apply_chat_template_kwargs=kwargs,
                plot=not args.no_plot,
                progress=lambda done, total: bar.update(job, completed=done, total=total),
            )
    except BadRowsError as exc:
        return fail(str(exc), 1)
    except (PrepareError, TokenizerLoadError) as exc:
        return fail(str(exc))
    for problem in stats.problems[:20]:
        console().print(f"[yellow]dropped[/] ({problem.reason}) {escape(str(problem))}", soft_wrap=True)
    if len(stats.problems) > 20:
        console().print(f"[yellow]... and {len(stats.problems) - 20} more (all in stats.json)[/]")
    table = Table(title=f"{escape(stats.output_dir)} (tokenizer {escape(stats.tokenizer)})")
    for column in ("phase", "window (tokens)", "rows", "tasks", "min", "p50", "p90", "max", "file"):
        table.add_column(column)
    for p in stats.phase_stats:
        t = p.tokens
        table.add_row(
            str(p.phase),
            f"({p.min_exclusive:,}, {p.max_inclusive:,}]",
            str(p.rows),
            ", ".join(f"{k} {v}" for k, v in p.tasks.items()),
            *(f"{t[k]:,}" if t else "-" for k in ("min", "p50", "p90", "max")),
            p.file,
        )
    console().print(table)
    dropped = ", ".join(f"{k} {v}" for k, v in stats.dropped.items()) or "none"
    console().print(f"{stats.rows_written} of {stats.rows_read} rows written; dropped: {dropped}", soft_wrap=True)
    return 0


# ----------------------------------------------------------------------------- sft-data


def _add_sft_data(sub) -> None:
    p = sub.add_parser("sft-data", help="QA triplets (raw records or prepared RL rows) to veRL's SFT parquet")
    p.add_argument("--input", nargs="+", action="extend", required=True, metavar="FILE", help="jsonl, json or parquet")
    p.add_argument("--output", required=True, metavar="FILE", help="the SFT parquet to write (data.train_files)")
    p.add_argument("--tokenizer", help="count tokens and check the chat template: 'builtin', a folder or a hub name")
    p.add_argument(
        "--max-length", type=int, help="drop chats longer than this (the SFT data.max_length); needs --tokenizer"
    )
    p.add_argument(
        "--chat-template",
        metavar="FILE",
        help="Jinja chat template replacing the tokenizer's (model.custom_chat_template)",
    )
    p.add_argument(
        "--chat-template-kwargs",
        metavar="JSON",
        help="must equal data.apply_chat_template_kwargs of the SFT run, e.g. '{\"enable_thinking\": true}'",
    )
    p.add_argument("--no-traces", action="store_true", help="answer-only assistant turns even where traces exist")
    p.add_argument(
        "--strict", action="store_true", help="write nothing if any row is bad (default: drop bad rows and list them)"
    )


def _run_sft_data(args) -> int:

    from rich.markup import escape

    from qwenlong_verl.driver.data.sft import SftDataError, convert
    from qwenlong_verl.driver.data.tokenizer import TokenizerLoadError

    kwargs = _json_object(args.chat_template_kwargs)
    if isinstance(kwargs, str):
        return fail(f"--chat-template-kwargs {kwargs}")
    try:
        template = None
        if args.chat_template:
            from pathlib import Path

            try:
                template = Path(args.chat_template).read_text(encoding="utf-8")
            except OSError as exc:
                raise SftDataError(f"--chat-template {args.chat_template}: {exc.strerror}") from None
        stats = convert(
            args.input,
            args.output,
            tokenizer=args.tokenizer,
            max_length=args.max_length,
            strict=args.strict,
            traces=not args.no_traces,
            apply_chat_template_kwargs=kwargs,
            chat_template=template,
        )
    except (SftDataError, TokenizerLoadError) as exc:
        return fail(str(exc))
    for problem in stats.problems[:20]:
        console().print(f"[yellow]dropped[/] {escape(str(problem))}", soft_wrap=True)
    if len(stats.problems) > 20:
        console().print(f"[yellow]... and {len(stats.problems) - 20} more dropped rows[/]")
    tasks = ", ".join(f"{k} {v}" for k, v in stats.tasks.items())
    console().print(
        f"wrote [bold]{stats.rows_written}[/] of {stats.rows_read} rows to {escape(stats.output)} "
        f"({stats.with_trace} with a reasoning trace; {tasks})",
        soft_wrap=True,
    )
    if stats.tokens:
        t = stats.tokens
        console().print(f"chat tokens: min {t['min']}, p50 {t['p50']}, p90 {t['p90']}, max {t['max']}")
    if stats.dropped:
        console().print("dropped: " + ", ".join(f"{k} {v}" for k, v in stats.dropped.items()))
    return 0


# ----------------------------------------------------------------------------- eval / report


def _add_eval(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a served policy on local benchmark files, scored like training; writes a report",
        description="Sample an OpenAI-compatible endpoint (e.g. `vllm serve`) on benchmark files, score each sample "
        "with the training reward, and write OUT/report/. Rerun the same command to resume.",
    )
    p.add_argument(
        "--model-url", required=True, metavar="URL", help="OpenAI-compatible base URL, e.g. http://HOST:8000/v1"
    )
    p.add_argument("--model", required=True, metavar="NAME", help="served model name")
    p.add_argument(
        "--bench",
        required=True,
        nargs="+",
        action="extend",
        metavar="NAME_OR_FILE",
        help="benchmark name, file, or NAME=FILE",
    )
    p.add_argument("--n", type=int, default=1, metavar="K", help="samples per item; pass@k for k=1,2,4..K (default 1)")
    p.add_argument("--out", required=True, metavar="DIR", help="eval folder (resumed if it exists)")
    p.add_argument("--judge-url", nargs="+", action="extend", default=[], metavar="URL", help="LLM-judge endpoint(s)")
    p.add_argument("--judge-model", metavar="NAME", help="judge model name (default: the endpoint's first model)")
    p.add_argument("--judge-timeout", type=float, metavar="S", help="timeout of one judge request in seconds")
    p.add_argument("--judge-concurrency", type=int, metavar="N", help="judge requests in flight per endpoint")
    p.add_argument(
        "--max-input-tokens", type=int, metavar="N", help="middle-truncate documents so prompts fit N tokens"
    )
    p.add_argument(
        "--tokenizer", metavar="NAME_OR_PATH", help="the served model's tokenizer ('builtin', folder, hub name)"
    )
    p.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="generation requests in flight (default 16)"
    )
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus mass (default 0.95)")
    p.add_argument(
        "--max-tokens", type=int, default=10000, metavar="N", help="output budget per sample (default 10000)"
    )
    p.add_argument("--timeout", type=float, default=1800.0, metavar="S", help="per-request timeout (default 1800 s)")
    p.add_argument("--max-retries", type=int, default=4, metavar="N", help="retries of a transient failure (default 4)")
    p.add_argument("--seed", type=int, help="per-sample seeds derived from this seed (reproducible samples)")
    p.add_argument("--extra-body", metavar="JSON", help="extra request fields, e.g. '{\"top_k\": 20}'")
    p.add_argument("--api-key", help="bearer token (default $QWENLONG_EVAL_API_KEY or $OPENAI_API_KEY)")
    p.add_argument(
        "--data-dir", metavar="DIR", help="where --bench NAME looks (default $QWENLONG_EVAL_DATA or data/eval)"
    )
    p.add_argument("--loong-doc-dir", metavar="DIR", help="Loong's data/doc folder (default: doc/ next to loong.jsonl)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N items of each benchmark")
    p.add_argument(
        "--length-buckets", default="4k,8k,16k,32k,64k,128k", metavar="EDGES", help="input-length bucket edges"
    )
    p.add_argument("--rescore", action="store_true", help="score every sample again (after changing the judge)")


class _EvalProgress:
    """Rich progress bars for the runner's stages."""

    def __init__(self, progress):
        self.progress = progress
        self.tasks = {}

    def stage(self, name: str, total: int) -> None:
        self.tasks[name] = self.progress.add_task(name, total=total)

    def advance(self, name: str, amount: int = 1) -> None:
        self.progress.advance(self.tasks[name], amount)


def _print_eval_summary(rows, report_dir) -> None:
    from rich.markup import escape
    from rich.table import Table

    from qwenlong_verl.driver.eval.report import summary_cells, summary_columns, table_ks

    if not rows:
        return
    ks = table_ks(rows[0].n)
    table = Table(title="evaluation summary")
    for column in summary_columns(ks):
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for row in rows:
        style = "bold" if row.name == "average" else ("dim" if "/" in row.name else None)
        table.add_row(*summary_cells(row, ks), style=style)
    console().print(table)
    judge_failures = sum(r.judge_failures for r in rows if r.name != "average" and "/" not in r.name)
    if judge_failures:
        console().print(
            f"[yellow]warning:[/] the judge failed on {judge_failures} samples (the rule decided them); "
            "see judge_error in scores.jsonl, fix the judge and rerun with --rescore",
            soft_wrap=True,
        )
    console().print(f"report: {escape(str(report_dir / 'README.md'))}", soft_wrap=True)


def _run_eval(args) -> int:
    import json
    import os

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qwenlong_verl.driver.eval.benchmarks import BenchmarkFormatError
    from qwenlong_verl.driver.eval.generate import GenerationConfig, GenerationSetupError
    from qwenlong_verl.driver.eval.runner import EvalConfig, EvalConfigError, run_eval
    from qwenlong_verl.driver.eval.scoring import parse_length_edges
    from qwenlong_verl.driver.eval.store import StoreError

    try:
        extra = json.loads(args.extra_body) if args.extra_body else {}
        if not isinstance(extra, dict):
            raise ValueError("--extra-body must be a JSON object")
        generation = GenerationConfig(
            base_url=args.model_url,
            model=args.model,
            temperature=args.temperature,
            top_p=args.top_p,
            max_tokens=args.max_tokens,
            concurrency=args.concurrency,
            timeout_s=args.timeout,
            max_retries=args.max_retries,
            api_key=args.api_key or os.environ.get("QWENLONG_EVAL_API_KEY") or os.environ.get("OPENAI_API_KEY"),
            seed=args.seed,
            extra_body=extra,
        )
        config = EvalConfig(
            benches=args.bench,
            out=args.out,
            generation=generation,
            n=args.n,
            data_dir=args.data_dir,
            loong_doc_dir=args.loong_doc_dir,
            limit=args.limit,
            tokenizer=args.tokenizer,
            max_input_tokens=args.max_input_tokens,
            judge_urls=args.judge_url,
            judge_model=args.judge_model,
            judge_timeout_s=args.judge_timeout,
            judge_concurrency=args.judge_concurrency,
            length_edges=parse_length_edges(args.length_buckets),
            rescore=args.rescore,
        )
        columns = (TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console(), transient=False) as progress:
            result = run_eval(config, _EvalProgress(progress))
    except (BenchmarkFormatError, EvalConfigError, GenerationSetupError, StoreError, ValueError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        console().print(
            f"[yellow]interrupted[/]: finished samples are saved in {escape(str(args.out))}; "
            "rerun the same command to resume",
            soft_wrap=True,
        )
        return 130
    stats = result.generation
    console().print(
        f"{result.items} items ({result.truncated} truncated); drew {stats.ok} new samples "
        f"({stats.retries} retries), scored {result.scored}",
        soft_wrap=True,
    )
    _print_eval_summary(result.rows, result.report_dir)
    code = 0
    if result.failed_samples:
        for message, count in sorted(stats.errors.items(), key=lambda kv: -kv[1])[:5]:
            console().print(f"[red]{count} x[/] {escape(message)}", soft_wrap=True)
        code = fail(
            f"{result.failed_samples} samples failed (recorded in generations.jsonl, counted as wrong); "
            "rerun the same command to retry them",
            1,
        )
    if result.scoring_errors:
        code = fail(f"{result.scoring_errors} samples could not be scored (see the log); rerun to retry them", 1)
    return code


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="rebuild the report (markdown table, PNG plots) of an eval folder")
    p.add_argument("dir", metavar="DIR", help="an eval folder written by `qwenlong-verl eval`")


def _run_report(args) -> int:
    from qwenlong_verl.driver.eval.report import build_report
    from qwenlong_verl.driver.eval.store import StoreError

    try:
        rows, _, report_dir = build_report(args.dir)
    except (StoreError, KeyError) as exc:
        return fail(f"{args.dir}: cannot build a report ({exc})")
    _print_eval_summary(rows, report_dir)
    return 0


# ----------------------------------------------------------------------------- score


def _add_score(sub) -> None:
    p = sub.add_parser(
        "score",
        help="score a JSONL file of responses with the hybrid reward (rules + optional LLM judge)",
        description="Score each line (data_source, response, ground_truth, extra_info) exactly as training does; "
        "print accuracy per task, judge calls and judge/rule disagreement.",
    )
    p.add_argument("--input", required=True, metavar="FILE", help="JSONL file, one response per line")
    p.add_argument("--output", metavar="FILE", help="write each line with its result under 'reward'")
    p.add_argument(
        "--judge-url",
        action="append",
        default=[],
        metavar="URL",
        help="OpenAI-compatible judge endpoint (repeat for several); default $QWENLONG_JUDGE_URLS",
    )
    p.add_argument("--judge-model", metavar="NAME", help="judge model name (default: what the endpoint lists)")
    p.add_argument("--judge-concurrency", type=int, metavar="N", help="requests in flight per endpoint (64)")
    p.add_argument("--judge-timeout", type=float, metavar="S", help="timeout of one judge request (30)")
    p.add_argument("--no-judge", action="store_true", help="rules only, even if a judge is configured")


def _run_score(args) -> int:
    import asyncio

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from qwenlong_verl.worker.rewards.hybrid import judge_config_for
    from qwenlong_verl.worker.rewards.keys import judge_kwargs as judge_kwargs_for
    from qwenlong_verl.worker.rewards.metrics import summarize_by_task
    from qwenlong_verl.worker.rewards.offline import ScoreInputError, load_rows, score_rows, write_results

    judge_kwargs = judge_kwargs_for(
        urls=args.judge_url,
        model=args.judge_model,
        timeout_s=args.judge_timeout,
        max_concurrency=args.judge_concurrency,
        enable=False if args.no_judge else None,
    )
    try:
        judge = judge_config_for(judge_kwargs)
        rows = load_rows(args.input)
    except (ValueError, ScoreInputError) as exc:
        return fail(str(exc))

    where = ", ".join(judge.urls) if judge is not None and judge.active else "off (rules only)"
    console().print(f"scoring {len(rows):,} responses from {escape(args.input)}; judge: {escape(where)}")
    bar_columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*bar_columns, console=console(), transient=False) as progress:
        bar = progress.add_task("score", total=len(rows))
        results = asyncio.run(score_rows(rows, judge_kwargs, on_done=lambda _i, _r: progress.advance(bar)))

    summary = summarize_by_task([row.task for row in rows], results)
    table = Table(title="hybrid reward")
    columns = ("samples", "accuracy", "rule acc", "judge calls", "judge flips", "judge errors", "no answer")
    table.add_column("task")
    for column in columns:
        table.add_column(column, justify="right")
    for task, s in summary.items():
        table.add_row(
            f"[bold]{task}[/]" if task == "all" else task,
            f"{s.samples:,}",
            f"{s.accuracy:.1%}",
            f"{s.rule_accuracy:.1%}",
            f"{s.judge_calls:,}",
            f"{s.judge_flips:,}",
            f"{s.judge_errors:,}",
            f"{s.no_answer:,}",
            end_section=task != "all" and list(summary)[-2] == task,
        )
    console().print(table)
    console().print("judge flips: the judge said right where the rule said wrong (judge/rule disagreement)")
    if args.output:
        write_results(args.output, rows, results)
        console().print(f"results written to {escape(args.output)}")
    return 0


# ----------------------------------------------------------------------------- train


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="run a recipe's phases in order, each one stock veRL run; rerun to resume after any interruption",
    )
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument(
        "--dry-run", action="store_true", help="build each phase's data and print its command; launch nothing"
    )
    p.add_argument(
        "--from-phase",
        type=int,
        metavar="K",
        help="start phase K (1-based) afresh: earlier phases must be done; outputs of K.. are moved aside",
    )
    p.add_argument("--output-dir", metavar="DIR", help="run folder (overrides the recipe's output_dir)")


def _run_train(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from qwenlong_verl.driver.plan import PlanError
    from qwenlong_verl.driver.recipe import RecipeError, load_recipe
    from qwenlong_verl.driver.run import TrainError, train

    def echo(line: str) -> None:
        style = "yellow" if line.startswith("warning:") else "cyan"
        console().print(f"[{style}]{escape(line)}[/]", soft_wrap=True)

    try:
        recipe = load_recipe(args.recipe)
        if args.output_dir:
            recipe.output_dir = args.output_dir
        reports = train(recipe, dry_run=args.dry_run, from_phase=args.from_phase, echo=echo)
    except (RecipeError, PlanError, TrainError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted; rerun the same command to resume", 130)
    if not args.dry_run:
        return 0
    table = Table(title=f"recipe {recipe.name} (dry run): {recipe.description}".rstrip(": "))
    for column in ("#", "phase", "status", "rows", "tasks", "train files", "model"):
        table.add_column(column, overflow="fold")
    for r in reports:
        tasks = ", ".join(f"{t} {n}" for t, n in r.tasks.items())
        rows = "" if r.rows is None else f"{r.rows:,}"
        table.add_row(str(r.number), r.name, r.status, rows, tasks, ", ".join(r.train_files), r.model_path)
    console().print(table)
    for r in reports:
        built = "data built, " if r.rows is not None else ""
        console().print(f"\n[bold]phase {r.number} ({r.name})[/] — {built}veRL config validated")
        if r.carry:
            console().print(r.carry, soft_wrap=True, markup=False)
        console().print(r.command_line, soft_wrap=True, markup=False)
        for note in r.notes:
            console().print(f"  - {note}", soft_wrap=True, markup=False)
    return 0


# ----------------------------------------------------------------------------- demo


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo", help="real two-phase training on the CPU: synth, prepare, veRL steps, retrospective, reward, report"
    )
    p.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo); rerun to resume")
    p.add_argument("--judge-url", action="append", default=[], help="LLM judge endpoint (default: rules only)")
    p.add_argument("--judge-model", default=None, help="model name the judge endpoint serves")


def _run_demo(args) -> int:
    from rich.table import Table

    from qwenlong_verl.driver.demo import run_demo
    from qwenlong_verl.worker.rewards.keys import judge_kwargs

    judge = judge_kwargs(urls=args.judge_url, model=args.judge_model) or None
    from qwenlong_verl.driver.plan import PlanError
    from qwenlong_verl.driver.recipe import RecipeError
    from qwenlong_verl.driver.run import TrainError

    try:
        result = run_demo(args.out, judge_kwargs=judge, step=lambda m: console().print(f"• {m}", soft_wrap=True))
    except (RecipeError, PlanError, TrainError) as exc:
        return fail(f"demo: {exc}")
    except KeyboardInterrupt:
        return fail("interrupted; rerun the same command to resume the training", 130)
    table = Table(title="hybrid reward on sample responses")
    for column in ("response", "n", "mean reward", "expected", "agree"):
        table.add_column(column)
    for r in result.reward_table:
        table.add_row(
            r["kind"], str(r["n"]), f"{r['mean_score']:.2f}", f"{r['expected']:.0f}", f"{r['agree']}/{r['n']}"
        )
    console().print(table)
    steps = ", ".join(f"{name} {n}" for name, n in result.steps.items())
    console().print(
        f"phases: {' + '.join(map(str, result.phase_rows))} rows; real veRL steps logged: {steps}; "
        f"{result.carried} hard phase-1 examples carried into phase 2 from the real ledger"
    )
    console().print(f"[bold green]report:[/] {result.report}")
    return 0


# ----------------------------------------------------------------------------- tiny-model


def _add_tiny_model(sub) -> None:
    p = sub.add_parser(
        "tiny-model",
        help="write a tiny random Qwen2 model with the builtin tokenizer (CPU runs, tests)",
        description="A seeded, random-initialised Qwen2 causal LM (2 layers, hidden 64) with the builtin tokenizer, "
        "loadable by transformers and veRL. Same seed, same bytes. --answers writes the variant whose responses "
        "are mostly one choice letter, so rewards vary within a group and gradients are non-zero.",
    )
    p.add_argument("--out", required=True, help="model folder to write (replaced atomically)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--answers", action="store_true", help="the varying-reward variant")


def _run_tiny_model(args) -> int:
    from qwenlong_verl.driver.data.tiny_model import write_tiny_model

    try:
        out = write_tiny_model(args.out, seed=args.seed, answers=args.answers)
    except (OSError, ValueError) as exc:
        return fail(f"tiny-model: {exc}")
    console().print(f"wrote {'answers ' if args.answers else ''}tiny model (seed {args.seed}) to {out}")
    return 0


# ----------------------------------------------------------------------------- entry point

_COMMANDS: dict[str, tuple[Callable, Callable]] = {
    "doctor": (_add_doctor, _run_doctor),
    "plan": (_add_plan, _run_plan),
    "synth": (_add_synth, _run_synth),
    "prepare": (_add_prepare, _run_prepare),
    "sft-data": (_add_sft_data, _run_sft_data),
    "eval": (_add_eval, _run_eval),
    "report": (_add_report, _run_report),
    "score": (_add_score, _run_score),
    "train": (_add_train, _run_train),
    "demo": (_add_demo, _run_demo),
    "tiny-model": (_add_tiny_model, _run_tiny_model),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwenlong-verl", description="QwenLong long-context RL on stock veRL")
    parser.add_argument("--version", action="version", version=f"qwenlong-verl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in _COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return _COMMANDS[args.command][1](args)


if __name__ == "__main__":
    sys.exit(main())
