"""The shipped recipes: what each promises holds in the config veRL composes, and each has a working launcher."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest
from omegaconf import DictConfig
from support import RECIPES
from support.recipes import one_phase_recipe

from qwenlong_verl.driver.plan import plan_phase
from qwenlong_verl.driver.recipe import load_recipe
from qwenlong_verl.driver.recipes import SHIPPED_DIR

YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048}


@functools.cache
def plans(name: str):
    """The recipe and each phase's composed, validated config (cached: tests only read them)."""
    recipe = load_recipe(SHIPPED_DIR / f"{name}.yaml")
    return recipe, [plan_phase(recipe, i).config for i in range(len(recipe.phases))]


def windows(recipe):
    return [(p.max_prompt_length, p.max_response_length) for p in recipe.phases]


# ----------------------------------------------------------------------------- launchers


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_has_a_thin_launcher(recipe):
    launcher = recipe.with_suffix(".sh")
    assert launcher.is_file(), f"{launcher.name} missing"
    assert os.access(launcher, os.X_OK), f"{launcher.name} is not executable"
    text = launcher.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert text.endswith(f'exec qwenlong-verl train {recipe.stem} "$@"\n')  # by name: works from a wheel install
    assert "cd " not in text  # no checkout to change into
    assert subprocess.run(["bash", "-n", str(launcher)], capture_output=True).returncode == 0


def test_launcher_runs_from_any_directory(tmp_path):
    """The launcher runs where it is started (relative recipe paths resolve there) and hands its arguments on."""
    shim = tmp_path / "bin"
    shim.mkdir()
    record = tmp_path / "argv.json"
    fake = shim / "qwenlong-verl"
    fake.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        f"json.dump({{'cwd': os.getcwd(), 'argv': sys.argv[1:]}}, open({str(record)!r}, 'w'))\n"
    )
    fake.chmod(0o755)
    out = subprocess.run(
        [str(SHIPPED_DIR / "smoke_1gpu.sh"), "--extra", "a b"],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(record.read_text())
    assert seen == {"cwd": str(tmp_path), "argv": ["train", "smoke_1gpu", "--extra", "a b"]}


@pytest.mark.parametrize(
    "name, launched", [("smoke_1gpu", "-m verl.trainer.main_ppo"), ("sft_warmup", "-m verl.trainer.sft_trainer")]
)
@pytest.mark.slow
def test_launcher_dry_run_through_the_real_train_command(tmp_path, name, launched):
    """`<name>.sh --dry-run` = `qwenlong-verl train <name> --dry-run`: every phase planned, nothing launched."""
    out = subprocess.run(
        [str(SHIPPED_DIR / f"{name}.sh"), "--dry-run"],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    recipe = load_recipe(SHIPPED_DIR / f"{name}.yaml")
    assert out.stdout.count(launched) == len(recipe.phases)
    assert not (tmp_path / recipe.output_dir / "train_state.json").exists()


# ----------------------------------------------------------------------------- what each recipe promises


@pytest.mark.slow
def test_every_rl_phase_fits_its_micro_batch_token_budget():
    """veRL asserts at run time that one sequence fits a dynamic micro-batch (per-GPU budget x Ulysses SP)."""
    for path in RECIPES:
        recipe, configs = plans(path.stem)
        for phase, cfg in zip(recipe.phases, configs, strict=True):
            if phase.kind not in ("rl", "memory"):  # a memory phase's windows are one step's
                continue
            actor = cfg.actor_rollout_ref.actor
            sp = actor.fsdp_config.ulysses_sequence_parallel_size
            longest = phase.max_prompt_length + phase.max_response_length
            assert actor.use_dynamic_bsz, f"{path.name}: dynamic batch sizes off"
            for key in ("actor.ppo_max_token_len_per_gpu", "rollout.log_prob_max_token_len_per_gpu"):
                role, leaf = key.split(".")
                budget = cfg.actor_rollout_ref[role][leaf] * sp
                assert budget >= longest, f"{path.name} {phase.name}: {key} x SP {sp} = {budget} < {longest}"


def test_qwenlong_l1_32b_is_the_paper_setting():
    recipe, configs = plans("qwenlong_l1_32b")
    assert windows(recipe) == [(20480, 10240), (61440, 10240)]
    for cfg in configs:
        a = cfg.actor_rollout_ref
        assert (cfg.trainer.nnodes, cfg.trainer.n_gpus_per_node) == (4, 8)
        assert a.rollout.name == "vllm" and a.rollout.tensor_model_parallel_size == 4
        assert a.actor.fsdp_config.ulysses_sequence_parallel_size == 8
        assert a.actor.fsdp_config.param_offload and a.actor.fsdp_config.optimizer_offload
        assert a.actor.use_dynamic_bsz and a.rollout.log_prob_use_dynamic_bsz
        # GRPO + DAPO, no KL, group 8, batch 128, lr 2e-6, temperature 0.7, top-p 0.95
        assert cfg.algorithm.adv_estimator == "grpo" and not cfg.algorithm.use_kl_in_reward
        assert cfg.algorithm.filter_groups.enable and not a.actor.use_kl_loss
        assert (a.actor.clip_ratio_low, a.actor.clip_ratio_high, a.actor.loss_agg_mode) == (0.2, 0.28, "token-mean")
        assert (cfg.data.train_batch_size, a.rollout.n, a.actor.optim.lr) == (128, 8, 2e-6)
        assert (a.rollout.temperature, a.rollout.top_p) == (0.7, 0.95)
        # hybrid reward with the 1.5B judge and DAPO's overlong penalty
        assert cfg.reward.reward_manager.name == "qwenlong"
        assert cfg.reward.reward_kwargs.judge_model == "Qwen/Qwen2.5-1.5B-Instruct"
        assert cfg.reward.reward_kwargs.overlong_buffer_cfg.enable
        assert not cfg.reward.reward_model.enable
    assert recipe.model_path.endswith("/huggingface")  # the warm-up SFT hand-off


def test_qwenlong_l1_32b_curriculum_carries_hard_examples():
    recipe, configs = plans("qwenlong_l1_32b")
    assert recipe.data is not None and recipe.data.tokenizer == recipe.model_path
    assert recipe.phases[0].retrospective is None
    retro = recipe.phases[1].retrospective
    assert retro is not None and retro.weighting == "difficulty" and retro.drop_solved
    # phase 1 writes the difficulty ledger phase 2 draws from: both run in the qwenlong trainer mode
    assert [c.trainer.v1.trainer_mode for c in configs] == ["qwenlong", "qwenlong"]
    assert [c.qwenlong.curriculum.phase_number for c in configs] == [1, 2]


def test_qwenlong_l15_aepo_is_the_l15_setting():
    recipe, configs = plans("qwenlong_l15_aepo")
    assert windows(recipe) == [(20480, 12288), (61440, 20480), (122880, 51200)]
    assert recipe.data is not None and recipe.data.tokenizer == recipe.model_path
    for phase, cfg in zip(recipe.phases, configs, strict=True):
        assert phase.task_balance and cfg.qwenlong.curriculum.task_balance
        assert cfg.trainer.v1.trainer_mode == "qwenlong"
        assert cfg.algorithm.adv_estimator == "grpo_task_norm" and cfg.qwenlong.algos.task_norm_std == "task"
        algos = cfg.qwenlong.algos
        assert algos.aepo_enable and 0 <= algos.aepo_h_low < algos.aepo_h_high
        # thresholds relative to the entropy each phase measures first (the paper's range is model-specific)
        assert algos.aepo_threshold_mode == "relative"
        assert 0 < algos.aepo_warmup_steps < cfg.trainer.total_training_steps
        assert algos.aepo_h_low < 1 < algos.aepo_h_high  # a band around the measured entropy
        # the report's batch, strictly on-policy: 128 prompts x G = 8, one gradient update per batch
        assert cfg.data.train_batch_size == cfg.actor_rollout_ref.actor.ppo_mini_batch_size == 128
        assert cfg.actor_rollout_ref.actor.ppo_epochs == 1 and cfg.actor_rollout_ref.rollout.n == 8
        assert cfg.actor_rollout_ref.actor.optim.lr == 2e-6
        assert (cfg.actor_rollout_ref.rollout.temperature, cfg.actor_rollout_ref.rollout.top_p) == (0.7, 0.95)
        # the soft overlong penalty ramps inside each phase's output budget
        buffer = cfg.reward.reward_kwargs.overlong_buffer_cfg
        assert buffer.enable and 0 < buffer.len < cfg.reward.reward_kwargs.max_resp_len == phase.max_response_length
        assert cfg.actor_rollout_ref.actor.fsdp_config.ulysses_sequence_parallel_size == 8
    # difficulty-aware retrospective sampling at each stage transition, into stages 2 and 3
    assert [p.retrospective is not None for p in recipe.phases] == [False, True, True]
    assert [recipe.carry_sources(i) for i in (1, 2)] == [[0], [0, 1]]


def test_plan_shows_the_l15_batch_and_its_retrospective_transitions():
    """The notes `plan` prints under each phase's command."""
    from qwenlong_verl.driver.plan import plan_recipe

    out = " ".join(note for plan in plan_recipe(plans("qwenlong_l15_aepo")[0]) for note in plan.notes)
    shape = "batch: 128 prompts x 8 rollouts; 1 gradient update per batch (mini-batch 128 prompts, 1 epoch: on-policy)"
    assert out.count(shape) == 3
    assert "retrospective: carries 0.25 x its own examples from phase1, drawn by difficulty" in out
    assert "retrospective: carries 0.25 x its own examples from phase1, phase2, drawn by difficulty" in out


def test_qwenlong_l15_full_is_the_published_pipeline():
    """Stages 1-3 of qwenlong_l15_aepo -> Memory-RL (128K in chunks of 32K, memory 15K) -> SCE merge of the memory
    expert with stage 3 -> stage 4 from the merged model: five training phases and the merge, each its kind's."""
    from qwenlong_verl.driver.plan import plan_recipe

    recipe = load_recipe(SHIPPED_DIR / "qwenlong_l15_full.yaml")
    plans_ = plan_recipe(recipe)
    assert [(p.phase.name, p.phase.kind) for p in plans_] == [
        ("stage1", "rl"),
        ("stage2", "rl"),
        ("stage3", "rl"),
        ("memory", "memory"),
        ("merge", "merge"),
        ("stage4", "rl"),
    ]
    assert sum(p.kind.trains for p in plans_) == 5
    out = recipe.output_dir
    # stages 1-3 and every shared setting are qwenlong_l15_aepo's (the L1.5 setting tested above)
    aepo, _ = plans("qwenlong_l15_aepo")
    assert (recipe.model_path, recipe.overrides, recipe.data.inputs) == (
        aepo.model_path,
        aepo.overrides,
        aepo.data.inputs,
    )
    for full, ref in zip(recipe.phases[:3], aepo.phases, strict=True):
        assert (full.max_prompt_length, full.max_response_length, full.total_training_steps) == (
            ref.max_prompt_length,
            ref.max_response_length,
            ref.total_training_steps,
        )
        assert (full.task_balance, full.retrospective, full.overrides) == (
            ref.task_balance,
            ref.retrospective,
            ref.overrides,
        )
    stage3, memory, merge, stage4 = (p.config for p in plans_[2:])
    # Memory-RL: the memory agent, its budgets, one step's windows; documents longer than a step are kept
    rollout = memory.actor_rollout_ref.rollout
    assert rollout.agent.default_agent_loop == "qwenlong_memory"
    section = memory.qwenlong.memory
    assert (section.chunk_tokens, section.memory_tokens, section.max_chunks) == (32768, 15360, 4)
    assert recipe.phases[3].max_input_tokens == 131072
    assert (memory.data.max_prompt_length, rollout.prompt_length) == (32768 + 15360 + 2048,) * 2
    assert (memory.data.max_response_length, rollout.response_length) == (15360,) * 2
    assert memory.data.filter_overlong_prompts is False
    assert memory.actor_rollout_ref.model.path == f"{out}/stage3/actor_hf"
    for cfg in (stage3, stage4):  # the full-context stages keep veRL's single-turn rollouts
        assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == "single_turn_agent"
        assert cfg.data.filter_overlong_prompts and cfg.data.max_prompt_length == 122880
    # SCE of the memory expert with stage 3, task vectors against the recipe's model; stage 4 starts from it
    assert (merge.method, merge.parameters, merge.base) == ("sce", {"select_topk": 1.0}, recipe.model_path)
    assert merge.models == [f"{out}/stage3/actor_hf", f"{out}/memory/actor_hf"]
    assert merge.out == f"{out}/merge/actor_hf" == stage4.actor_rollout_ref.model.path
    # data: bins at the four windows; memory reads what is beyond stage 3's window, stage 4 reads stage 3's rows
    assert recipe.data_cuts() == [20480, 61440, 122880, 131072]
    assert list(memory.data.train_files) == [f"{out}/data/phase4.parquet"]
    from qwenlong_verl.driver import layout

    bins = [layout.own_train_files(recipe, i) for i in recipe.data_phases()]
    phase = [f"{out}/data/phase{n}.parquet" for n in (1, 2, 3, 4)]
    assert bins == [[phase[0]], [phase[1]], [phase[2]], [phase[3]], [phase[2]]]
    # stage 4 adds hard examples of stages 1-3 to its rows (the memory phase's are too long for its window)
    assert list(stage4.data.train_files) == [f"{out}/stage4/data/train.parquet"] and recipe.carry_sources(5) == [
        0,
        1,
        2,
    ]


def test_judge_pool_variant_serves_the_judge_on_its_own_pool():
    _, configs = plans("qwenlong_l1_32b_judge_pool")
    for cfg in configs:
        rm = cfg.reward.reward_model
        assert rm.enable and rm.model_path == "Qwen/Qwen2.5-1.5B-Instruct" and rm.rollout.name == "vllm"
        # veRL's v1 trainer refuses DAPO dynamic sampling with a colocated reward model
        assert cfg.algorithm.filter_groups.enable and rm.enable_resource_pool
        assert rm.nnodes * rm.n_gpus_per_node > 0
        # the judge is reached through veRL's router: no fixed URL
        assert "judge_urls" not in cfg.reward.reward_kwargs


# ----------------------------------------------------------------------------- YaRN beyond 32K


def _tiny_model(folder):
    from support.sft import tiny_model

    return tiny_model(folder, max_position_embeddings=2048)


def _rl_plan(tmp_path, model, **overrides):
    from qwenlong_verl.driver.recipe import parse_recipe

    data = one_phase_recipe(
        name="yarn", model_path=model, max_prompt_length=6000, max_response_length=2000, **overrides
    )
    return plan_phase(parse_recipe(data, "yarn.yaml"), 0).config


def test_yarn_keys_exist_in_the_composed_config(tmp_path):
    cfg = _rl_plan(tmp_path, "/models/x")
    assert isinstance(cfg.actor_rollout_ref.model.override_config, DictConfig)
    assert isinstance(cfg.actor_rollout_ref.rollout.engine_kwargs.vllm, DictConfig)
    # both compose and pass veRL's validate_config
    cfg = _rl_plan(
        tmp_path,
        "/models/x",
        **{
            "+actor_rollout_ref.model.override_config.rope_scaling": YARN,
            "+actor_rollout_ref.rollout.engine_kwargs.vllm.hf_overrides": {"rope_scaling": YARN},
        },
    )
    assert cfg.actor_rollout_ref.model.override_config.rope_scaling.rope_type == "yarn"
    assert cfg.actor_rollout_ref.rollout.engine_kwargs.vllm.hf_overrides.rope_scaling.factor == 4.0


def test_yarn_through_override_config_fails_at_model_load_in_verl_0_9_1(tmp_path):
    """What docs/recipes.md warns about: veRL merges override_config key by key into the existing rope dict."""
    from verl.utils.config import omega_conf_to_dataclass

    model = _tiny_model(tmp_path / "m")
    cfg = _rl_plan(tmp_path, model, **{"+actor_rollout_ref.model.override_config.rope_scaling": YARN})
    with pytest.raises(Exception, match="object has no attribute 'rope_type'"):
        omega_conf_to_dataclass(cfg.actor_rollout_ref.model)


def test_yarn_in_config_json_reaches_verls_model_config(tmp_path):
    """The documented way: rope_scaling in the model folder's config.json (read by the FSDP actor and vLLM)."""
    from verl.utils.config import omega_conf_to_dataclass

    model = _tiny_model(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["rope_scaling"] = YARN
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    hf = omega_conf_to_dataclass(_rl_plan(tmp_path, model).actor_rollout_ref.model).hf_config
    rope = getattr(hf, "rope_parameters", None) or hf.rope_scaling
    assert (rope["rope_type"], rope["factor"], rope["original_max_position_embeddings"]) == ("yarn", 4.0, 2048)
    from qwenlong_verl.driver.kinds.sft import context_length

    assert context_length(hf) == 8192


def _judge(cfg, **verl_kwargs):
    """The judge settings our reward builds from a composed config's reward kwargs (as veRL passes them)."""
    from omegaconf import OmegaConf

    from qwenlong_verl.worker.rewards.judge import JudgeConfig

    kwargs = OmegaConf.to_container(cfg.reward.reward_kwargs, resolve=True)
    return JudgeConfig.from_kwargs(kwargs, **verl_kwargs)


def test_judge_variants_reach_the_reward(monkeypatch):
    for var in ("QWENLONG_JUDGE_URLS", "QWENLONG_JUDGE_MODEL"):
        monkeypatch.delenv(var, raising=False)
    # smoke: rule only
    assert not _judge(plans("smoke_1gpu")[1][0]).active
    # explicit OpenAI-compatible URL(s)
    judge = _judge(plans("smoke_1gpu_judge")[1][0])
    assert judge.active and judge.urls == ("http://127.0.0.1:8001",)
    assert judge.model == "Qwen/Qwen2.5-1.5B-Instruct"
    # the 32B recipe: the URLs come from the environment, the model from the recipe
    cfg = plans("qwenlong_l1_32b")[1][0]
    assert not _judge(cfg).active
    monkeypatch.setenv("QWENLONG_JUDGE_URLS", "http://judge-a:8000/v1,http://judge-b:8000/v1")
    judge = _judge(cfg)
    assert judge.urls == ("http://judge-a:8000", "http://judge-b:8000") and judge.model == "Qwen/Qwen2.5-1.5B-Instruct"
    monkeypatch.delenv("QWENLONG_JUDGE_URLS")
    # veRL's reward-model pool: the router address veRL passes to the reward is the judge
    judge = _judge(plans("qwenlong_l1_32b_judge_pool")[1][0], reward_router_address="10.0.0.7:4000")
    assert judge.active and judge.urls == ("http://10.0.0.7:4000",)


def test_paper_recipes_name_each_papers_judge(monkeypatch):
    """QwenLong-L1: the release's prompt to Qwen2.5-1.5B-Instruct; QwenLong-L1.5: Table 6 to gpt-oss-120b, a
    reasoning judge with the budget and timeouts it needs (docs/rewards.md, "Prompt presets")."""
    for var in ("QWENLONG_JUDGE_URLS", "QWENLONG_JUDGE_MODEL"):
        monkeypatch.delenv(var, raising=False)
    for name in ("qwenlong_l1_32b", "qwenlong_l1_32b_judge_pool"):
        for cfg in plans(name)[1]:
            judge = _judge(cfg)
            assert (judge.prompt, judge.max_tokens, judge.reasoning) == ("qwenlong_l1", 1024, False)
    pool = plans("qwenlong_l1_32b_judge_pool")[1][0].reward.reward_model
    assert pool.model_path == "Qwen/Qwen2.5-1.5B-Instruct" and pool.rollout.response_length >= 1024
    for cfg in plans("qwenlong_l15_aepo")[1]:
        judge = _judge(cfg)
        assert (judge.model, judge.prompt) == ("openai/gpt-oss-120b", "qwenlong_l15")
        assert judge.reasoning and judge.reasoning_effort == "medium" and judge.max_tokens == 4096
        assert judge.timeout_s >= 60 and judge.budget_s >= judge.timeout_s
