"""`plan` composes veRL's real config and runs veRL's own validate_config."""

from __future__ import annotations

import shlex

import pytest
import yaml
from support import RECIPES
from support.recipes import one_phase_recipe

from qwenlong_verl.driver.compose import hydra_value
from qwenlong_verl.driver.kinds import PHASE_KINDS
from qwenlong_verl.driver.plan import PlanError, plan_phase
from qwenlong_verl.driver.recipe import load_recipe, parse_recipe


def test_shipped_recipes_exist():
    assert RECIPES, "no recipes shipped"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_plans(recipe):
    """Every phase of every shipped recipe composes and validates, each run by its kind's program (in-process:
    the command's own output is checked once below, on the recipe with every kind a pipeline mixes)."""
    from qwenlong_verl.driver.plan import plan_recipe

    r = load_recipe(recipe)
    plans = plan_recipe(r)
    assert [p.phase.name for p in plans] == [p.name for p in r.phases]
    for plan in plans:
        assert PROGRAMS[plan.phase.kind] in plan.command_line


def test_plan_prints_each_phase_its_check_and_its_command(cli):
    recipe = next(p for p in RECIPES if p.stem == "qwenlong_l15_full")
    out = cli("plan", str(recipe))
    assert out.returncode == 0, out.stdout + out.stderr
    r = load_recipe(recipe)
    assert {p.kind for p in r.phases} == {"rl", "memory", "merge"}
    for i, phase in enumerate(r.phases):
        assert f"phase {i + 1} ({phase.name}) — {PHASE_KINDS[phase.kind].checked}" in out.stdout
    for entry in set(PROGRAMS.values()):
        assert out.stdout.count(entry) == sum(PROGRAMS[p.kind] == entry for p in r.phases), entry


PROGRAMS = {
    "rl": "python -m verl.trainer.main_ppo",
    "memory": "python -m verl.trainer.main_ppo",
    "sft": "-m verl.trainer.sft_trainer",
    "merge": "python -m qwenlong_verl.driver.merge",
}
"""What ``plan`` prints for a phase of each kind."""


def _recipe(tmp_path, **overrides):
    data = one_phase_recipe(**overrides)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_misspelled_veRL_key_fails_naming_it(tmp_path, cli_main):
    out = cli_main("plan", str(_recipe(tmp_path, **{"actor_rollout_ref.actor.clip_ratio_hgih": 0.3})))
    assert out.returncode != 0
    text = " ".join((out.stdout + out.stderr).split())
    assert "actor_rollout_ref.actor.clip_ratio_hgih" in text
    assert "did you mean 'actor_rollout_ref.actor.clip_ratio_high'" in text
    assert "phase 1 (p1)" in text


def test_invalid_batch_combination_fails(tmp_path, cli_main):
    out = cli_main("plan", str(_recipe(tmp_path, **{"actor_rollout_ref.actor.ppo_mini_batch_size": 3})))
    assert out.returncode != 0
    text = " ".join((out.stdout + out.stderr).split())
    assert "actor_rollout_ref.actor.ppo_mini_batch_size (3) must divide data.train_batch_size (8)" in text
    assert "ppo_mini_batch_size=4" in text


def test_veRL_validate_config_runs(tmp_path, cli_main):
    # veRL's own check: without dynamic batch sizes a micro-batch size is mandatory.
    out = cli_main("plan", str(_recipe(tmp_path, **{"actor_rollout_ref.actor.use_dynamic_bsz": False})))
    assert out.returncode != 0
    text = " ".join((out.stdout + out.stderr).split())
    assert "veRL validate_config rejected the config" in text
    assert "ppo_micro_batch_size_per_gpu" in text


def test_composed_config_carries_phase_and_paper_defaults(tmp_path):
    plan = plan_phase(load_recipe(_recipe(tmp_path)), 0)
    cfg = plan.config
    assert cfg.data.max_prompt_length == 1000
    assert cfg.actor_rollout_ref.rollout.prompt_length == 1000
    assert list(cfg.data.val_files) == ["a.parquet"]
    assert cfg.actor_rollout_ref.actor.clip_ratio_high == 0.28
    assert cfg.actor_rollout_ref.actor.loss_agg_mode == "token-mean"
    assert cfg.trainer.default_local_dir == "outputs/t/p1/checkpoints"
    assert plan.command[:3] == ["python", "-m", "verl.trainer.main_ppo"]
    assert shlex.split(plan.command_line) == plan.command


def test_model_path_override_for_later_phases(tmp_path):
    plan = plan_phase(load_recipe(_recipe(tmp_path)), 0, model_path="/ckpt/merged")
    assert plan.config.actor_rollout_ref.model.path == "/ckpt/merged"


def test_unknown_base_config(tmp_path):
    r = parse_recipe(
        {
            "name": "t",
            "model_path": "m",
            "base_config": "nope",
            "phases": [
                {
                    "name": "p",
                    "max_prompt_length": 10,
                    "max_response_length": 10,
                    "total_epochs": 1,
                    "train_files": ["a"],
                }
            ],
        },
        "r.yaml",
    )
    with pytest.raises(PlanError, match="unknown base_config 'nope'"):
        plan_phase(r, 0, check=False)


@pytest.mark.parametrize(
    "value, rendered",
    [
        (None, "null"),
        (True, "true"),
        (3, "3"),
        (2e-6, "2e-06"),
        ("a/b.parquet", "a/b.parquet"),
        ("has space", "'has space'"),
        ("true", "'true'"),
        ("1e5", "'1e5'"),
        (["x", 1], "[x,1]"),
        ({"a": 1}, "{a:1}"),
        ("it's", "'it\\'s'"),
    ],
)
def test_hydra_value(value, rendered):
    assert hydra_value(value) == rendered


def test_reward_kwargs_typo_fails_at_plan_time(tmp_path, cli_main):
    out = cli_main("plan", str(_recipe(tmp_path, **{"+reward.reward_kwargs.judge_timout_s": 5})))
    assert out.returncode != 0
    text = " ".join((out.stdout + out.stderr).split())
    assert "reward settings" in text and "judge_timout_s" in text


def test_unknown_judge_prompt_fails_at_plan_time_in_one_line(tmp_path, cli_main):
    out = cli_main("plan", str(_recipe(tmp_path, **{"+reward.reward_kwargs.judge_prompt": "qwenlong"})))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = [x for x in out.stderr.splitlines() if x.startswith("error: ")]
    assert "reward settings: unknown judge_prompt 'qwenlong'; known: strict, qwenlong_l1, qwenlong_l15" in line


def test_judge_prompt_and_reasoning_settings_flow_through_the_composed_config(tmp_path):
    """The preset and the reasoning options reach the judge settings from the composed config (as the manager
    reads reward.reward_kwargs), and a reasoning judge with a reply budget too small for it fails at plan time."""
    from omegaconf import OmegaConf

    from qwenlong_verl.worker.rewards.judge import JudgeConfig
    from qwenlong_verl.worker.rewards.manager import QwenLongRewardConfig

    judge = {
        "+reward.reward_kwargs.judge_prompt": "qwenlong_l15",
        "+reward.reward_kwargs.judge_reasoning_effort": "medium",
        "+reward.reward_kwargs.judge_chat_template_kwargs": {"enable_thinking": True},
    }
    config = plan_phase(load_recipe(_recipe(tmp_path, **judge)), 0).config
    kwargs = QwenLongRewardConfig.from_reward_kwargs(config.reward.reward_kwargs).judge_kwargs
    settings = JudgeConfig.from_kwargs(OmegaConf.to_container(config.reward.reward_kwargs, resolve=True))
    assert kwargs["judge_prompt"] == "qwenlong_l15" and kwargs["judge_chat_template_kwargs"] == {
        "enable_thinking": True
    }
    assert (settings.prompt, settings.reasoning_effort, settings.max_tokens) == ("qwenlong_l15", "medium", 4096)
    small = _recipe(tmp_path, **judge, **{"+reward.reward_kwargs.judge_max_tokens": 256})
    with pytest.raises(PlanError, match=r"judge_max_tokens=256 is too small for a reasoning judge"):
        plan_phase(load_recipe(small), 0)


def test_bad_overlong_buffer_fails_at_plan_time(tmp_path):
    path = _recipe(tmp_path, **{"reward.reward_kwargs.overlong_buffer_cfg.len": 4096})  # ramp > 2048-token window
    with pytest.raises(PlanError, match=r"max_resp_len \(2048\) must be >= overlong_buffer_cfg.len \(4096\)"):
        plan_phase(load_recipe(path), 0)


def test_sequence_longer_than_token_budget_fails(tmp_path):
    path = _recipe(
        tmp_path,
        **{
            "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": 1200,
            "reward.reward_kwargs.overlong_buffer_cfg.len": 100,
        },
    )
    with pytest.raises(PlanError, match=r"ppo_max_token_len_per_gpu \(1200\) x Ulysses SP \(1\) = 1200 tokens"):
        plan_phase(load_recipe(path), 0)


def test_dynamic_sampling_with_a_colocated_reward_model_fails(tmp_path):
    path = _recipe(
        tmp_path,
        **{
            "reward.reward_model.enable": True,
            "reward.reward_model.model_path": "/models/judge",
            "reward.reward_model.rollout.name": "vllm",
        },
    )
    with pytest.raises(PlanError, match="reward.reward_model.enable_resource_pool=true"):
        plan_phase(load_recipe(path), 0)


def test_remove_padding_without_flash_attn_varlen_fails(tmp_path):
    path = _recipe(tmp_path, **{"+actor_rollout_ref.model.override_config.attn_implementation": "sdpa"})
    with pytest.raises(PlanError, match=r"use_remove_padding=true packs sequences.*'sdpa'"):
        plan_phase(load_recipe(path), 0)
    ok = _recipe(
        tmp_path,
        **{
            "+actor_rollout_ref.model.override_config.attn_implementation": "sdpa",
            "actor_rollout_ref.model.use_remove_padding": False,
            "actor_rollout_ref.actor.use_remove_padding": False,
        },
    )
    plan_phase(load_recipe(ok), 0)


def test_ray_cpus_the_node_cannot_give_fail_at_plan_time(tmp_path):
    # veRL 0.9.1 defaults: a GPU bundle asks 3 CPUs, TransferQueue a controller + 8 storage units, and veRL's
    # plain actors need one free CPU to be placed
    path = _recipe(tmp_path, **{"+ray_kwargs.ray_init.num_cpus": 4})
    with pytest.raises(PlanError, match=r"ask for 13 CPUs .* Ray sees 4"):
        plan_phase(load_recipe(path), 0)
    fits = _recipe(
        tmp_path,
        **{"+ray_kwargs.ray_init.num_cpus": 6, "transfer_queue.backend.SimpleStorage.num_data_storage_units": 1},
    )
    plan_phase(load_recipe(fits), 0)


def test_gpus_the_machine_does_not_have_are_a_launch_problem(tmp_path):
    from qwenlong_verl.driver.checks import launch_problem

    recipe = _recipe(tmp_path, **{"trainer.n_gpus_per_node": 8, "+ray_kwargs.ray_init.num_cpus": 64})
    plan = plan_phase(load_recipe(recipe), 0)
    assert "trainer.n_gpus_per_node=8 but GPUs visible to torch (CUDA_VISIBLE_DEVICES) is 0" in launch_problem(
        plan.config
    )


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"data.train_batch_size": "eight"}, "data.train_batch_size must be an integer (veRL's default is"),
        ({"trainer.nnodes": "${oc.env:HOME}"}, "trainer.nnodes must be an integer"),
        ({"trainer.nnodes": "${oc.env:QWENLONG_SURELY_UNSET_VAR}"}, "trainer.nnodes cannot be resolved"),
        ({"actor_rollout_ref.actor.use_dynamic_bsz": "yes"}, "use_dynamic_bsz must be true or false"),
        ({"actor_rollout_ref.actor.clip_ratio_high": "wide"}, "clip_ratio_high must be a number"),
    ],
)
def test_a_value_of_the_wrong_type_is_named_before_veRL_sees_it(tmp_path, overrides, fragment):
    recipe = load_recipe(_recipe(tmp_path, **overrides))
    with pytest.raises(PlanError, match="phase 1 \\(p1\\)") as err:
        plan_phase(recipe, 0)
    assert fragment in str(err.value)


def test_recipe_files_that_are_no_recipe_are_named(tmp_path):
    from qwenlong_verl.driver.recipe import RecipeError

    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: x\n\xff\xfe\x00garbage")
    with pytest.raises(RecipeError, match="not UTF-8 text"):
        load_recipe(binary)
    with pytest.raises(RecipeError, match="it is a folder"):
        load_recipe(tmp_path)
    bom = _recipe(tmp_path)
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    assert load_recipe(bom).name == "t"


def test_plan_refuses_bins_cut_with_another_tokenizer(tmp_path, cli_main):
    """The prepared bins' stats.json names the tokenizer that counted them; the recipe's (its model's) must match."""
    import json

    data = tmp_path / "data"
    data.mkdir()
    (data / "stats.json").write_text(json.dumps({"tokenizer": "builtin", "phase_stats": []}))
    raw = one_phase_recipe(model_path="Qwen/Qwen2.5-0.5B-Instruct")
    raw["phases"][0]["train_files"] = [str(data / "phase1.parquet")]
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = cli_main("plan", str(path), cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "'builtin'" in out.stderr and "'Qwen/Qwen2.5-0.5B-Instruct'" in out.stderr
    assert "--tokenizer Qwen/Qwen2.5-0.5B-Instruct" in out.stderr
    (data / "stats.json").write_text(json.dumps({"tokenizer": "/downloads/Qwen2.5-0.5B-Instruct", "phase_stats": []}))
    assert cli_main("plan", str(path), cwd=tmp_path).returncode == 0  # a local download of the model's tokenizer
