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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qwenlong_verl.common.tasks import task_of
from qwenlong_verl.worker.rewards.extract import extract_answer, gold_answers
from qwenlong_verl.worker.rewards.keys import ENV_API_KEY, ENV_MODEL, ENV_URLS, JUDGE_KWARG_NAMES, PASSED_BY_VERL
from qwenlong_verl.worker.rewards.verify import RuleVerdict, verify

_SETTINGS_CACHE: dict[tuple, Any] = {}


@dataclass(frozen=True)
class _Stage:
    """What the rule stage leaves for the judge stage."""

    pred: str
    golds: tuple[str, ...]
    verdict: RuleVerdict


def judge_config_for(kwargs: Mapping[str, Any]):
    """The :class:`~qwenlong_verl.worker.rewards.judge.JudgeConfig` these reward kwargs ask for, or ``None`` (rules only).

    ``None`` when no endpoint is configured (``judge_urls``, ``$QWENLONG_JUDGE_URLS``, or veRL's
    ``reward_router_address``) or ``judge_enable`` is false; then nothing of the judge (nor veRL) is imported.
    Raises ``ValueError`` naming the key for an unknown keyword, and for a bad value when a judge is
    configured: a typo in ``reward_kwargs`` must fail the first reward call, not silently turn the judge off.
    (The ``qwenlong`` manager validates every judge value at start, judge configured or not.)
    """
    unknown = sorted(k for k in kwargs if k not in JUDGE_KWARG_NAMES and k not in PASSED_BY_VERL)
    if unknown:
        import difflib

        hints = [difflib.get_close_matches(k, sorted(JUDGE_KWARG_NAMES), n=1) for k in unknown]
        detail = ", ".join(
            f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in zip(unknown, hints, strict=True)
        )
        raise ValueError(f"unknown qwenlong reward keyword {detail}; accepted: {', '.join(JUDGE_KWARG_NAMES)}")
    if kwargs.get("judge_enable") is False:
        return None
    router = kwargs.get("reward_router_address")
    env_urls = os.environ.get(ENV_URLS, "")
    if not (kwargs.get("judge_urls") or env_urls or router):
        return None
    env = (env_urls, os.environ.get(ENV_MODEL), os.environ.get(ENV_API_KEY))
    key = (repr(sorted((k, repr(v)) for k, v in kwargs.items() if k in JUDGE_KWARG_NAMES)), router, env)
    config = _SETTINGS_CACHE.get(key)
    if config is None:
        from qwenlong_verl.worker.rewards.judge import JudgeConfig

        config = JudgeConfig.from_kwargs(kwargs, reward_router_address=router)
        if len(_SETTINGS_CACHE) > 256:
            _SETTINGS_CACHE.clear()
        _SETTINGS_CACHE[key] = config
    return config


def _rule_stage(
    data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Mapping[str, Any], symbolic: bool
) -> _Stage | None:
    pred = extract_answer(solution_str) if isinstance(solution_str, str) else ""
    golds = gold_answers(ground_truth)
    task = task_of(str(data_source or ""), extra_info)
    verdict = verify(task, pred, golds, extra_info, symbolic=symbolic)
    if verdict is None:
        return None
    return _Stage(pred, golds, verdict)


def _as_mapping(extra_info: Any) -> Mapping[str, Any]:
    return extra_info if isinstance(extra_info, Mapping) else {}


def _wants_judge(stage: _Stage, config) -> bool:
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
    from qwenlong_verl.worker.rewards.judge import get_client

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
    from qwenlong_verl.worker.rewards.judge import judge_blocking

    outcome = judge_blocking(config, *_judge_inputs(stage, info))
    return _result(stage, outcome.verdict, outcome.error)
