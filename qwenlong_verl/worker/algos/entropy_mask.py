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
class AepoController:
    """Hysteresis switch of AEPO on the batch entropy; its state survives steps and checkpoints."""

    h_low: float
    """Below this batch entropy, negative responses come back."""

    h_high: float
    """Above this batch entropy, negative responses leave the update."""

    active: bool = False
    """Whether negative responses are currently masked."""

    switches: int = 0
    """How many times :attr:`active` changed (for the metrics)."""

    last_entropy: float = math.nan
    """The batch entropy of the latest :meth:`update`."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.h_low) and math.isfinite(self.h_high) and self.h_low < self.h_high):
            raise ValueError(f"AEPO needs finite h_low < h_high, got h_low={self.h_low}, h_high={self.h_high}")

    def update(self, entropy: float) -> bool:
        """Feed this step's batch entropy; returns whether to mask negative responses in this update.

        Above ``h_high`` → on; below ``h_low`` → off; in between (or NaN: no response tokens) → unchanged.
        """
        self.last_entropy = float(entropy)
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

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (NaN entropy stored as ``None``)."""
        last = None if math.isnan(self.last_entropy) else self.last_entropy
        return {
            "active": self.active,
            "switches": self.switches,
            "last_entropy": last,
            "h_low": self.h_low,
            "h_high": self.h_high,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :attr:`active`, :attr:`switches` and :attr:`last_entropy`; bounds stay as configured.

        A resumed run may deliberately change ``h_low``/``h_high``; the switch state carries over and the
        next :meth:`update` applies the new bounds.
        """
        missing = [k for k in ("active", "switches") if k not in state]
        if missing:
            raise ValueError(f"AEPO state lacks {', '.join(missing)}; got keys {sorted(state)}")
        if not isinstance(state["active"], bool) or not isinstance(state["switches"], int):
            raise ValueError(f"AEPO state has wrong types: active={state['active']!r}, switches={state['switches']!r}")
        if (state.get("h_low"), state.get("h_high")) != (self.h_low, self.h_high):
            logger.info(
                "AEPO bounds changed on resume: saved [%s, %s], configured [%s, %s]",
                state.get("h_low"),
                state.get("h_high"),
                self.h_low,
                self.h_high,
            )
        self.active = state["active"]
        self.switches = state["switches"]
        last = state.get("last_entropy")
        self.last_entropy = math.nan if last is None else float(last)


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
    (share of responses with at least one dropped token) and, with AEPO, ``qwenlong/aepo_active`` (1/0, the
    state used for this update) and ``qwenlong/aepo_switches`` (cumulative).
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
        metrics["qwenlong/aepo_active"] = 1.0 if aepo.active else 0.0
        metrics["qwenlong/aepo_switches"] = float(aepo.switches)
    metrics["qwenlong/masked_share"] = float(dropped.sum()) / n_tokens
    metrics["qwenlong/masked_response_share"] = float(dropped.any(dim=-1).sum()) / n_responses
    return MaskedAdvantages(advantages=drop_gradients(advantages, dropped), dropped=dropped, metrics=metrics)
