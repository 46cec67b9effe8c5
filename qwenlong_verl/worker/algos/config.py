"""``qwenlong.algos``: settings of task-norm advantage, negative-gradient clipping and AEPO.

The section sits in our Hydra configs with ``_target_: qwenlong_verl.worker.algos.config.AlgosConfig``, so
``qwenlong-verl plan`` instantiates it and a bad value fails on a laptop, naming the field. The checks
that span several veRL keys (which trainer mode runs these stages, whether entropy is computed at all)
are checked by the driver (:func:`qwenlong_verl.driver.checks.check_algorithm_stages`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from verl.base_config import BaseConfig

STD_MODES = ("task", "group")
NEG_CLIP_MODES = ("none", "token", "sequence")
AEPO_THRESHOLD_MODES = ("absolute", "relative")
"""How ``aepo_h_low``/``aepo_h_high`` are read (the switch each builds: ``entropy_mask.AEPO_THRESHOLD_MODES``)."""


@dataclass
class AlgosConfig(BaseConfig):
    """QwenLong-L1.5 advantage and gradient-masking settings (section ``qwenlong.algos``).

    Everything here is off by default, which is the QwenLong-L1 (plain DAPO) setting. The task-specific
    advantage itself is switched on by ``algorithm.adv_estimator=grpo_task_norm``; these fields tune it.
    """

    task_norm_epsilon: float = 1e-6
    """ε added to the std in the task-norm denominator, as veRL's ``grpo`` does; must be > 0."""

    task_norm_std: str = "task"
    """Denominator of ``grpo_task_norm``: ``task`` = std of the rewards of every sample of the same task in
    the batch (QwenLong-L1.5); ``group`` = std of the sample's own group (plain GRPO)."""

    neg_clip_mode: str = "none"
    """Negative-gradient clipping (L1.5 §4.3): ``none``; ``token`` drops negative-advantage tokens whose
    entropy exceeds :attr:`neg_clip_token_entropy`; ``sequence`` drops negative-advantage responses whose
    mean token entropy exceeds :attr:`neg_clip_seq_entropy`."""

    neg_clip_token_entropy: float | None = None
    """τ_token in nats, required for ``neg_clip_mode=token``. No published default: read
    ``qwenlong/entropy`` from a short run and pick a value in the upper tail of token entropies."""

    neg_clip_seq_entropy: float | None = None
    """τ_seq in nats (mean token entropy of one response), required for ``neg_clip_mode=sequence``."""

    aepo_enable: bool = False
    """AEPO (L1.5 §4.4): drop every negative-advantage response from the update while the batch entropy is
    high, with hysteresis between :attr:`aepo_h_low` and :attr:`aepo_h_high`."""

    aepo_threshold_mode: str = "absolute"
    """How :attr:`aepo_h_low` / :attr:`aepo_h_high` are read: ``absolute`` = batch entropy in nats;
    ``relative`` = multiples of the mean batch entropy of the run's first :attr:`aepo_warmup_steps` steps
    (AEPO off during them), turned into nats once and then fixed. Each curriculum phase measures its own."""

    aepo_warmup_steps: int = 0
    """With ``aepo_threshold_mode=relative``: steps whose batch entropy makes the reference (>= 1); else 0."""

    aepo_h_low: float | None = None
    """Batch entropy below which negative responses come back into the update: nats, or a multiple of the
    warm-up entropy with ``relative``; required with AEPO."""

    aepo_h_high: float | None = None
    """Batch entropy above which negative responses leave the update: nats, or a multiple of the warm-up
    entropy with ``relative``; required with AEPO, > aepo_h_low."""

    def __post_init__(self) -> None:
        eps = self.task_norm_epsilon
        if not _is_number(eps) or not math.isfinite(eps) or eps <= 0:
            raise ValueError(f"task_norm_epsilon must be a finite number > 0, got {eps!r}")
        if self.task_norm_std not in STD_MODES:
            raise ValueError(f"task_norm_std must be one of {', '.join(STD_MODES)}, got {self.task_norm_std!r}")
        if self.neg_clip_mode not in NEG_CLIP_MODES:
            raise ValueError(f"neg_clip_mode must be one of {', '.join(NEG_CLIP_MODES)}, got {self.neg_clip_mode!r}")
        for name in ("neg_clip_token_entropy", "neg_clip_seq_entropy", "aepo_h_low", "aepo_h_high"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not math.isfinite(value) or value < 0):
                unit = (
                    "an entropy in nats" if name.startswith("neg_clip") else "nats or a multiple of the warm-up entropy"
                )
                raise ValueError(f"{name} must be {unit} (a finite number >= 0) or null, got {value!r}")
        if self.neg_clip_mode == "token" and self.neg_clip_token_entropy is None:
            raise ValueError("neg_clip_mode=token needs neg_clip_token_entropy (τ_token, nats)")
        if self.neg_clip_mode == "sequence" and self.neg_clip_seq_entropy is None:
            raise ValueError("neg_clip_mode=sequence needs neg_clip_seq_entropy (τ_seq, nats)")
        if not isinstance(self.aepo_enable, bool):
            raise ValueError(f"aepo_enable must be true or false, got {self.aepo_enable!r}")
        if self.aepo_threshold_mode not in AEPO_THRESHOLD_MODES:
            raise ValueError(
                f"aepo_threshold_mode must be one of {', '.join(AEPO_THRESHOLD_MODES)}, got {self.aepo_threshold_mode!r}"
            )
        steps = self.aepo_warmup_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"aepo_warmup_steps must be an integer >= 0, got {steps!r}")
        relative = self.aepo_threshold_mode == "relative"
        if relative and steps < 1:
            raise ValueError(
                "aepo_threshold_mode=relative needs aepo_warmup_steps >= 1 (steps that measure the entropy)"
            )
        if not relative and steps:
            raise ValueError(
                f"aepo_warmup_steps={steps} is read only with aepo_threshold_mode=relative; set it to 0 or use relative"
            )
        if self.aepo_enable:
            if self.aepo_h_low is None or self.aepo_h_high is None:
                unit = "multiples of the warm-up entropy" if relative else "batch entropy bounds, nats"
                raise ValueError(f"aepo_enable=true needs aepo_h_low and aepo_h_high ({unit})")
            if not self.aepo_h_low < self.aepo_h_high:
                raise ValueError(
                    f"aepo_h_low ({self.aepo_h_low}) must be below aepo_h_high ({self.aepo_h_high}) for hysteresis"
                )

    @property
    def masks_gradients(self) -> bool:
        """Whether the actor-update stage has to read entropy and mask advantages at all."""
        return self.neg_clip_mode != "none" or self.aepo_enable


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
