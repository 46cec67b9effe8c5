"""The ``qwenlong`` reward manager: hybrid score + DAPO soft overlong penalty + optional format penalty.

Select it with ``reward.reward_manager.name=qwenlong``. It reads its settings where veRL's ``dapo`` manager
does (``reward.reward_kwargs``) and behaves like it, with three differences:

* without a custom ``reward.custom_reward_function`` it scores with our async hybrid scorer
  (:func:`qwenlong_verl.worker.rewards.compute_score_async`), passing it the ``judge_*`` keys of
  ``reward.reward_kwargs``, with ``judge_max_concurrency`` divided among veRL's ``reward.num_workers`` reward
  workers (:func:`judge_share`), so the configured limit is what one judge endpoint sees in total;
* ``format_penalty`` (default 0 = off) is subtracted when the response has no extractable answer: an
  unfinished think block, nothing after ``</think>``, an empty ``\\boxed{}`` / "Answer:", or a long
  answer section with no answer marker (see :mod:`qwenlong_verl.worker.rewards.extract`);
* when the prompt itself ends with ``<think>`` (chat templates that open the reasoning block for the
  model, e.g. DeepSeek-R1 distills, Qwen3 thinking mode), the response is scored as ``"<think>" +
  response``, so a response that never closes its reasoning has no answer instead of being read whole.

Per-sample ``reward_extra_info`` (same keys for every sample, as veRL requires): the scorer's keys
(``score acc pred rule judge judge_error``) plus ``judge_used``, ``judge_latency_s``, ``overlong``,
``overlong_reward`` and ``format_ok``. :func:`qwenlong_verl.worker.rewards.metrics.reward_metrics` turns a batch
of them into step metrics.

This module is imported by the plugin hook when veRL imports its reward-manager registry.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from verl import DataProto
from verl.base_config import BaseConfig
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from qwenlong_verl.common.names import REWARD_MANAGER
from qwenlong_verl.worker.rewards.extract import THINK_OPEN, extract_answer
from qwenlong_verl.worker.rewards.hybrid import compute_score_async
from qwenlong_verl.worker.rewards.judge import JudgeConfig
from qwenlong_verl.worker.rewards.keys import JUDGE_KWARG_NAMES, MANAGER_KEYS
from qwenlong_verl.worker.rewards.metrics import judge_asked

_PROMPT_TAIL_TOKENS = 8


@dataclass
class OverlongBufferConfig(BaseConfig):
    """DAPO's soft overlong punishment (same keys as veRL's ``dapo`` manager)."""

    enable: bool = False
    """Apply the penalty."""

    len: int = 0
    """Length of the ramp in tokens: the penalty grows linearly over the last ``len`` tokens before
    ``max_resp_len``."""

    penalty_factor: float = 1.0
    """Penalty at ``max_resp_len`` (and beyond)."""

    log: bool = False
    """Accepted for compatibility with ``dapo``; ``overlong`` and ``overlong_reward`` are always reported."""


@dataclass
class QwenLongRewardConfig(BaseConfig):
    """Settings of the ``qwenlong`` reward manager, from ``reward.reward_kwargs``."""

    overlong_buffer_cfg: OverlongBufferConfig = field(default_factory=OverlongBufferConfig)
    """DAPO soft overlong penalty."""

    max_resp_len: int | None = None
    """Hard response limit in tokens (normally ``data.max_response_length``); needed by the overlong penalty."""

    format_penalty: float = 0.0
    """Subtracted from the reward when the response has no extractable answer; 0 = off."""

    judge_kwargs: dict[str, Any] = field(default_factory=dict)
    """The ``judge_*`` keys, passed to the hybrid scorer (see ``docs/rewards.md``)."""

    def __post_init__(self):
        buffer = self.overlong_buffer_cfg
        if buffer.enable:
            if self.max_resp_len is None:
                raise ValueError("reward.reward_kwargs.max_resp_len must be set when overlong_buffer_cfg.enable=true")
            if not isinstance(buffer.len, int) or buffer.len <= 0:
                raise ValueError(
                    f"reward.reward_kwargs.overlong_buffer_cfg.len must be a positive integer, got {buffer.len!r}; "
                    "set overlong_buffer_cfg.enable=false to turn the penalty off"
                )
            if self.max_resp_len < buffer.len:
                raise ValueError(
                    f"reward.reward_kwargs.max_resp_len ({self.max_resp_len}) must be >= "
                    f"overlong_buffer_cfg.len ({buffer.len})"
                )
            if buffer.penalty_factor < 0:
                raise ValueError("reward.reward_kwargs.overlong_buffer_cfg.penalty_factor must be >= 0")
        if not isinstance(self.format_penalty, int | float) or self.format_penalty < 0:
            raise ValueError(f"reward.reward_kwargs.format_penalty must be a number >= 0, got {self.format_penalty!r}")

    @classmethod
    def from_reward_kwargs(cls, reward_kwargs: Mapping[str, Any] | None) -> QwenLongRewardConfig:
        """Validate ``reward.reward_kwargs`` (a dict or DictConfig); errors name the key and the fix."""
        kwargs = _plain(reward_kwargs or {})
        if not isinstance(kwargs, dict):
            raise ValueError(f"reward.reward_kwargs must be a mapping, got {type(kwargs).__name__}")
        JudgeConfig.from_kwargs(kwargs, ignore=MANAGER_KEYS)  # names every unknown key and bad judge value
        buffer = kwargs.get("overlong_buffer_cfg") or {}
        if not isinstance(buffer, dict):
            raise ValueError("reward.reward_kwargs.overlong_buffer_cfg must be a mapping {enable, len, penalty_factor}")
        unknown = sorted(set(buffer) - {"enable", "len", "penalty_factor", "log"})
        if unknown:
            raise ValueError(f"unknown key(s) in reward.reward_kwargs.overlong_buffer_cfg: {', '.join(unknown)}")
        max_resp_len = kwargs.get("max_resp_len")
        return cls(
            overlong_buffer_cfg=OverlongBufferConfig(**buffer),
            max_resp_len=int(max_resp_len) if max_resp_len is not None else None,
            format_penalty=float(kwargs.get("format_penalty", 0.0) or 0.0),
            judge_kwargs={k: v for k, v in kwargs.items() if k in JUDGE_KWARG_NAMES},
        )

    def overlong_reward(self, response_length: int) -> float:
        """DAPO's soft penalty for a response of ``response_length`` tokens (0 when disabled)."""
        buffer = self.overlong_buffer_cfg
        if not buffer.enable:
            return 0.0
        expected = self.max_resp_len - buffer.len
        return min(-(response_length - expected) / buffer.len * buffer.penalty_factor, 0.0)


def judge_share(judge_kwargs: Mapping[str, Any], num_workers: Any) -> dict[str, Any]:
    """The judge settings of one of veRL's ``num_workers`` reward workers: ``judge_max_concurrency`` is a total
    per endpoint for the whole run, so each worker (a process with its own client) gets ``ceil(total / workers)``,
    at least 1."""
    workers = int(num_workers or 1)
    if workers < 1:
        raise ValueError(f"reward.num_workers must be >= 1, got {num_workers!r}")
    total = judge_kwargs.get("judge_max_concurrency", JudgeConfig.max_concurrency)
    return {**judge_kwargs, "judge_max_concurrency": max(1, math.ceil(total / workers))}


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return dict(value) if isinstance(value, Mapping) else value


def _is_verl_default(fn: Any) -> bool:
    from verl.utils.reward_score import default_compute_score

    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn is default_compute_score


def _agent_loop_lengths(item) -> tuple[int, int] | None:
    """``(prompt, response)`` token counts of a row that veRL's agent loop sent for scoring (its
    ``prompt_len`` / ``response_len``), else ``None``. The agent loop pads the sequences of one trajectory to the
    longest, prompt and response each from the left edge, so with several sequences (the memory agent: the
    answer after long memory updates) the attention mask no longer says where the last one's response ends."""
    extra = item.non_tensor_batch
    if "prompt_len" not in extra or "response_len" not in extra:
        return None
    return int(extra["prompt_len"]), int(extra["response_len"])


@register(REWARD_MANAGER)
class QwenLongRewardManager(RewardManagerBase):
    """Hybrid rule + LLM-judge reward with DAPO overlong shaping and an optional format penalty."""

    def __init__(self, config, tokenizer, compute_score, reward_router_address=None, reward_model_tokenizer=None):
        super().__init__(config, tokenizer, compute_score)
        self.settings = QwenLongRewardConfig.from_reward_kwargs(config.reward.get("reward_kwargs", None))
        self.reward_router_address = reward_router_address
        self.reward_model_tokenizer = reward_model_tokenizer
        self.uses_hybrid = compute_score is None or _is_verl_default(compute_score)
        if self.uses_hybrid:
            judge_kwargs = judge_share(self.settings.judge_kwargs, config.reward.get("num_workers", None))
            self.compute_score = functools.partial(compute_score_async, **judge_kwargs)
        self.is_async_reward_score = self.uses_hybrid or inspect.iscoroutinefunction(
            getattr(compute_score, "func", compute_score)
        )

    async def run_single(self, data: DataProto) -> dict:
        data = data[-1:]  # multi-sequence outputs: the last sequence carries the answer (as veRL's managers)
        item = data[0]
        responses = item.batch["responses"]
        prompts = item.batch["prompts"]
        lengths = _agent_loop_lengths(item)
        if lengths is not None:  # veRL's agent loop: each row is [prompt, response], right-padded to the longest row
            prompt_length, valid_length = lengths
            prompt_tail = prompts[:prompt_length][-_PROMPT_TAIL_TOKENS:]
        else:  # left-padded prompts, right-padded responses
            valid_length = int(item.batch["attention_mask"][-responses.shape[-1] :].sum())
            prompt_mask = item.batch["attention_mask"][: prompts.shape[-1]].bool()
            prompt_tail = prompts[prompt_mask][-_PROMPT_TAIL_TOKENS:]
        valid_ids = responses[:valid_length]

        def decode() -> tuple[str, bool]:
            text = self.tokenizer.decode(valid_ids, skip_special_tokens=True)
            tail = self.tokenizer.decode(prompt_tail, skip_special_tokens=False)
            return text, tail.rstrip().endswith(THINK_OPEN)

        response_str, think_opened = await self.loop.run_in_executor(None, decode)
        if think_opened and THINK_OPEN not in response_str:
            response_str = THINK_OPEN + response_str

        kwargs = dict(
            data_source=item.non_tensor_batch["data_source"],
            solution_str=response_str,
            ground_truth=item.non_tensor_batch["reward_model"]["ground_truth"],
            extra_info=item.non_tensor_batch.get("extra_info", None) or {},
        )
        if self.reward_router_address is not None:
            kwargs["reward_router_address"] = self.reward_router_address
            if not self.uses_hybrid:
                kwargs["reward_model_tokenizer"] = self.reward_model_tokenizer

        start = time.perf_counter()
        if self.is_async_reward_score:
            result = await self.compute_score(**kwargs)
        else:
            result = await self.loop.run_in_executor(None, lambda: self.compute_score(**kwargs))
        elapsed = time.perf_counter() - start

        info: dict[str, Any] = {}
        if isinstance(result, dict):
            score = float(result["score"])
            info.update(result)
        else:
            score = float(result)
            info["acc"] = score
        judge_used = judge_asked(info)
        info["judge_used"] = judge_used
        info["judge_latency_s"] = elapsed if judge_used else 0.0

        overlong_reward = self.settings.overlong_reward(valid_length)
        info["overlong_reward"] = overlong_reward
        info["overlong"] = overlong_reward < 0

        pred = info["pred"] if isinstance(info.get("pred"), str) else extract_answer(response_str)
        info["format_ok"] = bool(pred)
        format_reward = 0.0 if pred else -self.settings.format_penalty

        return {"reward_score": score + overlong_reward + format_reward, "reward_extra_info": info}
