"""Task-specific advantage (QwenLong-L1.5 §4.2), registered in veRL as ``grpo_task_norm``.

    A_i = (r_i − mean of r over the group of i) / (std of r over every sample of i's task in the batch + ε)

The group (veRL's ``uid``: one prompt and its ``rollout.n`` responses) gives the baseline, as in GRPO;
the task (numeric / choice / qa, :mod:`qwenlong_verl.tasks`) gives the scale, so a task whose rewards
spread widely does not drown the gradient of a task whose rewards are nearly all equal.

Definitions, chosen to follow the formula literally and to stay finite:

* std is the sample std (Bessel), like ``torch.std`` in veRL's ``grpo``; a task with one sample has std 0.
* a group of one has its own reward as mean, so its advantage is 0 — one response has no baseline. (veRL's
  ``grpo`` uses mean 0 there, which with a single-sample task would divide a bare reward by ε.)
* a constant-reward group or task gives exactly 0, not rounding noise / ε: statistics are taken in float64,
  where the mean of equal float32 rewards is exact.
* a sample whose task label is ``None`` (veRL's synthetic padding rows) gets 0 and enters no statistic.
* ``task_norm_std=group`` divides by the group's own std instead: equal to veRL's ``grpo`` wherever groups
  have two or more samples.

How the labels arrive. veRL 0.9.1 calls a registered estimator with only ``token_level_rewards``,
``response_mask``, ``config`` (``algorithm``) and ``index`` (uid) — no task. The ``qwenlong`` trainer mode
therefore wraps veRL's own ``_compute_advantage`` in :func:`provide_task_labels`, which hands the labels
(read from TransferQueue in the same key order veRL reads the batch) and the ``qwenlong.algos`` settings
to this estimator for the duration of that one call; everything else — KL-in-reward, rollout correction,
writing advantages back — stays veRL's code. Called without labels (say from ``trainer_mode=sync``), the
estimator raises instead of silently normalising by something else; ``qwenlong-verl plan`` rejects that
configuration before launch (:func:`qwenlong_verl.algos.config.plan_problems`).

The computation is vectorised: labels are factorised with ``pandas.factorize`` (hashing, O(n); veRL's
``as_torch_index`` sorts strings and alone costs about half the 5 ms budget at 8192 responses) and group
and task sums are ``index_add_`` reductions.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

from qwenlong_verl.algos.config import STD_MODES, TASK_NORM_ESTIMATOR, TRAINER_MODE


@dataclass
class TaskLabels:
    """What the trainer stage hands to one ``grpo_task_norm`` call, and what the call reports back."""

    task: Sequence[Any]
    """Task label per row, in the row order of the batch veRL passes; ``None`` = not a sample (padding)."""

    epsilon: float = 1e-6
    """ε of the denominator."""

    std_mode: str = "task"
    """``task`` or ``group``; see :attr:`qwenlong_verl.algos.config.AlgosConfig.task_norm_std`."""

    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    """Filled by the estimator: ``{task: {"std": σ, "samples": n}}`` of the batch it normalised."""


_ACTIVE: contextvars.ContextVar[TaskLabels | None] = contextvars.ContextVar("qwenlong_task_labels", default=None)


@contextlib.contextmanager
def provide_task_labels(labels: TaskLabels) -> Iterator[TaskLabels]:
    """Make ``labels`` visible to ``grpo_task_norm`` calls made inside the block (same thread/context)."""
    token = _ACTIVE.set(labels)
    try:
        yield labels
    finally:
        _ACTIVE.reset(token)


def _codes(labels: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Dense integer codes of ``labels`` (``-1`` for ``None``) and the distinct labels, in first-seen order."""
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(labels, dtype=object), use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)


def _group_sums(values: torch.Tensor, codes: torch.Tensor, n_groups: int) -> torch.Tensor:
    return torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add_(0, codes, values)


def _sample_std(values: torch.Tensor, codes: torch.Tensor, n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-code sample std (Bessel; 0 for a single member) and member count, over the given rows only."""
    count = _group_sums(torch.ones_like(values), codes, n_groups)
    mean = _group_sums(values, codes, n_groups) / count.clamp_min(1)
    centred = values - mean[codes]
    var = _group_sums(centred * centred, codes, n_groups) / (count - 1).clamp_min(1)
    return torch.where(count > 1, var.sqrt(), torch.zeros_like(var)), count


def task_norm_advantage(
    scores: torch.Tensor,
    group: Sequence[Any],
    task: Sequence[Any],
    *,
    epsilon: float = 1e-6,
    std_mode: str = "task",
    stats: dict[str, dict[str, float]] | None = None,
) -> torch.Tensor:
    """Scalar advantage per response (see the module docstring for the exact definition).

    Args:
        scores: ``(n,)`` outcome reward per response.
        group: ``(n,)`` group id per response (veRL's ``uid``).
        task: ``(n,)`` task label per response; ``None`` marks a row that is not a sample.
        epsilon: added to the std.
        std_mode: ``task`` (QwenLong-L1.5) or ``group`` (plain GRPO std).
        stats: if given, receives ``{task: {"std": σ, "samples": n}}`` for metrics.

    Returns:
        ``(n,)`` advantages, dtype and device of ``scores``.
    """
    n = scores.shape[0]
    if len(group) != n or len(task) != n:
        raise ValueError(
            f"grpo_task_norm: {n} rewards but {len(group)} group ids (uid) and {len(task)} task labels; "
            "labels must be read for exactly the rows veRL passes, in the same order"
        )
    if std_mode not in STD_MODES:
        raise ValueError(f"grpo_task_norm: std_mode must be one of {', '.join(STD_MODES)}, got {std_mode!r}")
    if n == 0:
        return scores.clone()

    device = scores.device
    task_codes, task_names = _codes(task)
    sample = torch.from_numpy(task_codes >= 0).to(device)
    rows = sample.nonzero().squeeze(-1)
    adv = torch.zeros(n, dtype=torch.float64, device=device)
    if rows.numel() == 0:
        return adv.to(scores.dtype)

    group_codes, _ = _codes(group)
    if (group_codes[rows.cpu().numpy()] < 0).any():
        raise ValueError(f"{TASK_NORM_ESTIMATOR}: a sample has no group id (uid is None)")
    values = scores.detach().to(torch.float64)[rows]
    g = torch.from_numpy(group_codes).to(device)[rows]
    n_groups = int(group_codes.max()) + 1
    group_count = _group_sums(torch.ones_like(values), g, n_groups)
    group_mean = _group_sums(values, g, n_groups) / group_count.clamp_min(1)
    centred = values - group_mean[g]

    t = torch.from_numpy(task_codes).to(device)[rows]
    task_std, task_count = _sample_std(values, t, len(task_names))
    if std_mode == "task":
        scale = task_std[t]
    else:
        group_std, _ = _sample_std(values, g, n_groups)
        scale = group_std[g]
    adv[rows] = centred / (scale + epsilon)

    if stats is not None:
        for i, name in enumerate(task_names.tolist()):
            stats[str(name)] = {"std": float(task_std[i]), "samples": float(task_count[i])}
    return adv.to(scores.dtype)


@register_adv_est(TASK_NORM_ESTIMATOR)
def compute_grpo_task_norm_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | None = None,
    config: Any = None,
    task: Sequence[Any] | None = None,
    epsilon: float | None = None,
    std_mode: str | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """veRL advantage estimator ``grpo_task_norm`` (outcome reward, one scalar per response).

    Args:
        token_level_rewards: ``(bs, response_length)``.
        response_mask: ``(bs, response_length)``.
        index: ``(bs,)`` group id (uid) per response, as veRL passes it.
        config: veRL's ``algorithm`` config (unused: our settings live in ``qwenlong.algos``).
        task: ``(bs,)`` task labels; if omitted, taken from the enclosing :func:`provide_task_labels`.
        epsilon, std_mode: override the settings carried by the labels.

    Returns:
        ``(advantages, returns)``, both ``(bs, response_length)`` and equal, as for veRL's ``grpo``.
    """
    active = _ACTIVE.get()
    if task is None:
        if active is None:
            raise ValueError(
                f"algorithm.adv_estimator={TASK_NORM_ESTIMATOR} got no per-sample task labels: veRL passes only "
                f"rewards and uid to an estimator, so run it under trainer.v1.trainer_mode={TRAINER_MODE}, "
                "whose _compute_advantage stage supplies them (or call it with task=...)"
            )
        task = active.task
    if index is None:
        raise ValueError(f"{TASK_NORM_ESTIMATOR} needs the group ids (uid) of the batch as `index`")
    eps = epsilon if epsilon is not None else (active.epsilon if active is not None else 1e-6)
    mode = std_mode if std_mode is not None else (active.std_mode if active is not None else "task")
    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1)
        stats = active.stats if active is not None else None
        scalar = task_norm_advantage(scores, index, task, epsilon=eps, std_mode=mode, stats=stats)
        advantages = scalar.unsqueeze(-1) * response_mask
    return advantages, advantages
