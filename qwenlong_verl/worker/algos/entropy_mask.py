"""Negative-gradient clipping (QwenLong-L1.5 §4.3) and AEPO (§4.4), as pure functions on padded tensors.

All inputs are veRL's padded ``(bs, response_length)`` tensors: ``advantages`` (after the estimator),
``entropy`` (per-token entropy of the old policy, written to TransferQueue by veRL's old-log-prob stage
with ``calculate_entropy=True``) and ``response_mask``. A response is *negative* when the mean of its
advantages over its response tokens is below zero (for outcome estimators all its tokens share the sign).

* Token clipping drops the policy gradient of negative-advantage tokens whose entropy exceeds τ_token.
* Sequence clipping drops whole negative responses whose mean token entropy exceeds τ_seq.
* AEPO drops every negative response while :class:`AepoController` is active. The controller watches the
  batch entropy — mean over responses of their mean token entropy — and switches on above ``h_high``, off
  below ``h_low``, and keeps its state in between (hysteresis). Negative gradients raise entropy and
  positive-only updates lower it, so this holds entropy inside the band. (The reference snippet masks
  while the entropy is *inside* the band, contradicting its own comment and the paper; we follow the paper.)
  The bounds are nats, or multiples of the mean batch entropy of the run's first steps
  (:class:`EntropyWarmup`; AEPO is off while it measures).

Why here and not in a registered policy loss: veRL 0.9.1 calls a loss with old/new log-probs, advantages,
mask, aggregation mode, config and IS weights — no entropy, no batch — so a loss mode cannot see what these
rules depend on. The entropy that matters is the old (rollout-time, on-policy) policy's, which veRL already
computes once per batch; masking the advantages before the actor update uses it at no extra cost and works
with every loss mode.

Token-mean denominator. We drop a token by setting its **advantage to 0**, not its ``response_mask``: the
token stays in the token-mean denominator (veRL's worker takes it from ``loss_mask.sum()`` of the mini-batch
anyway), its PPO term ``-A·ratio`` and that term's gradient are exactly 0, and every kept token's gradient
is bit-for-bit what the unmasked update gives it. Removing tokens from the denominator instead would
rescale the kept tokens' gradients by the share dropped — AEPO switching on would abruptly enlarge the
positive update by up to 2× in the very regime it is meant to calm. Side effects are limited to the
advantage: the entropy bonus and KL loss (both off in our recipes) still see masked tokens, and
``response_mask`` and the response-length metrics stay truthful.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

logger = logging.getLogger(__name__)


def _row_mean(values: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """``(bs,)`` mean of ``values`` over each row's response tokens (0 for a row with none)."""
    total = torch.where(response_mask.bool(), values, 0.0).sum(dim=-1)
    return total / response_mask.to(total.dtype).sum(dim=-1).clamp_min(1)


def sequence_mean_entropy(entropy: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """``(bs,)`` mean token entropy of each response over its response tokens (0 for a response with none)."""
    return _row_mean(entropy, response_mask)


def batch_entropy(entropy: torch.Tensor, response_mask: torch.Tensor) -> float:
    """Mean over responses (with at least one response token) of their mean token entropy; NaN if none."""
    has_tokens = response_mask.bool().any(dim=-1)
    if not bool(has_tokens.any()):
        return math.nan
    return float(sequence_mean_entropy(entropy, response_mask)[has_tokens].double().mean())


def sequence_advantage(advantages: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """``(bs,)`` mean advantage of each response over its response tokens (0 for a response with none)."""
    return _row_mean(advantages, response_mask)


def negative_response_tokens(advantages: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Bool ``(bs, T)``: every response token of every negative response (what AEPO drops)."""
    negative = sequence_advantage(advantages, response_mask) < 0
    return negative.unsqueeze(-1) & response_mask.bool()


def negative_gradient_clip(
    advantages: torch.Tensor,
    entropy: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    mode: str,
    token_threshold: float | None = None,
    seq_threshold: float | None = None,
) -> torch.Tensor:
    """Bool ``(bs, T)`` of the tokens whose gradient negative-gradient clipping drops.

    ``mode``: ``none``; ``token`` — response tokens with advantage < 0 and entropy > ``token_threshold``;
    ``sequence`` — all response tokens of negative responses whose mean token entropy > ``seq_threshold``.
    """
    in_response = response_mask.bool()
    if mode == "none":
        return torch.zeros_like(in_response)
    if mode == "token":
        if token_threshold is None:
            raise ValueError("token clipping needs token_threshold (τ_token)")
        return in_response & (advantages < 0) & (entropy > token_threshold)
    if mode == "sequence":
        if seq_threshold is None:
            raise ValueError("sequence clipping needs seq_threshold (τ_seq)")
        hot = sequence_mean_entropy(entropy, response_mask) > seq_threshold
        return negative_response_tokens(advantages, response_mask) & hot.unsqueeze(-1)
    raise ValueError(f"unknown negative-gradient clipping mode {mode!r}; use none, token or sequence")


def drop_gradients(advantages: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """Advantages with the dropped tokens set to exactly 0 (a new tensor)."""
    return advantages.masked_fill(drop, 0.0)


@dataclass
class EntropyWarmup:
    """The reference of relative AEPO thresholds: the mean batch entropy of the run's first :attr:`steps` steps.

    Absolute thresholds need the entropy level of the model at hand, which differs by model, temperature, task
    and context length (QwenLong-L1.5's curves sit between 0.10 and 0.30 nats; a tiny random model is near
    ln(vocab)). Relative thresholds are multiples of what this run measured while AEPO was still off.
    """

    steps: int
    """Measured steps (batches with response tokens) the reference averages over."""

    low: float
    """``h_low = low × reference``."""

    high: float
    """``h_high = high × reference``."""

    total: float = 0.0
    """Sum of the batch entropies measured so far."""

    count: int = 0
    """Steps measured so far."""

    reference: float | None = None
    """The mean batch entropy of the warm-up, set once when :attr:`count` reaches :attr:`steps`, then fixed."""

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"relative AEPO thresholds need warm-up steps >= 1, got {self.steps!r}")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and 0 <= self.low < self.high):
            raise ValueError(f"relative AEPO needs factors 0 <= low < high, got low={self.low}, high={self.high}")

    @property
    def done(self) -> bool:
        return self.reference is not None

    def add(self, entropy: float) -> None:
        """Count one step's batch entropy (NaN — a batch without response tokens — is not a measurement)."""
        if self.done or not math.isfinite(entropy):
            return
        self.total += float(entropy)
        self.count += 1
        self._complete_if_due()

    def _complete_if_due(self) -> None:
        if self.reference is None and self.count >= self.steps:
            self.reference = self.total / self.count

    def bounds(self) -> tuple[float, float]:
        """``(h_low, h_high)`` in nats from the finished reference."""
        if self.reference is None:
            raise RuntimeError(f"AEPO warm-up unfinished: {self.count} of {self.steps} steps measured")
        if not self.reference > 0:
            raise ValueError(
                f"AEPO relative thresholds: the mean batch entropy of the first {self.count} steps is "
                f"{self.reference}, so every multiple of it is too; use aepo_threshold_mode=absolute"
            )
        return self.low * self.reference, self.high * self.reference

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "total": self.total, "count": self.count, "reference": self.reference}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the measurements; a finished reference stays fixed even if ``steps`` was changed since."""
        total, count, reference = state.get("total"), state.get("count"), state.get("reference")
        if not _is_number(total) or isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"AEPO warm-up state has wrong types: total={total!r}, count={count!r}")
        if reference is not None and not _is_number(reference):
            raise ValueError(f"AEPO warm-up state has a non-numeric reference {reference!r}")
        self.total, self.count = float(total), count
        self.reference = None if reference is None else float(reference)
        if self.reference is not None and state.get("steps") != self.steps:
            logger.info(
                "AEPO warm-up steps changed on resume (saved %s, configured %s); the measured reference stays",
                state.get("steps"),
                self.steps,
            )
        self._complete_if_due()


@dataclass
class AepoController:
    """Hysteresis switch of AEPO on the batch entropy; its state survives steps and checkpoints.

    Absolute thresholds: ``AepoController(h_low=…, h_high=…)``. Relative ones: ``AepoController(warmup=…)``;
    the bounds are ``None`` (and AEPO off) until the :class:`EntropyWarmup` has its reference, then fixed.
    """

    h_low: float | None = None
    """Below this batch entropy (nats), negative responses come back."""

    h_high: float | None = None
    """Above this batch entropy (nats), negative responses leave the update."""

    warmup: EntropyWarmup | None = None
    """Relative thresholds: where ``h_low``/``h_high`` come from; ``None`` for absolute ones."""

    active: bool = False
    """Whether negative responses are currently masked."""

    switches: int = 0
    """How many times :attr:`active` changed (for the metrics)."""

    last_entropy: float = math.nan
    """The batch entropy of the latest :meth:`update`."""

    last_was_warmup: bool = field(default=False, repr=False)
    """Whether the latest :meth:`update` was a warm-up step (for the metrics; not saved)."""

    def __post_init__(self) -> None:
        if self.warmup is not None:
            if self.h_low is not None or self.h_high is not None:
                raise ValueError("AEPO with a warm-up derives h_low/h_high itself; pass either bounds or a warm-up")
            return
        if not _finite_band(self.h_low, self.h_high):
            raise ValueError(f"AEPO needs finite h_low < h_high, got h_low={self.h_low}, h_high={self.h_high}")

    @property
    def warming_up(self) -> bool:
        """Whether the relative reference is still being measured (AEPO off)."""
        return self.h_low is None

    def update(self, entropy: float) -> bool:
        """Feed this step's batch entropy; returns whether to mask negative responses in this update.

        During a warm-up → off, and the entropy counts towards the reference. Afterwards: above ``h_high`` → on;
        below ``h_low`` → off; in between (or NaN: no response tokens) → unchanged.
        """
        self.last_entropy = float(entropy)
        self.last_was_warmup = self.warming_up
        if self.last_was_warmup:
            self.warmup.add(entropy)
            if self.warmup.done:
                self._set_bounds_from_warmup("measured")
            return False
        new = self.active
        if entropy > self.h_high:
            new = True
        elif entropy < self.h_low:
            new = False
        if new != self.active:
            self.switches += 1
            logger.info(
                "AEPO %s: batch entropy %.4f %s %s",
                "on" if new else "off",
                entropy,
                ">" if new else "<",
                self.h_high if new else self.h_low,
            )
        self.active = new
        return new

    def _set_bounds_from_warmup(self, how: str) -> None:
        self.h_low, self.h_high = self.warmup.bounds()
        logger.info(
            "AEPO thresholds %s: reference batch entropy %.4f nats (mean of %d steps) -> h_low %.4f (x%g), "
            "h_high %.4f (x%g), fixed for the rest of the run",
            how,
            self.warmup.reference,
            self.warmup.count,
            self.h_low,
            self.warmup.low,
            self.h_high,
            self.warmup.high,
        )

    def metrics(self) -> dict[str, float]:
        """``qwenlong/aepo_*`` figures of the latest update (thresholds once known, in nats)."""
        out = {
            "qwenlong/aepo_active": 1.0 if self.active else 0.0,
            "qwenlong/aepo_switches": float(self.switches),
            "qwenlong/aepo_warmup": 1.0 if self.last_was_warmup else 0.0,
        }
        if not self.warming_up:
            out["qwenlong/aepo_h_low"] = float(self.h_low)
            out["qwenlong/aepo_h_high"] = float(self.h_high)
        if self.warmup is not None and self.warmup.done:
            out["qwenlong/aepo_reference"] = float(self.warmup.reference)
        return out

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (NaN entropy stored as ``None``)."""
        last = None if math.isnan(self.last_entropy) else self.last_entropy
        return {
            "active": self.active,
            "switches": self.switches,
            "last_entropy": last,
            "h_low": self.h_low,
            "h_high": self.h_high,
            "warmup": self.warmup.state_dict() if self.warmup is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :attr:`active`, :attr:`switches`, :attr:`last_entropy` and a warm-up's measurements.

        Bounds stay as configured: a resumed run may deliberately change absolute ``h_low``/``h_high`` or the
        relative factors (applied to the saved reference); the switch state carries over and the next
        :meth:`update` applies the new bounds. A relative run resumed from a state without a warm-up (AEPO
        was absolute, or off, when it was saved) measures its reference again, AEPO off meanwhile.
        """
        missing = [k for k in ("active", "switches") if k not in state]
        if missing:
            raise ValueError(f"AEPO state lacks {', '.join(missing)}; got keys {sorted(state)}")
        if not isinstance(state["active"], bool) or not isinstance(state["switches"], int):
            raise ValueError(f"AEPO state has wrong types: active={state['active']!r}, switches={state['switches']!r}")
        self.active = state["active"]
        self.switches = state["switches"]
        last = state.get("last_entropy")
        self.last_entropy = math.nan if last is None else float(last)
        if self.warmup is not None:
            saved = state.get("warmup")
            if saved is None:
                logger.warning(
                    "saved AEPO state has no warm-up reference; measuring it again over the next %d steps",
                    self.warmup.steps,
                )
            else:
                self.warmup.load_state_dict(saved)
            if self.warmup.done:
                self._set_bounds_from_warmup("restored")
            else:
                self.active = False
        if (state.get("h_low"), state.get("h_high")) != (self.h_low, self.h_high):
            logger.info(
                "AEPO bounds changed on resume: saved [%s, %s], now [%s, %s]",
                state.get("h_low"),
                state.get("h_high"),
                self.h_low,
                self.h_high,
            )


AEPO_THRESHOLD_MODES: dict[str, Callable[[float, float, int], AepoController]] = {
    "absolute": lambda low, high, warmup_steps: AepoController(h_low=low, h_high=high),
    "relative": lambda low, high, warmup_steps: AepoController(warmup=EntropyWarmup(warmup_steps, low, high)),
}
"""``qwenlong.algos.aepo_threshold_mode`` → how ``(aepo_h_low, aepo_h_high, aepo_warmup_steps)`` make the switch."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite_band(low: Any, high: Any) -> bool:
    return _is_number(low) and _is_number(high) and math.isfinite(low) and math.isfinite(high) and low < high


@dataclass
class MaskedAdvantages:
    """Result of :func:`mask_negative_gradients`."""

    advantages: torch.Tensor
    """The advantages to train on (dropped tokens are 0)."""

    dropped: torch.Tensor
    """Bool ``(bs, T)``: tokens whose policy gradient is dropped."""

    metrics: dict[str, float] = field(default_factory=dict)
    """Per-step figures for veRL's metrics dict (``qwenlong/...``)."""


def mask_negative_gradients(
    advantages: torch.Tensor,
    entropy: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    mode: str = "none",
    token_threshold: float | None = None,
    seq_threshold: float | None = None,
    aepo: AepoController | None = None,
) -> MaskedAdvantages:
    """One actor update's masking: clipping rule, then AEPO (fed this batch's entropy first), unioned.

    Metrics: ``qwenlong/entropy`` (batch entropy), ``qwenlong/negative_share`` (share of responses with a
    negative advantage), ``qwenlong/neg_clip_share`` (share of response tokens dropped by clipping),
    ``qwenlong/masked_share`` (share of response tokens dropped by anything), ``qwenlong/masked_response_share``
    (share of responses with at least one dropped token) and, with AEPO, :meth:`AepoController.metrics`:
    ``qwenlong/aepo_active`` (1/0, the state used for this update), ``qwenlong/aepo_switches`` (cumulative),
    ``qwenlong/aepo_warmup`` (1 while a relative reference is measured), ``qwenlong/aepo_h_low`` /
    ``qwenlong/aepo_h_high`` (nats, once known) and ``qwenlong/aepo_reference`` (relative, once measured).
    """
    n_tokens = max(int(response_mask.sum()), 1)
    n_responses = max(int((response_mask.sum(dim=-1) > 0).sum()), 1)

    entropy_now = batch_entropy(entropy, response_mask)
    negative = negative_response_tokens(advantages, response_mask)
    clipped = negative_gradient_clip(
        advantages, entropy, response_mask, mode=mode, token_threshold=token_threshold, seq_threshold=seq_threshold
    )
    dropped = clipped
    metrics = {
        "qwenlong/entropy": entropy_now,
        "qwenlong/negative_share": float(negative.any(dim=-1).sum()) / n_responses,
        "qwenlong/neg_clip_share": float(clipped.sum()) / n_tokens,
    }
    if aepo is not None:
        if aepo.update(entropy_now):
            dropped = dropped | negative
        metrics.update(aepo.metrics())
    metrics["qwenlong/masked_share"] = float(dropped.sum()) / n_tokens
    metrics["qwenlong/masked_response_share"] = float(dropped.any(dim=-1).sum()) / n_responses
    return MaskedAdvantages(advantages=drop_gradients(advantages, dropped), dropped=dropped, metrics=metrics)
