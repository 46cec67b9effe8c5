"""qwenlong.algos settings, the plan-time checks of the algorithm stages, and the DAPO / GRPO base configs."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from support.recipes import one_phase_recipe
from verl.utils.config import omega_conf_to_dataclass

from qwenlong_verl.driver.checks import algorithm_stage_problems as plan_problems
from qwenlong_verl.driver.compose import compose
from qwenlong_verl.driver.plan import PlanError, plan_phase
from qwenlong_verl.driver.recipe import parse_recipe
from qwenlong_verl.worker.algos.config import AlgosConfig


def recipe(base_config="qwenlong_l1", **overrides):
    return parse_recipe(
        {**one_phase_recipe(max_response_length=3000, **overrides), "base_config": base_config}, "r.yaml"
    )


# ------------------------------------------------------------------ the dataclass


def test_defaults_are_everything_off():
    cfg = AlgosConfig()
    assert (cfg.task_norm_std, cfg.neg_clip_mode, cfg.aepo_enable, cfg.masks_gradients) == (
        "task",
        "none",
        False,
        False,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"task_norm_epsilon": 0.0}, "task_norm_epsilon must be a finite number > 0"),
        ({"task_norm_epsilon": float("nan")}, "task_norm_epsilon"),
        ({"task_norm_std": "batch"}, "task_norm_std must be one of task, group, got 'batch'"),
        ({"neg_clip_mode": "tokens"}, "neg_clip_mode must be one of none, token, sequence"),
        ({"neg_clip_mode": "token"}, "neg_clip_mode=token needs neg_clip_token_entropy"),
        ({"neg_clip_mode": "sequence"}, "neg_clip_mode=sequence needs neg_clip_seq_entropy"),
        ({"neg_clip_token_entropy": -1.0}, "neg_clip_token_entropy must be an entropy in nats"),
        ({"aepo_enable": True}, "aepo_enable=true needs aepo_h_low and aepo_h_high"),
        ({"aepo_enable": True, "aepo_h_low": 0.5, "aepo_h_high": 0.4}, r"aepo_h_low \(0.5\) must be below aepo_h_high"),
        ({"aepo_enable": "yes"}, "aepo_enable must be true or false"),
        ({"aepo_threshold_mode": "percent"}, "aepo_threshold_mode must be one of absolute, relative, got 'percent'"),
        ({"aepo_warmup_steps": -1}, "aepo_warmup_steps must be an integer >= 0, got -1"),
        ({"aepo_warmup_steps": True}, "aepo_warmup_steps must be an integer >= 0, got True"),
        ({"aepo_warmup_steps": 2.5}, "aepo_warmup_steps must be an integer >= 0"),
        ({"aepo_threshold_mode": "relative"}, "aepo_threshold_mode=relative needs aepo_warmup_steps >= 1"),
        ({"aepo_warmup_steps": 5}, "aepo_warmup_steps=5 is read only with aepo_threshold_mode=relative"),
        (
            {"aepo_enable": True, "aepo_threshold_mode": "relative", "aepo_warmup_steps": 3},
            r"aepo_enable=true needs aepo_h_low and aepo_h_high \(multiples of the warm-up entropy\)",
        ),
        (
            {
                "aepo_enable": True,
                "aepo_threshold_mode": "relative",
                "aepo_warmup_steps": 3,
                "aepo_h_low": 1.2,
                "aepo_h_high": 0.8,
            },
            r"aepo_h_low \(1.2\) must be below aepo_h_high \(0.8\)",
        ),
        ({"aepo_h_high": -0.5}, "aepo_h_high must be nats or a multiple of the warm-up entropy"),
    ],
)
def test_bad_values_fail_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AlgosConfig(**kwargs)


def test_valid_settings_and_masks_gradients():
    assert AlgosConfig(neg_clip_mode="token", neg_clip_token_entropy=1.2).masks_gradients
    assert AlgosConfig(aepo_enable=True, aepo_h_low=0.2, aepo_h_high=0.4).masks_gradients
    relative = AlgosConfig(
        aepo_enable=True, aepo_threshold_mode="relative", aepo_warmup_steps=5, aepo_h_low=0.9, aepo_h_high=1.1
    )
    assert relative.masks_gradients and relative.aepo_threshold_mode == "relative"


def test_every_threshold_mode_builds_a_switch():
    from qwenlong_verl.worker.algos.config import AEPO_THRESHOLD_MODES
    from qwenlong_verl.worker.algos.entropy_mask import AEPO_THRESHOLD_MODES as SWITCHES

    assert set(SWITCHES) == set(AEPO_THRESHOLD_MODES)
    absolute = SWITCHES["absolute"](0.2, 0.4, 0)
    assert (absolute.h_low, absolute.h_high, absolute.warmup) == (0.2, 0.4, None)
    relative = SWITCHES["relative"](0.9, 1.1, 5)
    assert relative.warming_up and (relative.warmup.steps, relative.warmup.low, relative.warmup.high) == (5, 0.9, 1.1)


# ------------------------------------------------------------------ the base configs


def _compose(name, *overrides):
    return compose(name, ["actor_rollout_ref.model.path=/m", "data.train_files=[a]", *overrides])


def test_qwenlong_l1_is_the_dapo_setting():
    cfg = _compose("qwenlong_l1", "data.max_response_length=3000")
    actor = cfg.actor_rollout_ref.actor
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.loss_agg_mode) == (0.2, 0.28, "token-mean")
    assert cfg.algorithm.filter_groups.enable is True and cfg.algorithm.filter_groups.metric == "acc"
    assert cfg.algorithm.use_kl_in_reward is False and actor.use_kl_loss is False
    assert cfg.algorithm.adv_estimator == "grpo"
    assert cfg.reward.reward_manager.name == "qwenlong"
    kwargs = cfg.reward.reward_kwargs
    assert kwargs.overlong_buffer_cfg.enable is True and kwargs.overlong_buffer_cfg.len > 0
    assert kwargs.max_resp_len == 3000  # follows the phase's output budget
    assert omega_conf_to_dataclass(cfg.qwenlong.algos) == AlgosConfig()


def test_qwenlong_l1_reward_kwargs_are_accepted_by_the_reward_manager():
    manager = pytest.importorskip("qwenlong_verl.worker.rewards.manager")
    cfg = _compose("qwenlong_l1", "data.max_response_length=3000")
    settings = manager.QwenLongRewardConfig.from_reward_kwargs(cfg.reward.reward_kwargs)
    assert settings.max_resp_len == 3000 and settings.overlong_buffer_cfg.enable


def test_qwenlong_grpo_differs_from_l1_only_in_the_dapo_keys():
    l1 = OmegaConf.to_container(_compose("qwenlong_l1"), resolve=True)
    grpo = OmegaConf.to_container(_compose("qwenlong_grpo"), resolve=True)
    changed = {
        "algorithm.filter_groups.enable": (True, False),
        "actor_rollout_ref.actor.clip_ratio_high": (0.28, 0.2),
        "actor_rollout_ref.actor.loss_agg_mode": ("token-mean", "seq-mean-token-mean"),
        "reward.reward_kwargs.overlong_buffer_cfg.enable": (True, False),
    }
    for key, (before, after) in changed.items():
        a, b = l1, grpo
        for part in key.split("."):
            a, b = a[part], b[part]
        assert (a, b) == (before, after), key
        # set equal, then everything else must match
        node = grpo
        for part in key.split(".")[:-1]:
            node = node[part]
        node[key.split(".")[-1]] = before
    # veRL copies the actor's loss_agg_mode into derived nodes (e.g. the ref/critic); compare the rest
    assert _diff(l1, grpo) <= {"critic.loss_agg_mode"}


def _diff(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        out = set()
        for k in set(a) | set(b):
            out |= _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return set() if a == b else {prefix.rstrip(".")}


def test_qwenlong_grpo_plans():
    plan = plan_phase(recipe("qwenlong_grpo"), 0)  # composes and passes veRL's validate_config
    assert "--config-name=qwenlong_grpo" in plan.command
    assert plan.config.actor_rollout_ref.actor.loss_agg_mode == "seq-mean-token-mean"


# ------------------------------------------------------------------ plan-time checks


def test_task_norm_without_our_trainer_mode_fails_at_plan_naming_both_keys():
    # recipes run in trainer mode qwenlong by default (the curriculum's plan sets it); a user may force sync
    with pytest.raises(PlanError) as err:
        plan_phase(recipe(**{"algorithm.adv_estimator": "grpo_task_norm", "trainer.v1.trainer_mode": "sync"}), 0)
    text = str(err.value)
    assert "algorithm.adv_estimator=grpo_task_norm" in text and "trainer.v1.trainer_mode=qwenlong" in text
    assert "phase 1 (p1)" in text and "got trainer.v1.trainer_mode=sync" in text


def test_task_norm_in_our_trainer_mode_plans():
    plan = plan_phase(recipe(**{"algorithm.adv_estimator": "grpo_task_norm", "trainer.v1.trainer_mode": "qwenlong"}), 0)
    assert plan.config.algorithm.adv_estimator == "grpo_task_norm"


def test_aepo_settings_are_validated_at_plan():
    with pytest.raises(PlanError, match="qwenlong.algos: .*aepo_enable=true needs aepo_h_low and aepo_h_high"):
        plan_phase(recipe(**{"qwenlong.algos.aepo_enable": True, "trainer.v1.trainer_mode": "qwenlong"}), 0)
    with pytest.raises(PlanError, match="aepo_enable mask advantages in our actor-update stage"):
        plan_phase(
            recipe(
                **{
                    "qwenlong.algos.aepo_enable": True,
                    "qwenlong.algos.aepo_h_low": 0.2,
                    "qwenlong.algos.aepo_h_high": 0.4,
                    "trainer.v1.trainer_mode": "sync",
                }
            ),
            0,
        )
    ok = recipe(
        **{
            "qwenlong.algos.aepo_enable": True,
            "qwenlong.algos.aepo_h_low": 0.2,
            "qwenlong.algos.aepo_h_high": 0.4,
            "qwenlong.algos.neg_clip_mode": "sequence",
            "qwenlong.algos.neg_clip_seq_entropy": 0.8,
            "trainer.v1.trainer_mode": "qwenlong",
        }
    )
    assert plan_phase(ok, 0).config.qwenlong.algos.aepo_h_high == 0.4


RELATIVE = {
    "qwenlong.algos.aepo_enable": True,
    "qwenlong.algos.aepo_threshold_mode": "relative",
    "qwenlong.algos.aepo_h_low": 0.9,
    "qwenlong.algos.aepo_h_high": 1.1,
    "trainer.v1.trainer_mode": "qwenlong",
}


def test_relative_aepo_plans_and_its_warmup_must_fit_the_phase():
    # one_phase_recipe trains 2 steps (trainer.total_training_steps=2)
    plan = plan_phase(recipe(**RELATIVE, **{"qwenlong.algos.aepo_warmup_steps": 1}), 0)
    algos = omega_conf_to_dataclass(plan.config.qwenlong.algos)
    assert (algos.aepo_threshold_mode, algos.aepo_warmup_steps, algos.aepo_h_low) == ("relative", 1, 0.9)
    with pytest.raises(PlanError) as err:
        plan_phase(recipe(**RELATIVE, **{"qwenlong.algos.aepo_warmup_steps": 2}), 0)
    text = str(err.value)
    assert "qwenlong.algos.aepo_warmup_steps=2" in text and "trainer.total_training_steps=2" in text
    assert "AEPO would never act" in text
    with pytest.raises(PlanError, match="qwenlong.algos: .*aepo_threshold_mode=relative needs aepo_warmup_steps >= 1"):
        plan_phase(recipe(**RELATIVE), 0)


def test_plan_problems_cross_key_rules():
    base = {
        "algorithm": {"adv_estimator": "grpo_task_norm", "norm_adv_by_std_in_grpo": False},
        "trainer": {"use_v1": True, "v1": {"trainer_mode": "qwenlong"}},
        "qwenlong": {"algos": {"neg_clip_mode": "token"}},
    }
    problems = plan_problems(OmegaConf.create(base))
    assert len(problems) == 1 and "norm_adv_by_std_in_grpo=false contradicts" in problems[0]
    base["algorithm"] = {"adv_estimator": "grpo", "rollout_correction": {"bypass_mode": True}}
    problems = plan_problems(OmegaConf.create(base))
    assert len(problems) == 1 and "bypass_mode=true skips the old-log-prob pass" in problems[0]
    base["trainer"]["use_v1"] = False
    assert any("trainer.use_v1=true" in p for p in plan_problems(OmegaConf.create(base)))
    assert plan_problems(OmegaConf.create({"algorithm": {"adv_estimator": "grpo"}})) == []
    relative = {
        "trainer": {"use_v1": True, "v1": {"trainer_mode": "qwenlong"}, "total_training_steps": 3},
        "qwenlong": {"algos": {"aepo_enable": True, "aepo_threshold_mode": "relative", "aepo_warmup_steps": 3}},
    }
    problems = plan_problems(OmegaConf.create(relative))
    assert len(problems) == 1 and "aepo_warmup_steps=3" in problems[0]
    relative["trainer"]["total_training_steps"] = None  # steps from epochs: unknown at plan time, no claim
    assert plan_problems(OmegaConf.create(relative)) == []
    relative["trainer"]["total_training_steps"] = 4
    assert plan_problems(OmegaConf.create(relative)) == []
    relative["qwenlong"]["algos"]["aepo_warmup_steps"] = "many"  # a bad type is the section's own error
    assert plan_problems(OmegaConf.create(relative)) == []


@pytest.mark.slow
def test_cli_plan_reports_the_mode_error(tmp_path, cli_main):
    import yaml

    path = tmp_path / "r.yaml"
    data = {
        "name": "t",
        "model_path": "/m",
        "overrides": {
            "trainer.n_gpus_per_node": 1,
            "algorithm.adv_estimator": "grpo_task_norm",
            "trainer.v1.trainer_mode": "sync",
        },
        "phases": [
            {
                "name": "p",
                "max_prompt_length": 100,
                "max_response_length": 2000,
                "total_epochs": 1,
                "train_files": ["a"],
            }
        ],
    }
    path.write_text(yaml.safe_dump(data))
    out = cli_main("plan", str(path))
    assert out.returncode != 0
    text = " ".join((out.stdout + out.stderr).split())
    assert "algorithm.adv_estimator=grpo_task_norm needs per-sample task labels" in text
