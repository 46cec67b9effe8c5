"""Aggregate per-sample reward info into step metrics and per-task summaries.

:func:`reward_metrics` takes the ``reward_extra_info`` columns the ``qwenlong`` manager writes (veRL puts
them in ``batch.non_tensor_batch`` and lists them in ``meta_info["reward_extra_keys"]``) and returns flat
floats for veRL's metrics dict; a trainer calls it once per step. :func:`summarize_by_task` is the table
of ``qwenlong-verl score``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PREFIX = "qwenlong_reward"


def judge_asked(result: Mapping[str, Any]) -> bool:
    """Whether the judge was asked for this scorer result: it gave a verdict (``judge >= 0``) or failed."""
    try:
        verdict = float(result.get("judge", -1.0))
    except (TypeError, ValueError):
        verdict = -1.0
    return verdict >= 0 or bool(result.get("judge_error"))


def _floats(values: Iterable[Any]) -> list[float]:
    out = []
    for value in values:
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            continue
    return out


def reward_metrics(infos: Mapping[str, Sequence[Any]], prefix: str = PREFIX) -> dict[str, float]:
    """Step metrics from reward-info columns; keys that are absent are skipped.

    ``acc``, ``rule_acc``: mean accuracy of the hybrid reward and of the rule alone; ``judge_calls``,
    ``judge_rate``: samples that asked the judge; ``judge_flips``: the judge said right where the rule said
    wrong; ``judge_errors``: judge failures (rule score used); ``judge_latency_mean_s`` /
    ``judge_latency_max_s`` over judged samples; ``overlong_rate``; ``format_violation_rate``.
    """
    out: dict[str, float] = {}
    n = max((len(v) for v in infos.values()), default=0)
    if not n:
        return out
    if "acc" in infos:
        out[f"{prefix}/acc"] = _mean(_floats(infos["acc"]))
    if "rule" in infos:
        out[f"{prefix}/rule_acc"] = _mean(_floats(infos["rule"]))
    if "judge_used" in infos:
        used = [bool(u) for u in infos["judge_used"]]
        out[f"{prefix}/judge_calls"] = float(sum(used))
        out[f"{prefix}/judge_rate"] = sum(used) / n
        if "judge_latency_s" in infos:
            latencies = [lat for lat, u in zip(_floats(infos["judge_latency_s"]), used, strict=False) if u]
            out[f"{prefix}/judge_latency_mean_s"] = _mean(latencies)
            out[f"{prefix}/judge_latency_max_s"] = max(latencies, default=0.0)
    if "judge" in infos and "rule" in infos:
        flips = sum(1 for j, r in zip(_floats(infos["judge"]), _floats(infos["rule"]), strict=False) if j >= 1 > r)
        out[f"{prefix}/judge_flips"] = float(flips)
    if "judge_error" in infos:
        out[f"{prefix}/judge_errors"] = float(sum(1 for e in infos["judge_error"] if e))
    if "overlong" in infos:
        out[f"{prefix}/overlong_rate"] = _mean([1.0 if o else 0.0 for o in infos["overlong"]])
    if "format_ok" in infos:
        out[f"{prefix}/format_violation_rate"] = _mean([0.0 if ok else 1.0 for ok in infos["format_ok"]])
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass
class TaskSummary:
    """Counts for one task in an offline scoring run."""

    samples: int = 0
    correct: int = 0
    rule_correct: int = 0
    judge_calls: int = 0
    judge_flips: int = 0
    judge_errors: int = 0
    no_answer: int = 0

    def add(self, result: Mapping[str, Any]) -> None:
        self.samples += 1
        self.correct += bool(result.get("acc"))
        self.rule_correct += float(result.get("rule", 0.0)) >= 1.0
        self.judge_calls += judge_asked(result)
        self.judge_flips += float(result.get("judge", -1.0)) >= 1.0 and float(result.get("rule", 0.0)) < 1.0
        self.judge_errors += bool(result.get("judge_error"))
        self.no_answer += not result.get("pred")

    @property
    def accuracy(self) -> float:
        return self.correct / self.samples if self.samples else 0.0

    @property
    def rule_accuracy(self) -> float:
        return self.rule_correct / self.samples if self.samples else 0.0


def summarize_by_task(tasks: Sequence[str], results: Sequence[Mapping[str, Any]]) -> dict[str, TaskSummary]:
    """Per-task counts plus an ``all`` row; ``tasks[i]`` labels ``results[i]``."""
    summary: dict[str, TaskSummary] = {}
    total = TaskSummary()
    for task, result in zip(tasks, results, strict=True):
        summary.setdefault(task, TaskSummary()).add(result)
        total.add(result)
    return {**dict(sorted(summary.items())), "all": total}
