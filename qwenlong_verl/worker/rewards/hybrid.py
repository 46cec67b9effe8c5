"""The QwenLong reward: max(rule verification, LLM-judge equivalence), as a veRL ``compute_score``.

Both entry points take veRL's arguments and return the same flat dict of scalars:

``score``       float, max(rule, judge) — the reward
``acc``         bool, ``score >= 0.5``
``pred``        the extracted answer, ``""`` when there is none
``rule``        float, the rule verifier's score
``judge``       float, the judge's verdict (1/0), -1 when the judge was not asked or failed
``judge_error`` ``""`` or a short code (see :class:`qwenlong_verl.worker.rewards.judge.JudgeResult`)

The judge is asked only when an answer was extracted, the rule said wrong, the rule did not call the
answer a hedge (see the verifiers), and a judge is configured. Any judge failure leaves the rule score.

``compute_score_async`` is what veRL's reward loop awaits (one call per sample, ``asyncio.gather`` over the
batch): rules run inline (microseconds); a math-verify evaluation, which may take up to its timeout, runs in
a worker thread so the loop keeps serving judge replies. ``compute_score`` (synchronous) is for callers
without a loop; veRL runs it in its thread pool, and it judges through one shared background loop.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache, cached

from qwenlong_verl.common.tasks import answer_type_of
from qwenlong_verl.worker.rewards.extract import extract_answer, gold_answers
from qwenlong_verl.worker.rewards.judge import JudgeConfig, get_client, judge_blocking
from qwenlong_verl.worker.rewards.keys import ENV_API_KEY, ENV_MODEL, ENV_URLS, PASSED_BY_VERL
from qwenlong_verl.worker.rewards.verify import RuleVerdict, verify


@dataclass(frozen=True)
class _Stage:
    """What the rule stage leaves for the judge stage."""

    pred: str
    golds: tuple[str, ...]
    verdict: RuleVerdict


def judge_config_for(kwargs: Mapping[str, Any]) -> JudgeConfig | None:
    """The :class:`~qwenlong_verl.worker.rewards.judge.JudgeConfig` these reward kwargs ask for, or ``None`` (rules only).

    ``None`` when no endpoint is configured (``judge_urls``, ``$QWENLONG_JUDGE_URLS``, or veRL's
    ``reward_router_address``) or ``judge_enable`` is false. Every key and value is checked either way
    (by :meth:`JudgeConfig.from_kwargs`): a typo in ``reward_kwargs`` fails the first reward call instead of
    silently turning the judge off. Built once per distinct settings (the scorer calls this per sample).
    """
    env_urls = os.environ.get(ENV_URLS)
    if not kwargs and not env_urls:
        return None  # the rule-only hot path: nothing to check, nothing to build
    router = kwargs.get("reward_router_address")
    settings = repr(sorted((k, repr(v)) for k, v in kwargs.items() if k not in PASSED_BY_VERL))
    env = (env_urls, os.environ.get(ENV_MODEL), os.environ.get(ENV_API_KEY))
    config = _config((settings, router, env), kwargs)
    return config if config.active else None


@cached(LRUCache(maxsize=256), key=lambda key, _kwargs: key, lock=threading.Lock())
def _config(key: tuple, kwargs: Mapping[str, Any]) -> JudgeConfig:
    return JudgeConfig.from_kwargs(kwargs, reward_router_address=key[1], ignore=PASSED_BY_VERL)


def _rule_stage(
    data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Mapping[str, Any], symbolic: bool
) -> _Stage | None:
    pred = extract_answer(solution_str) if isinstance(solution_str, str) else ""
    golds = gold_answers(ground_truth)
    answer_type = answer_type_of(str(data_source or ""), extra_info)
    verdict = verify(answer_type, pred, golds, extra_info, symbolic=symbolic)
    if verdict is None:
        return None
    return _Stage(pred, golds, verdict)


def _as_mapping(extra_info: Any) -> Mapping[str, Any]:
    return extra_info if isinstance(extra_info, Mapping) else {}


def _wants_judge(stage: _Stage, config: JudgeConfig | None) -> bool:
    return (
        config is not None
        and config.active
        and stage.verdict.score < 1.0
        and stage.verdict.judgeable
        and bool(stage.pred)
    )


def _judge_inputs(stage: _Stage, extra_info: Mapping[str, Any]) -> tuple[str, str, str]:
    question = extra_info.get("question")
    gold = stage.golds[0] if len(stage.golds) == 1 else "\n".join(f"- {g}" for g in stage.golds)
    return (question if isinstance(question, str) else ""), stage.pred, gold


def _result(stage: _Stage, judge: float = -1.0, judge_error: str = "") -> dict[str, Any]:
    rule = float(stage.verdict.score)
    score = max(rule, judge if judge >= 0 and not math.isnan(judge) else 0.0)
    return {
        "score": float(score),
        "acc": bool(score >= 0.5),
        "pred": stage.pred,
        "rule": rule,
        "judge": float(judge),
        "judge_error": judge_error,
    }


async def compute_score_async(
    data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None, **kwargs: Any
) -> dict[str, Any]:
    """Hybrid score of one response, awaitable (see module docs for the returned keys)."""
    info = _as_mapping(extra_info)
    config = judge_config_for(kwargs)
    stage = _rule_stage(data_source, solution_str, ground_truth, info, symbolic=False)
    if stage is None:  # only math-verify can decide: keep the loop free while it runs
        stage = await asyncio.to_thread(_rule_stage, data_source, solution_str, ground_truth, info, True)
    if not _wants_judge(stage, config):
        return _result(stage)
    outcome = await get_client(config).judge(*_judge_inputs(stage, info))
    return _result(stage, outcome.verdict, outcome.error)


def compute_score(
    data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None, **kwargs: Any
) -> dict[str, Any]:
    """Hybrid score of one response, blocking (see module docs for the returned keys)."""
    info = _as_mapping(extra_info)
    config = judge_config_for(kwargs)
    stage = _rule_stage(data_source, solution_str, ground_truth, info, symbolic=True)
    assert stage is not None
    if not _wants_judge(stage, config):
        return _result(stage)
    outcome = judge_blocking(config, *_judge_inputs(stage, info))
    return _result(stage, outcome.verdict, outcome.error)
