"""``qwenlong-verl eval``: load benchmarks, fit prompts, sample, score, report — resumable at every step.

A rerun with the same ``--out`` continues: finished samples are neither requested nor scored again, failed
ones are retried, ``--n`` may grow (only the new samples are drawn) and more benchmarks may be added. What
would silently mix two different experiments in one folder is refused: other sampling settings, or an item
whose prompt changed (other data, template, truncation) while samples of it exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.openai_client import redact
from qwenlong_verl.driver.data.schema import check_count
from qwenlong_verl.driver.eval.agents import AGENTS, FULL_CONTEXT
from qwenlong_verl.driver.eval.benchmarks import EvalItem, LoadOptions, load_benchmarks
from qwenlong_verl.driver.eval.generate import GenerationConfig, GenerationStats, pending_samples
from qwenlong_verl.driver.eval.report import build_report
from qwenlong_verl.driver.eval.scoring import BucketRow, GroupSummary, pending_scores, score
from qwenlong_verl.driver.eval.store import (
    EvalFolder,
    JsonlAppender,
    latest_by_key,
    latest_generations,
    read_jsonl,
    write_json,
    write_jsonl,
)
from qwenlong_verl.driver.eval.truncate import FittedPrompt
from qwenlong_verl.worker.agent.episode import DEFAULT_CHUNK_TOKENS, DEFAULT_MEMORY_TOKENS

logger = logging.getLogger(__name__)

MAX_SAMPLES = 4096
"""The most samples per item: pass@k curves need a few hundred; every pending sample is a request held in memory."""

MANIFEST_VERSION = 1

SAMPLING_KEYS = ("model", "temperature", "top_p", "max_tokens", "seed", "extra_body")
"""Generation settings that must not change within one eval folder."""


class EvalConfigError(InputError):
    """Settings or an eval folder that cannot be used; nothing was sent."""


@dataclass
class EvalConfig:
    """One ``eval`` run."""

    benches: list[str]
    """``--bench`` values: names, files, or ``NAME=FILE``."""

    out: Path
    """The eval folder (created; resumed when it exists)."""

    generation: GenerationConfig
    """Endpoint and sampling settings."""

    n: int = 1
    """Samples per item (pass@k is reported for k = 1, 2, 4, ... n)."""

    data_dir: str | None = None
    """Where ``--bench NAME`` looks for files (default ``$QWENLONG_EVAL_DATA`` or ``data/eval``)."""

    loong_doc_dir: str | None = None
    """Loong's ``data/doc`` folder (default: ``doc/`` next to the Loong jsonl)."""

    limit: int | None = None
    """First N items of each benchmark only."""

    tokenizer: str | None = None
    """Tokenizer to count and truncate with (the served model's); default the model name when truncating or with
    --agent memory (which cuts documents into chunks of its tokens)."""

    max_input_tokens: int | None = None
    """Prompt budget in tokens; longer documents are middle-truncated. None: send prompts whole."""

    judge_urls: list[str] = field(default_factory=list)
    """Judge endpoints for the hybrid reward; empty: the reward's own default (env or rule only)."""

    judge_model: str | None = None
    """Judge model name; None: ``$QWENLONG_JUDGE_MODEL``, else the first model the endpoint lists."""

    judge_timeout_s: float | None = None
    """Timeout of one judge request in seconds; None: the reward's own."""

    judge_concurrency: int | None = None
    """Judge requests in flight per endpoint; None: the reward's own."""

    judge_prompt: str | None = None
    """Judge prompt preset (``strict``, ``qwenlong_l1``, ``qwenlong_l15``); None: the reward's own (strict).
    Eval's judge is its own: the QwenLong papers evaluate with DeepSeek-V3 and the published prompt."""

    judge_max_tokens: int | None = None
    """Judge reply budget in tokens; None: the preset's (4096 for a reasoning judge)."""

    judge_reasoning_effort: str | None = None
    """``reasoning_effort`` sent to a reasoning judge (gpt-oss: low, medium, high); None: not sent."""

    judge_chat_template_kwargs: dict[str, Any] | None = None
    """``chat_template_kwargs`` sent to the judge (e.g. ``{"enable_thinking": false}``); None: not sent."""

    score_concurrency: int = 64
    """Samples scored at once (judge requests are further bounded by the reward's own limit)."""

    length_edges: Sequence[int] | None = None
    """Upper edges of the input-length buckets of the report; None: the agent's (4k,8k,16k,32k,64k,128k for
    --agent full; 32k,128k,512k,1m,2m,4m for --agent memory)."""

    rescore: bool = False
    """Score every sample again (after changing the judge); also rates every rated sample again."""

    rating: bool = True
    """Rate the answers of benchmarks whose published metric is an LLM rating (Loong: 0-100, perfect rate) with
    the judge endpoint, after scoring; ``--no-rating`` skips it. Without a judge endpoint nothing is rated."""

    agent: Literal["full", "memory"] = FULL_CONTEXT
    """How an item is answered: ``full`` sends the document in one prompt (middle-truncated with
    --max-input-tokens); ``memory`` runs QwenLong-L1.5's memory agent: it reads the whole document in chunks of
    --chunk-tokens, keeping a memory of at most --memory-tokens, and answers from that memory (K = ceil(document
    tokens / chunk) memory updates + 1 answer per sample, any document length; docs/memory.md)."""

    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    """--agent memory: document tokens read per memory update (counted with --tokenizer, default --model)."""

    memory_tokens: int = DEFAULT_MEMORY_TOKENS
    """--agent memory: budget of the memory carried to the next chunk; a longer one is cut to its first tokens."""

    plan_tokens: int = 0
    """--agent memory: budget of the plan (what to look for next) written with each memory; 0 = no plan."""

    max_chunks: int = 0
    """--agent memory: read at most this many chunks (the first ones) of a document; 0 = all of it."""

    update_tokens: int = 0
    """--agent memory: new tokens one memory update may generate; 0 = --max-tokens."""

    answer_tokens: int = 0
    """--agent memory: new tokens the final answer may generate; 0 = --max-tokens."""

    def __post_init__(self):
        self.out = Path(self.out)
        if not self.benches:
            raise EvalConfigError("give at least one --bench")
        if self.agent not in AGENTS:
            raise EvalConfigError(f"--agent must be one of {', '.join(AGENTS)}, got {self.agent!r}")
        problems = AGENTS[self.agent].problems(self)
        if problems:
            raise EvalConfigError("; ".join(problems))
        if self.length_edges is None:
            self.length_edges = list(AGENTS[self.agent].length_edges)
        check_count("--n", self.n, 1, MAX_SAMPLES, error=EvalConfigError)
        if self.limit is not None and self.limit < 1:
            raise EvalConfigError(f"--limit must be >= 1, got {self.limit}")
        if self.max_input_tokens is not None and self.max_input_tokens < 1:
            raise EvalConfigError(f"--max-input-tokens must be >= 1, got {self.max_input_tokens}")
        if self.score_concurrency < 1:
            raise EvalConfigError("score concurrency must be >= 1")
        if not self.length_edges or any(int(e) <= 0 for e in self.length_edges):
            raise EvalConfigError("length bucket edges must be positive token counts")
        from qwenlong_verl.worker.rewards.judge import JudgeConfig

        try:  # a bad judge setting fails before any sample is drawn, not after generation
            JudgeConfig.from_kwargs(self.judge_kwargs())
        except InputError as exc:
            raise EvalConfigError(str(exc)) from None

    def judge_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``compute_score_async`` (only what the user set)."""
        from qwenlong_verl.worker.rewards.keys import judge_kwargs

        return judge_kwargs(self)


class Progress(Protocol):
    """What the CLI shows; the library only reports counts."""

    def stage(self, name: str, total: int) -> None: ...

    def advance(self, name: str, amount: int = 1) -> None: ...


class _Quiet:
    def stage(self, name: str, total: int) -> None:
        pass

    def advance(self, name: str, amount: int = 1) -> None:
        pass


@dataclass
class EvalResult:
    """What ``run_eval`` did and the summary it wrote."""

    rows: list[GroupSummary]
    buckets: list[BucketRow]
    report_dir: Path
    items: int
    truncated: int
    generation: GenerationStats
    scored: int
    scoring_errors: int
    failed_samples: int
    """Samples whose latest generation is an error (retried by the next run)."""

    rated: int = 0
    """Samples rated by this run (rated benchmarks only)."""

    rating_errors: int = 0
    """Samples the rater failed on in this run (unrated; the next run retries them)."""


def prompt_sha(messages: list[dict]) -> str:
    text = json.dumps(messages, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]  # a lone surrogate hashes too


def item_row(item: EvalItem, fitted: FittedPrompt) -> dict[str, Any]:
    return {
        "id": item.id,
        "benchmark": item.benchmark,
        "subset": item.subset,
        "question": item.question,
        "gold": item.gold,
        "task": item.task,
        "choices": list(item.choices) if item.choices else None,
        "data_source": item.data_source,
        "source": item.source,
        "meta": dict(item.meta),
        "prompt_sha": prompt_sha(fitted.messages),
        "input_tokens": fitted.input_tokens,
        "original_input_tokens": fitted.original_input_tokens,
        "truncated": fitted.truncated,
    }


def _manifest(config: EvalConfig, sources) -> dict[str, Any]:
    gen = config.generation
    return {
        "version": MANIFEST_VERSION,
        "n": config.n,
        "generation": {
            "base_url": redact(gen.base_url),
            "model": gen.model,
            "temperature": gen.temperature,
            "top_p": gen.top_p,
            "max_tokens": gen.max_tokens,
            "seed": gen.seed,
            "extra_body": dict(gen.extra_body),
        },
        "max_input_tokens": config.max_input_tokens,
        "tokenizer": config.tokenizer,
        "benchmarks": {s.name: [str(p) for p in s.paths] for s in sources},
        "judge": json.loads(redact(json.dumps(config.judge_kwargs()))),  # no credentials on disk
        "length_edges": [int(e) for e in config.length_edges],
        "rating": config.rating,
        "agent": AGENTS[config.agent].settings(config),
    }


def _merge_manifest(old: Mapping[str, Any], new: dict[str, Any], root: Path) -> dict[str, Any]:
    if old.get("version") != MANIFEST_VERSION:
        raise EvalConfigError(f"{root}: written by another harness version ({old.get('version')}); use a new --out")
    changed = [
        f"{key}: {old.get('generation', {}).get(key)!r} -> {new['generation'][key]!r}"
        for key in SAMPLING_KEYS
        if old.get("generation", {}).get(key) != new["generation"][key]
    ]
    old_agent = old.get("agent") or {"name": FULL_CONTEXT}  # folders from before --agent hold full-context samples
    if old_agent != new["agent"]:
        changed += [
            f"agent {key}: {old_agent.get(key)!r} -> {new['agent'].get(key)!r}"
            for key in dict.fromkeys([*old_agent, *new["agent"]])
            if old_agent.get(key) != new["agent"].get(key)
        ]
    if changed:
        raise EvalConfigError(
            f"{root} holds samples drawn with other settings ({'; '.join(changed)}); "
            "use a new --out, or the original settings to resume"
        )
    merged = dict(new)
    merged["benchmarks"] = {**old.get("benchmarks", {}), **new["benchmarks"]}
    return merged


def _load_tokenizer(config: EvalConfig):
    counts = AGENTS[config.agent].counts_tokens(config)
    name = config.tokenizer or (config.generation.model if counts else None)
    if name is None:
        return None, None
    from qwenlong_verl.driver.data.tokenizer import TokenizerLoadError, load_tokenizer

    try:
        return load_tokenizer(name), name
    except TokenizerLoadError as exc:
        what = "--agent memory" if config.agent != FULL_CONTEXT else "--max-input-tokens"
        hint = "" if config.tokenizer else f" ({what} counts with --tokenizer, which defaults to --model)"
        raise EvalConfigError(f"{exc}{hint}") from exc


def load(config: EvalConfig):
    """Load the benchmarks and fit their prompts: ``(sources, items, fitted)``. Sends and writes nothing."""
    from qwenlong_verl.driver.data.template import TemplateError
    from qwenlong_verl.driver.eval.truncate import TruncationError

    sources, items = load_benchmarks(
        config.benches,
        config.data_dir,
        LoadOptions(Path(config.loong_doc_dir) if config.loong_doc_dir else None, config.limit),
    )
    tokenizer, tokenizer_name = _load_tokenizer(config)
    config.tokenizer = tokenizer_name
    try:
        fitted = AGENTS[config.agent].fit(items, tokenizer, config)
    except TemplateError as exc:
        raise EvalConfigError(f"prompt template: {exc}") from exc
    except TruncationError as exc:
        raise EvalConfigError(str(exc)) from exc
    return sources, items, fitted


def record(config: EvalConfig, sources, items, fitted):
    """Check the folder can be resumed with these items and settings, then record them (under its lock)."""
    folder = EvalFolder(config.out)
    manifest = _manifest(config, sources)
    if folder.exists():
        manifest = _merge_manifest(folder.read_manifest(), manifest, folder.root)
    rows = {it.id: item_row(it, fp) for it, fp in zip(items, fitted, strict=True)}
    old_rows = {row["id"]: row for row in folder.iter_items()}
    sampled = {key[0] for key in latest_generations(read_jsonl(folder.generations))}
    for item_id, row in rows.items():
        old = old_rows.get(item_id)
        if old and item_id in sampled and old.get("prompt_sha") != row["prompt_sha"]:
            raise EvalConfigError(
                f"{row['source']}: the prompt of {item_id} differs from the one already sampled in {folder.root} "
                "(other data, template, tokenizer or --max-input-tokens); use a new --out"
            )
    # Items of benchmarks not in this run stay (the folder may hold several runs' benchmarks).
    this_run = {row["benchmark"] for row in rows.values()}
    merged = {**{k: v for k, v in old_rows.items() if v.get("benchmark") not in this_run}, **rows}
    folder.root.mkdir(parents=True, exist_ok=True)
    write_json(folder.manifest, manifest)
    write_jsonl(folder.items, merged.values())
    prompts = {it.id: fp.messages for it, fp in zip(items, fitted, strict=True)}
    return folder, rows, prompts, sum(fp.truncated for fp in fitted)


async def run_eval_async(config: EvalConfig, progress: Progress | None = None, loaded=None) -> EvalResult:
    """``loaded``: ``(sources, items, fitted)`` as :func:`load` returns them, from another reader (``difficulty``
    sends prepared training prompts as they are); None loads ``config.benches``."""
    progress = progress or _Quiet()
    loaded = load(config) if loaded is None else loaded
    with EvalFolder(config.out).lock():
        return await _run_locked(config, progress, *loaded)


async def _run_locked(config: EvalConfig, progress: Progress, sources, items, fitted) -> EvalResult:
    folder, rows, prompts, truncated = record(config, sources, items, fitted)
    requests = pending_samples(prompts, config.n, read_jsonl(folder.generations))
    progress.stage("generate", len(requests))
    with JsonlAppender(folder.generations) as sink:

        def on_generation(row: dict[str, Any]) -> None:
            sink.append(row)
            progress.advance("generate")

        stats = await AGENTS[config.agent].sample(config, folder, rows, requests, on_generation)

    generations = latest_generations(read_jsonl(folder.generations))
    todo = pending_scores(rows, generations, latest_by_key(read_jsonl(folder.scores)), config.n, config.rescore)
    progress.stage("score", len(todo))
    with JsonlAppender(folder.scores) as sink:

        def on_score(row: dict[str, Any]) -> None:
            sink.append(row)
            progress.advance("score")

        scoring_errors = await score(todo, config.judge_kwargs(), on_score, config.score_concurrency)

    rating = None
    if config.rating:
        from qwenlong_verl.driver.eval.benchmarks.registry import rating_specs
        from qwenlong_verl.driver.eval.rating import rate_folder

        rating = await rate_folder(
            folder,
            rows,
            config.n,
            config.judge_kwargs(),
            rating_specs(row["benchmark"] for row in rows.values()),
            rerate=config.rescore,
            concurrency=config.score_concurrency,
            progress=progress,
        )

    summary, buckets, report_dir = build_report(folder.root)
    failed = sum(
        1
        for item_id in rows
        for k in range(config.n)
        if (g := generations.get((item_id, k))) is not None and g.get("status") != "ok"
    )
    return EvalResult(
        rows=summary,
        buckets=buckets,
        report_dir=report_dir,
        items=len(rows),
        truncated=truncated,
        generation=stats,
        scored=len(todo),
        scoring_errors=scoring_errors,
        failed_samples=failed,
        rated=rating.rated if rating is not None else 0,
        rating_errors=rating.failed if rating is not None else 0,
    )


def run_eval(config: EvalConfig, progress: Progress | None = None) -> EvalResult:
    """Synchronous entry point (the CLI's)."""
    return asyncio.run(run_eval_async(config, progress))
