"""Negative-gradient clipping and AEPO: which tokens drop, and what veRL's own PPO loss then does with them."""

from __future__ import annotations

import json
import math
import statistics

import pytest
import torch
from verl.trainer.ppo.core_algos import get_policy_loss_fn
from verl.workers.config import FSDPActorConfig

from qwenlong_verl.worker.algos.entropy_mask import (
    AepoController,
    EntropyWarmup,
    batch_entropy,
    mask_negative_gradients,
    negative_gradient_clip,
    negative_response_tokens,
    sequence_mean_entropy,
)


def make_batch(seed=0, bs=12, width=10):
    """Padded veRL-style tensors: ragged responses, outcome advantages of both signs, a row with no tokens."""
    gen = torch.Generator().manual_seed(seed)
    lengths = [3 + (i * 5) % (width - 2) for i in range(bs)]
    lengths[-1] = 0  # e.g. a synthetic padding row: response_mask all zero
    mask = torch.zeros(bs, width)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    scalar = torch.tensor([(-1.0) ** i * (0.5 + i / bs) for i in range(bs)])
    advantages = scalar.unsqueeze(-1) * mask
    entropy = torch.rand(bs, width, generator=gen) * 2.0 * mask
    return advantages, entropy, mask


# ------------------------------------------------------------------ which tokens


def test_token_mode_drops_exactly_hot_negative_tokens():
    adv, ent, mask = make_batch()
    drop = negative_gradient_clip(adv, ent, mask, mode="token", token_threshold=1.0)
    for i in range(adv.shape[0]):
        for t in range(adv.shape[1]):
            expected = bool(mask[i, t]) and adv[i, t] < 0 and ent[i, t] > 1.0
            assert bool(drop[i, t]) == expected
    assert drop.any() and not drop.all()


def test_sequence_mode_drops_whole_hot_negative_responses():
    adv, ent, mask = make_batch()
    ent[:, -1] = 50.0  # beyond every response: must not count in the mean
    drop = negative_gradient_clip(adv, ent, mask, mode="sequence", seq_threshold=1.0)
    for i in range(adv.shape[0]):
        n = int(mask[i].sum())
        mean = statistics.fmean(ent[i, :n].tolist()) if n else 0.0
        hot_negative = n > 0 and adv[i, 0] < 0 and mean > 1.0
        assert torch.equal(drop[i], mask[i].bool() & hot_negative)
    assert drop.any(dim=-1).sum() >= 1


def test_none_mode_drops_nothing_and_bad_modes_fail():
    adv, ent, mask = make_batch()
    assert not negative_gradient_clip(adv, ent, mask, mode="none").any()
    with pytest.raises(ValueError, match="unknown negative-gradient clipping mode 'tokens'"):
        negative_gradient_clip(adv, ent, mask, mode="tokens")
    with pytest.raises(ValueError, match="τ_token"):
        negative_gradient_clip(adv, ent, mask, mode="token")


def test_batch_entropy_is_mean_over_responses_of_mean_token_entropy():
    adv, ent, mask = make_batch()
    per_response = [statistics.fmean(ent[i, : int(mask[i].sum())].tolist()) for i in range(11)]  # row 11 empty
    assert batch_entropy(ent, mask) == pytest.approx(statistics.fmean(per_response), rel=1e-6)
    token_mean = float((ent * mask).sum() / mask.sum())
    assert batch_entropy(ent, mask) != pytest.approx(token_mean, rel=1e-3)  # not veRL's actor/entropy
    assert sequence_mean_entropy(ent, mask)[-1] == 0.0
    assert math.isnan(batch_entropy(ent, torch.zeros_like(mask)))


# ------------------------------------------------------------------ gradients through veRL's own loss


def actor_config(agg):
    return FSDPActorConfig(
        strategy="fsdp",
        ppo_micro_batch_size_per_gpu=1,
        rollout_n=1,
        clip_ratio_low=0.2,
        clip_ratio_high=0.28,
        loss_agg_mode=agg,
    )


def policy_grad(advantages, old_log_prob, log_prob_values, mask, agg):
    """Gradient of veRL's vanilla PPO loss w.r.t. the new log-probs, normalised as the worker does."""
    config = actor_config(agg)
    # the worker's global batch info: token count from loss_mask (= response_mask), sequence count, dp 1
    config.global_batch_info.update(
        dp_size=1,
        batch_num_tokens=int(mask.sum()),
        global_batch_size=int((mask.sum(-1) > 0).sum()),
        loss_scale_factor=None,
    )
    log_prob = log_prob_values.clone().requires_grad_(True)
    loss, _ = get_policy_loss_fn("vanilla")(
        old_log_prob=old_log_prob,
        log_prob=log_prob,
        advantages=advantages,
        response_mask=mask.bool(),
        loss_agg_mode=agg,
        config=config,
    )
    loss.backward()
    return log_prob.grad


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
@pytest.mark.parametrize("rule", ["token", "sequence", "aepo"])
def test_dropped_tokens_get_zero_gradient_kept_tokens_exactly_vanilla(agg, rule):
    adv, ent, mask = make_batch(seed=1)
    gen = torch.Generator().manual_seed(7)
    old = -torch.rand(adv.shape, generator=gen) * 3
    new = old + (torch.rand(adv.shape, generator=gen) - 0.5) * 0.6  # some ratios outside the clip range
    kwargs = {
        "token": dict(mode="token", token_threshold=1.0),
        "sequence": dict(mode="sequence", seq_threshold=0.9),
        "aepo": dict(aepo=AepoController(h_low=0.1, h_high=0.2)),  # entropy ~1: switches on
    }[rule]
    out = mask_negative_gradients(adv, ent, mask, **kwargs)
    dropped = out.dropped
    assert dropped.any(), "the case must drop something"
    vanilla = policy_grad(adv, old, new, mask, agg)
    masked = policy_grad(out.advantages, old, new, mask, agg)
    assert torch.equal(masked[dropped], torch.zeros(int(dropped.sum())))
    kept = mask.bool() & ~dropped
    assert torch.equal(masked[kept], vanilla[kept])
    assert vanilla[dropped].abs().sum() > 0, "the dropped tokens did carry gradient before"


def test_masking_via_response_mask_would_rescale_kept_tokens():
    # Why advantages, not response_mask: with a token-mean over the remaining tokens, every kept token's
    # gradient grows by tokens/kept. This is the behaviour the module docstring rules out.
    adv, ent, mask = make_batch(seed=2)
    gen = torch.Generator().manual_seed(5)
    old = -torch.rand(adv.shape, generator=gen)
    out = mask_negative_gradients(adv, ent, mask, aepo=AepoController(h_low=0.1, h_high=0.2))
    kept = mask.bool() & ~out.dropped
    ours = policy_grad(out.advantages, old, old.clone(), mask, "token-mean")
    shrunk_mask = mask * (~out.dropped)
    other = policy_grad(adv, old, old.clone(), shrunk_mask, "token-mean")
    ratio = float(mask.sum() / shrunk_mask.sum())
    torch.testing.assert_close(other[kept], ours[kept] * ratio)
    assert ratio > 1.5


# ------------------------------------------------------------------ AEPO hysteresis


def test_aepo_hysteresis_both_ways():
    c = AepoController(h_low=0.3, h_high=0.6)
    trace = [c.update(h) for h in (0.5, 0.7, 0.5, 0.31, 0.29, 0.5, 0.59, 0.61, math.nan, 0.1)]
    assert trace == [False, True, True, True, False, False, False, True, True, False]
    assert c.switches == 4
    assert c.last_entropy == 0.1


def test_aepo_state_round_trips_through_json():
    c = AepoController(h_low=0.3, h_high=0.6)
    c.update(0.9)
    saved = json.loads(json.dumps(c.state_dict()))
    restored = AepoController(h_low=0.3, h_high=0.6)
    restored.load_state_dict(saved)
    assert (restored.active, restored.switches, restored.last_entropy) == (True, 1, 0.9)
    # in the band the restored switch stays on, as the original would
    assert restored.update(0.45) is True and c.update(0.45) is True
    fresh = AepoController(h_low=0.3, h_high=0.6)
    fresh.load_state_dict(AepoController(h_low=0.3, h_high=0.6).state_dict())
    assert math.isnan(fresh.last_entropy) and fresh.active is False


def test_aepo_rejects_bad_bounds_and_state():
    with pytest.raises(ValueError, match="h_low < h_high"):
        AepoController(h_low=0.5, h_high=0.5)
    c = AepoController(h_low=0.1, h_high=0.2)
    with pytest.raises(ValueError, match="lacks switches"):
        c.load_state_dict({"active": True})
    with pytest.raises(ValueError, match="wrong types"):
        c.load_state_dict({"active": "yes", "switches": 1})


def test_aepo_in_the_update_masks_all_negative_responses_while_active():
    adv, ent, mask = make_batch(seed=3)
    aepo = AepoController(h_low=0.5, h_high=1.2)
    h = batch_entropy(ent, mask)  # about 1.0: inside the band, starts off
    assert 0.5 < h < 1.2
    off = mask_negative_gradients(adv, ent, mask, aepo=aepo)
    assert not off.dropped.any() and off.metrics["qwenlong/aepo_active"] == 0.0
    on = mask_negative_gradients(adv, ent * 2, mask, aepo=aepo)  # entropy above h_high
    assert torch.equal(on.dropped, negative_response_tokens(adv, mask))
    assert (on.advantages >= 0).all() and torch.equal(on.advantages.clamp_min(0), adv.clamp_min(0))
    assert on.metrics["qwenlong/aepo_active"] == 1.0
    n_negative = int((adv[:, 0] < 0).sum())
    assert on.metrics["qwenlong/masked_response_share"] == pytest.approx(n_negative / 11)
    assert on.metrics["qwenlong/negative_share"] == pytest.approx(n_negative / 11)
    assert on.metrics["qwenlong/masked_share"] == pytest.approx(float(on.dropped.sum() / mask.sum()))
    still = mask_negative_gradients(adv, ent, mask, aepo=aepo)  # back in the band: stays on
    assert torch.equal(still.dropped, on.dropped)
    back = mask_negative_gradients(adv, ent * 0.1, mask, aepo=aepo)  # below h_low: negatives return
    assert not back.dropped.any() and torch.equal(back.advantages, adv)
    assert back.metrics["qwenlong/aepo_switches"] == 2.0


def test_clipping_and_aepo_union_and_metrics():
    adv, ent, mask = make_batch(seed=4)
    clip_only = mask_negative_gradients(adv, ent, mask, mode="token", token_threshold=1.5)
    both = mask_negative_gradients(
        adv, ent, mask, mode="token", token_threshold=1.5, aepo=AepoController(h_low=0.1, h_high=0.2)
    )
    assert torch.equal(both.dropped, clip_only.dropped | negative_response_tokens(adv, mask))
    assert clip_only.metrics["qwenlong/neg_clip_share"] == pytest.approx(float(clip_only.dropped.sum() / mask.sum()))
    assert "qwenlong/aepo_active" not in clip_only.metrics
    assert clip_only.metrics["qwenlong/entropy"] == pytest.approx(batch_entropy(ent, mask))


# ------------------------------------------------------------------ relative thresholds (warm-up)


def relative(low=0.9, high=1.1, steps=3):
    return AepoController(warmup=EntropyWarmup(steps, low, high))


def test_relative_thresholds_warm_up_then_hysteresis():
    c = relative(low=0.8, high=1.25, steps=3)
    # warm-up: off whatever the entropy (2.0 would be far above any band), NaN is not a measurement
    trace = [c.update(h) for h in (2.0, math.nan, 0.4, 0.6)]
    assert trace == [False, False, False, False]
    assert c.warmup.count == 3 and c.warmup.reference == pytest.approx(1.0)
    assert (c.h_low, c.h_high) == (pytest.approx(0.8), pytest.approx(1.25))
    assert c.switches == 0 and c.active is False
    # afterwards: plain hysteresis on the derived bounds, which stay fixed
    trace = [c.update(h) for h in (1.0, 1.3, 1.0, 0.79, 1.2, 2.0)]
    assert trace == [False, True, True, False, False, True]
    assert c.switches == 3 and c.warmup.count == 3 and c.h_high == pytest.approx(1.25)


def test_relative_metrics_per_step():
    c = relative(low=0.5, high=2.0, steps=2)
    c.update(0.3)
    first = c.metrics()
    assert first == {"qwenlong/aepo_active": 0.0, "qwenlong/aepo_switches": 0.0, "qwenlong/aepo_warmup": 1.0}
    c.update(0.5)  # the step that completes the warm-up is still a warm-up step; the thresholds are known now
    m = c.metrics()
    assert m["qwenlong/aepo_warmup"] == 1.0 and m["qwenlong/aepo_active"] == 0.0
    assert m["qwenlong/aepo_reference"] == pytest.approx(0.4)
    assert (m["qwenlong/aepo_h_low"], m["qwenlong/aepo_h_high"]) == (pytest.approx(0.2), pytest.approx(0.8))
    c.update(0.9)
    m = c.metrics()
    assert (m["qwenlong/aepo_warmup"], m["qwenlong/aepo_active"], m["qwenlong/aepo_switches"]) == (0.0, 1.0, 1.0)
    absolute = AepoController(h_low=0.3, h_high=0.6)
    absolute.update(0.4)
    assert absolute.metrics() == {
        "qwenlong/aepo_active": 0.0,
        "qwenlong/aepo_switches": 0.0,
        "qwenlong/aepo_warmup": 0.0,
        "qwenlong/aepo_h_low": 0.3,
        "qwenlong/aepo_h_high": 0.6,
    }


def test_relative_state_resumes_mid_warmup_and_after(caplog):
    original = relative(low=0.5, high=1.5, steps=3)
    original.update(1.0)
    mid = json.loads(json.dumps(original.state_dict()))
    resumed = relative(low=0.5, high=1.5, steps=3)
    resumed.load_state_dict(mid)
    assert resumed.warming_up and resumed.warmup.count == 1
    for c in (original, resumed):  # both finish the warm-up on the same two steps
        c.update(2.0)
        c.update(3.0)
    assert resumed.warmup.reference == original.warmup.reference == pytest.approx(2.0)
    assert (resumed.h_low, resumed.h_high) == (original.h_low, original.h_high) == (1.0, 3.0)
    original.update(3.5)  # on
    done = json.loads(json.dumps(original.state_dict()))
    with caplog.at_level("INFO", logger="qwenlong_verl.worker.algos.entropy_mask"):
        after = relative(low=0.5, high=1.5, steps=3)
        after.load_state_dict(done)
    assert "AEPO thresholds restored: reference batch entropy 2.0000" in caplog.text
    assert after.active is True and not after.warming_up and after.update(2.0) is True  # in the band: stays on
    # new factors on resume apply to the saved reference; a changed step count keeps the measured reference
    rescaled = relative(low=0.25, high=1.25, steps=10)
    rescaled.load_state_dict(done)
    assert (rescaled.h_low, rescaled.h_high) == (0.5, 2.5) and rescaled.warmup.reference == 2.0


def test_relative_resumed_from_an_absolute_state_measures_again():
    absolute = AepoController(h_low=0.1, h_high=0.2)
    absolute.update(0.9)  # on
    c = relative(steps=2)
    c.load_state_dict(json.loads(json.dumps(absolute.state_dict())))
    assert c.warming_up and c.active is False and c.warmup.count == 0
    assert c.update(5.0) is False  # off during the new warm-up


def test_relative_rejects_bad_settings_state_and_a_zero_reference():
    with pytest.raises(ValueError, match="warm-up steps >= 1"):
        EntropyWarmup(0, 0.9, 1.1)
    with pytest.raises(ValueError, match="0 <= low < high"):
        EntropyWarmup(3, 1.1, 0.9)
    with pytest.raises(ValueError, match="either bounds or a warm-up"):
        AepoController(h_low=0.1, h_high=0.2, warmup=EntropyWarmup(3, 0.9, 1.1))
    with pytest.raises(ValueError, match="wrong types"):
        relative().load_state_dict({"active": False, "switches": 0, "warmup": {"total": "x", "count": 1}})
    c = relative(steps=2)
    c.update(0.0)
    with pytest.raises(
        ValueError, match="mean batch entropy of the first 2 steps is 0.0.*aepo_threshold_mode=absolute"
    ):
        c.update(0.0)


def test_relative_aepo_in_the_update():
    adv, ent, mask = make_batch(seed=5)
    h = batch_entropy(ent, mask)
    aepo = relative(low=0.9, high=1.1, steps=1)
    warm = mask_negative_gradients(adv, ent * 3, mask, aepo=aepo)  # very high entropy, but the warm-up step
    assert not warm.dropped.any() and warm.metrics["qwenlong/aepo_warmup"] == 1.0
    assert warm.metrics["qwenlong/aepo_reference"] == pytest.approx(3 * h)
    assert warm.metrics["qwenlong/aepo_h_high"] == pytest.approx(3.3 * h)
    on = mask_negative_gradients(adv, ent * 3.5, mask, aepo=aepo)  # 3.5h > 1.1 x 3h
    assert torch.equal(on.dropped, negative_response_tokens(adv, mask)) and on.metrics["qwenlong/aepo_active"] == 1.0
    off = mask_negative_gradients(adv, ent * 2.5, mask, aepo=aepo)  # 2.5h < 0.9 x 3h
    assert not off.dropped.any() and torch.equal(off.advantages, adv)
