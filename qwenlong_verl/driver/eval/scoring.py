"""Score samples with the training reward and summarise them: accuracy, pass@k, failures, lengths.

Scores come from :func:`qwenlong_verl.worker.rewards.compute_score_async` — the very function the RL reward calls —
so an eval number means what the training reward means (rule verifier, then the LLM judge where the rule
says wrong). A sample is *correct* when its ``acc`` is 1 (see :func:`is_correct`).

pass@k uses the unbiased estimator of Chen et al. (2021): with ``n`` samples of which ``c`` are correct,
``pass@k = 1 - C(n-c, k) / C(n, k)``, evaluated as ``-expm1(sum(log1p(-k / i) for i in n-c+1..n))``, which
neither overflows (no factorials) nor loses precision when the result is tiny.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenlong_verl.driver.eval.store import EvalFolder, Key


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` samples drawn without replacement from ``n`` (``c`` correct) is."""
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise TypeError("n, c and k must be integers")
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return -math.expm1(math.fsum(math.log1p(-k / i) for i in range(n - c + 1, n + 1)))


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if n >= 1 and ks[-1] != n:
        ks.append(n)
    return ks


def is_correct(acc: Any) -> bool:
    """``acc`` of the reward is 0/1 (bool or number); anything at or above 1 counts as correct."""
    try:
        return float(acc) >= 1.0 - 1e-9
    except (TypeError, ValueError):
        return False


def response_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]  # never fails on bad text


# ----------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class ScoreRequest:
    """One generated sample to score, with what the scorer needs from its item."""

    item_id: str
    k: int
    response: str
    data_source: str
    ground_truth: str | list[str]
    extra_info: Mapping[str, Any]


def extra_info_of(item: Mapping[str, Any]) -> dict[str, Any]:
    """``extra_info`` for the scorer with the keys a prepared training row has: task, bare question, choices."""
    return {
        "task": item["task"],
        "question": item["question"],
        "choices": list(item.get("choices") or []),
        "source_id": item["id"],
    }


def ground_truth_of(item: Mapping[str, Any]) -> str | list[str]:
    """The gold for the scorer: every acceptable answer when the benchmark lists several (LongBench), else one."""
    answers = (item.get("meta") or {}).get("answers")
    return list(answers) if isinstance(answers, list) and len(answers) > 1 else item["gold"]


def pending_scores(
    items: Mapping[str, Mapping[str, Any]],
    generations: Mapping[Key, Mapping[str, Any]],
    scores: Mapping[Key, Mapping[str, Any]],
    n: int,
    rescore: bool = False,
) -> list[ScoreRequest]:
    """Successful samples without a score for their current response (all of them with ``rescore``)."""
    out = []
    for item_id, item in items.items():
        for k in range(n):
            gen = generations.get((item_id, k))
            if gen is None or gen.get("status") != "ok":
                continue
            response = str(gen.get("response") or "")
            old = scores.get((item_id, k))
            if not rescore and old and old.get("status") == "ok" and old.get("response_sha") == response_sha(response):
                continue
            out.append(
                ScoreRequest(item_id, k, response, item["data_source"], ground_truth_of(item), extra_info_of(item))
            )
    return out


async def score(
    requests: Sequence[ScoreRequest],
    judge_kwargs: Mapping[str, Any],
    on_row: Callable[[dict[str, Any]], None],
    concurrency: int = 64,
) -> int:
    """Score each request with the training reward; returns how many raised (recorded as ``status: error``)."""
    from qwenlong_verl.driver.score import score_each

    errors = 0

    def done(index: int, result: Mapping[str, Any] | Exception) -> None:
        nonlocal errors
        req = requests[index]
        row: dict[str, Any] = {"id": req.item_id, "k": req.k, "response_sha": response_sha(req.response)}
        if isinstance(result, Exception):  # a scorer bug must not cost the generations; retried next run
            errors += 1
            row.update(status="error", error=f"{type(result).__name__}: {result}")
        else:
            result = dict(result) if isinstance(result, Mapping) else {"score": result, "acc": result}
            row.update(
                status="ok",
                **{key: _jsonable(result.get(key)) for key in ("score", "acc", "pred", "rule", "judge", "judge_error")},
            )
            row["correct"] = is_correct(result.get("acc"))
        on_row(row)

    if requests:
        await score_each(requests, judge_kwargs, done, concurrency)
    return errors


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return float(value)  # numpy scalars
    except (TypeError, ValueError):
        return str(value)


# ----------------------------------------------------------------------------- summaries


@dataclass
class Outcome:
    """One sample as the summaries see it."""

    correct: bool = False
    generated: bool = False
    """A successful generation exists."""

    scored: bool = False
    request_failed: bool = False
    scoring_failed: bool = False
    extraction_failed: bool = False
    """Generated, scored, and no answer could be extracted (``pred == ""``)."""

    rule_correct: bool = False
    judge_failed: bool = False
    """The judge was asked but gave no verdict (the rule score stands)."""

    response_tokens: int | None = None
    cut: bool = False
    """Stopped by the max_tokens budget (``finish_reason == "length"``)."""


def outcomes(
    items: Mapping[str, Mapping[str, Any]],
    generations: Mapping[Key, Mapping[str, Any]],
    scores: Mapping[Key, Mapping[str, Any]],
    n: int,
) -> dict[Key, Outcome]:
    """Every (id, k < n) of ``items``: missing rows simply leave the sample not correct."""
    out: dict[Key, Outcome] = {}
    for item_id in items:
        for k in range(n):
            o = Outcome()
            gen = generations.get((item_id, k))
            if gen is not None:
                o.request_failed = gen.get("status") != "ok"
                o.generated = not o.request_failed
                o.cut = gen.get("finish_reason") == "length"
                tokens = gen.get("completion_tokens")
                o.response_tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None
            sc = scores.get((item_id, k))
            if o.generated and sc is not None:
                current = sc.get("response_sha") == response_sha(str(gen.get("response") or ""))
                if sc.get("status") == "ok" and current:
                    o.scored = True
                    o.correct = bool(sc.get("correct"))
                    o.extraction_failed = (sc.get("pred") or "") == ""
                    o.rule_correct = is_correct(sc.get("rule"))
                    o.judge_failed = bool(sc.get("judge_error"))
                elif sc.get("status") != "ok":
                    o.scoring_failed = True
            out[(item_id, k)] = o
    return out


@dataclass
class FolderResults:
    """What an eval folder holds, as the report reads it (:func:`qwenlong_verl.driver.eval.report.read_results`)."""

    folder: EvalFolder
    manifest: dict[str, Any]
    n: int
    items: list[dict[str, Any]]
    """Items of the folder's benchmarks, ``input_tokens`` filled from the server's count where none was made."""
    generations: dict[Key, dict[str, Any]]
    results: dict[Key, Outcome]


@dataclass
class GroupSummary:
    """The report row of one benchmark, one subset, or the average."""

    name: str
    items: int
    n: int
    accuracy: float
    """Mean correctness over all items x n samples (unfinished samples count as wrong)."""

    pass_at: dict[int, float]
    """Mean unbiased pass@k over items, for each k."""

    rule_accuracy: float | None = None
    """Accuracy of the rule verifier alone; ``accuracy - rule_accuracy`` is what the judge added."""

    extraction_failures: float | None = None
    """Share of scored samples with no extractable answer (``pred == ""``)."""

    request_failures: int = 0
    scoring_failures: int = 0
    judge_failures: int = 0
    """Scored samples whose judge call failed (``judge_error``): the rule alone decided them."""

    unfinished: int = 0
    """Samples with no generation or no score yet (interrupted run)."""

    response_tokens_mean: float | None = None
    response_tokens_median: float | None = None
    response_tokens_max: int | None = None
    cut_at_max_tokens: float | None = None
    """Share of generated samples stopped by ``max_tokens``."""

    input_tokens_mean: float | None = None
    truncated_items: int = 0
    benchmarks: list[str] = field(default_factory=list)
    """For the average row: the benchmarks averaged."""

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["pass_at"] = {str(k): v for k, v in self.pass_at.items()}
        return d


def summarize_group(
    name: str,
    items: Sequence[Mapping[str, Any]],
    results: Mapping[Key, Outcome],
    n: int,
    ks: Iterable[int],
) -> GroupSummary:
    ks = [k for k in ks if 1 <= k <= n]
    per_item = [[results[(it["id"], k)] for k in range(n)] for it in items]
    flat = [o for samples in per_item for o in samples]
    correct_counts = [sum(o.correct for o in samples) for samples in per_item]
    scored = [o for o in flat if o.scored]
    generated = [o for o in flat if o.generated]
    tokens = [o.response_tokens for o in generated if o.response_tokens is not None]
    inputs = [it["input_tokens"] for it in items if isinstance(it.get("input_tokens"), int)]
    return GroupSummary(
        name=name,
        items=len(items),
        n=n,
        accuracy=sum(o.correct for o in flat) / len(flat) if flat else 0.0,
        pass_at={k: statistics.fmean(pass_at_k(n, c, k) for c in correct_counts) for k in ks} if items else {},
        rule_accuracy=sum(o.rule_correct for o in flat) / len(flat) if scored else None,
        extraction_failures=sum(o.extraction_failed for o in scored) / len(scored) if scored else None,
        request_failures=sum(o.request_failed for o in flat),
        scoring_failures=sum(o.scoring_failed for o in flat),
        judge_failures=sum(o.judge_failed for o in scored),
        unfinished=sum(not o.scored for o in flat),
        response_tokens_mean=statistics.fmean(tokens) if tokens else None,
        response_tokens_median=statistics.median(tokens) if tokens else None,
        response_tokens_max=max(tokens) if tokens else None,
        cut_at_max_tokens=sum(o.cut for o in generated) / len(generated) if generated else None,
        input_tokens_mean=statistics.fmean(inputs) if inputs else None,
        truncated_items=sum(bool(it.get("truncated")) for it in items),
    )


def summarize(
    items: Sequence[Mapping[str, Any]], results: Mapping[Key, Outcome], n: int, ks: Iterable[int] | None = None
) -> list[GroupSummary]:
    """One row per benchmark (then one per subset, named ``bench/subset``), and the macro average."""
    ks = list(ks) if ks is not None else default_ks(n)
    by_bench: dict[str, list[Mapping[str, Any]]] = {}
    for it in items:
        by_bench.setdefault(it["benchmark"], []).append(it)
    rows: list[GroupSummary] = []
    bench_rows: list[GroupSummary] = []
    for bench, group in by_bench.items():
        row = summarize_group(bench, group, results, n, ks)
        rows.append(row)
        bench_rows.append(row)
        subsets: dict[str, list[Mapping[str, Any]]] = {}
        for it in group:
            if it.get("subset"):
                subsets.setdefault(it["subset"], []).append(it)
        if len(subsets) > 1 or (subsets and sum(map(len, subsets.values())) < len(group)):
            for subset, members in sorted(subsets.items()):
                rows.append(summarize_group(f"{bench}/{subset}", members, results, n, ks))
    if len(bench_rows) > 1:
        rows.append(_average(bench_rows, n, ks))
    return rows


def _average(rows: Sequence[GroupSummary], n: int, ks: Sequence[int]) -> GroupSummary:
    """Unweighted mean over benchmarks, as the QwenLong papers report their average column."""

    def mean(values):
        values = [v for v in values if v is not None]
        return statistics.fmean(values) if values else None

    return GroupSummary(
        name="average",
        items=sum(r.items for r in rows),
        n=n,
        accuracy=statistics.fmean(r.accuracy for r in rows),
        pass_at={k: statistics.fmean(r.pass_at[k] for r in rows) for k in ks if 1 <= k <= n},
        rule_accuracy=mean(r.rule_accuracy for r in rows),
        extraction_failures=mean(r.extraction_failures for r in rows),
        request_failures=sum(r.request_failures for r in rows),
        scoring_failures=sum(r.scoring_failures for r in rows),
        judge_failures=sum(r.judge_failures for r in rows),
        unfinished=sum(r.unfinished for r in rows),
        response_tokens_mean=mean(r.response_tokens_mean for r in rows),
        response_tokens_median=None,
        response_tokens_max=max(
            (r.response_tokens_max for r in rows if r.response_tokens_max is not None), default=None
        ),
        cut_at_max_tokens=mean(r.cut_at_max_tokens for r in rows),
        input_tokens_mean=mean(r.input_tokens_mean for r in rows),
        truncated_items=sum(r.truncated_items for r in rows),
        benchmarks=[r.name for r in rows],
    )


# ----------------------------------------------------------------------------- input-length buckets

DEFAULT_LENGTH_EDGES = (4096, 8192, 16384, 32768, 65536, 131072)
"""Upper edges of the input-length buckets, in tokens; the last bucket is open-ended."""


_SCALES = {"k": 1024, "m": 1024 * 1024}


def parse_length_edges(text: str) -> list[int]:
    """``"4k,8k,32000,1m"`` -> ``[4096, 8192, 32000, 1048576]`` (``k`` = 1024 tokens, ``m`` = 1024 k); increasing
    positive edges."""
    edges = []
    for part in str(text).split(","):
        part = part.strip().lower()
        if not part:
            continue
        scale = _SCALES.get(part[-1], 1)
        try:
            value = int(float(part[:-1] if scale > 1 else part) * scale)
        except ValueError:
            raise ValueError(f"length bucket edge {part!r} is not a number like 4k, 1m or 32768") from None
        if value <= 0:
            raise ValueError(f"length bucket edge {part!r} must be positive")
        edges.append(value)
    if not edges or edges != sorted(set(edges)):
        raise ValueError(f"length bucket edges {text!r} must be increasing, e.g. 4k,8k,16k,32k")
    return edges


def bucket_label(lo: int, hi: int | None) -> str:
    def short(v: int) -> str:
        for suffix, scale in (("M", _SCALES["m"]), ("K", _SCALES["k"])):
            if v >= scale and v % scale == 0:
                return f"{v // scale}{suffix}"
        return str(v)

    return f"{short(lo)}-{short(hi)}" if hi is not None else f">{short(lo)}"


def bucket_bounds(edges: Sequence[int]) -> list[tuple[int, int | None]]:
    """``[(0, e1), (e1, e2), ..., (en, None)]`` of the upper edges ``edges``."""
    edges = sorted(set(int(e) for e in edges))
    return list(zip([0, *edges], [*edges, None], strict=True))


def in_bucket(length: Any, lo: int, hi: int | None) -> bool:
    """A token count in ``[lo, hi)`` (no upper end when ``hi`` is None); anything but an int is in no bucket."""
    return isinstance(length, int) and not isinstance(length, bool) and lo <= length and (hi is None or length < hi)


@dataclass
class BucketRow:
    label: str
    lo: int
    hi: int | None
    benchmark: str
    """A benchmark name, or ``all``."""

    items: int
    accuracy: float


def length_buckets(
    items: Sequence[Mapping[str, Any]],
    results: Mapping[Key, Outcome],
    n: int,
    edges: Sequence[int] = DEFAULT_LENGTH_EDGES,
) -> list[BucketRow]:
    """Accuracy per input-length bucket, over all benchmarks (``all``) and per benchmark; empty buckets omitted.

    An item's length is ``input_tokens`` (the prompt as sent, counted with the tokenizer) or, without a
    tokenizer, the server-reported ``prompt_tokens``; items with neither are left out.
    """
    rows: list[BucketRow] = []
    for bench in ["all", *dict.fromkeys(it["benchmark"] for it in items)]:
        members = [it for it in items if bench == "all" or it["benchmark"] == bench]
        for lo, hi in bucket_bounds(edges):
            inside = [it for it in members if in_bucket(it.get("input_tokens"), lo, hi)]
            if not inside:
                continue
            flat = [results[(it["id"], k)].correct for it in inside for k in range(n)]
            rows.append(BucketRow(bucket_label(lo, hi), lo, hi, bench, len(inside), sum(flat) / len(flat)))
    return rows
