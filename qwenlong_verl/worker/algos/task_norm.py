"""Task-specific advantage (QwenLong-L1.5 §4.2), registered in veRL as ``grpo_task_norm``.

    A_i = (r_i − mean of r over the group of i) / (std of r over every sample of i's task in the batch + ε)

The group (veRL's ``uid``: one prompt and its ``rollout.n`` responses) gives the baseline, as in GRPO;
the task label (``multi_hop``, ``numerical``, ``temporal``, ... — any labels the data carries,
:func:`qwenlong_verl.common.tasks.task_label_of`) gives the scale, so a task whose rewards spread widely does not
drown the gradient of a task whose rewards are nearly all equal.

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
configuration before launch (:func:`qwenlong_verl.driver.checks.check_algorithm_stages`).

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

from qwenlong_verl.common.names import TASK_NORM_ESTIMATOR, TRAINER_MODE
from qwenlong_verl.worker.algos.config import STD_MODES


@dataclass
class TaskLabels:
    """What the trainer stage hands to one ``grpo_task_norm`` call, and what the call reports back."""

    task: Sequence[Any]
    """Task label per row, in the row order of the batch veRL passes; ``None`` = not a sample (padding)."""

    epsilon: float = 1e-6
    """ε of the denominator."""

    std_mode: str = "task"
    """``task`` or ``group``; see :attr:`qwenlong_verl.worker.algos.config.AlgosConfig.task_norm_std`."""

    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    """Filled by the estimator: ``{task: {"std": σ, "samples": n}}`` of the batch it normalised."""

    broadcast: Sequence[int] | None = None
    """Multi-output trajectories (memory agent): per row, the row whose advantage it takes — its trajectory's final
    output, the one the reward scored (:class:`qwenlong_verl.worker.agent.turns.Turns`); the other rows carry
    ``task=None`` so only final rows enter the statistics. ``None``: every row keeps its own."""


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


class _Buckets:
    """Weighted per-code sums over the rows that are samples (weight 1) — rows with weight 0 enter nothing."""

    def __init__(self, codes: np.ndarray, n_codes: int, weight: torch.Tensor):
        self.codes = torch.from_numpy(codes).to(weight.device)
        self.n_codes = n_codes
        self.weight = weight
        self.count = self.sum(torch.ones_like(weight))

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.n_codes, dtype=values.dtype, device=values.device)
        return out.index_add_(0, self.codes, values * self.weight)

    def centred(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` minus the mean of their code."""
        return values - (self.sum(values) / self.count.clamp_min(1))[self.codes]

    def std(self, values: torch.Tensor) -> torch.Tensor:
        """Per-code sample std (Bessel), 0 for a code with fewer than two samples."""
        c = self.centred(values)
        var = self.sum(c * c) / (self.count - 1).clamp_min(1)
        return torch.where(self.count > 1, var.sqrt(), torch.zeros_like(var))


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

    task_codes, task_names = _codes(task)
    group_codes, group_names = _codes(group)
    is_sample = task_codes >= 0
    if (group_codes[is_sample] < 0).any():
        raise ValueError(f"{TASK_NORM_ESTIMATOR}: a sample has no group id (uid is None)")
    # rows that are not samples go to an extra code each side and carry weight 0
    n_tasks, n_groups = len(task_names), len(group_names)
    task_codes = np.where(is_sample, task_codes, n_tasks)
    group_codes = np.where(group_codes >= 0, group_codes, n_groups)
    values = scores.detach().to(torch.float64)
    weight = torch.from_numpy(is_sample).to(device=values.device, dtype=torch.float64)
    groups = _Buckets(group_codes, n_groups + 1, weight)
    tasks = _Buckets(task_codes, n_tasks + 1, weight)

    task_std = tasks.std(values)
    scale = task_std[tasks.codes] if std_mode == "task" else groups.std(values)[groups.codes]
    adv = torch.where(weight > 0, groups.centred(values) / (scale + epsilon), torch.zeros_like(values))

    if stats is not None:
        for i, name in enumerate(task_names.tolist()):
            stats[str(name)] = {"std": float(task_std[i]), "samples": float(tasks.count[i])}
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
        if active is not None and active.broadcast is not None:
            scalar = scalar[torch.as_tensor(np.asarray(active.broadcast, dtype=np.int64), device=scalar.device)]
        advantages = scalar.unsqueeze(-1) * response_mask
    return advantages, advantages
