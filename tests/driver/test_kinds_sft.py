"""`kind: sft` recipes: veRL's SFT config composed and checked on CPU, the torchrun command, the hand-off to RL."""

from __future__ import annotations

import copy
import json
import shlex
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf
from support.sft import tiny_model

from qwenlong_verl.driver.data.sft import arrow_schema
from qwenlong_verl.driver.kinds.sft import finished_model_path, handoff_model_path
from qwenlong_verl.driver.plan import PlanError, plan_phase
from qwenlong_verl.driver.recipe import RecipeError, parse_recipe

BASE = {
    "name": "warm",
    "kind": "sft",
    "model_path": "/models/not-here",
    "overrides": {"trainer.n_gpus_per_node": 8, "data.train_batch_size": 16},
    "phases": [
        {
            "name": "sft",
            "max_prompt_length": 3000,
            "max_response_length": 1000,
            "total_training_steps": 7,
            "train_files": ["train.parquet"],
        }
    ],
}


def recipe(tmp_path, overrides=None, phase=None, **top):
    data = copy.deepcopy(BASE)
    data["output_dir"] = str(tmp_path / "out")
    data["overrides"].update(overrides or {})
    data["phases"][0].update(phase or {})
    data.update(top)
    return parse_recipe(data, "r.yaml")


def plan(tmp_path, overrides=None, phase=None, **top):
    return plan_phase(recipe(tmp_path, overrides, phase, **top), 0)


def plan_error(tmp_path, overrides=None, phase=None, **top) -> str:
    with pytest.raises(PlanError) as err:
        plan(tmp_path, overrides, phase, **top)
    text = " ".join(str(err.value).split())
    assert text.startswith("r.yaml: phase 1 (sft): ")
    return text


def sft_file(path, rows: int, traces: bool = False):
    message = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    extra = {"index": 0, "task": "qa", "source_id": "s", "has_trace": traces, "num_tokens": None}
    table = pa.Table.from_pylist(
        [{"messages": message, "data_source": "d", "extra_info": extra}] * rows, schema=arrow_schema()
    )
    pq.write_table(table, path)
    return str(path)


# ----------------------------------------------------------------------------- recipe rules


def test_kind_sft_defaults_to_the_sft_base_config(tmp_path):
    r = recipe(tmp_path)
    assert r.kind == "sft" and r.base_config == "qwenlong_sft"
    assert parse_recipe({**copy.deepcopy(BASE), "kind": "rl"}, "r.yaml").base_config == "qwenlong_l1"


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"kind": "dpo"}, "kind 'dpo' must be one of rl, memory, merge, sft"),
        ({"phases": BASE["phases"] * 2}, "a kind: sft recipe has exactly one phase"),
        ({"overrides": {"data.max_length": 9}}, "overrides sets data.max_length; use the recipe's phases[0]"),
        ({"overrides": {"model.path": "x"}}, "overrides sets model.path; use the recipe's model_path"),
        ({"phases": [{**BASE["phases"][0], "train_files": []}]}, "no train_files; list the phase's parquet files"),
    ],
)
def test_sft_recipe_rules(change, fragment):
    with pytest.raises(RecipeError) as err:
        parse_recipe({**copy.deepcopy(BASE), **change}, "r.yaml")
    assert fragment in str(err.value)


# ----------------------------------------------------------------------------- composed config and command


def test_plan_composes_verl_sft_config(tmp_path):
    p = plan(tmp_path)
    cfg = p.config
    assert cfg.model.path == "/models/not-here"
    assert cfg.data.max_length == 4000  # prompt window + response budget
    assert cfg.data.max_token_len_per_gpu == 4000
    assert list(cfg.data.train_files) == ["train.parquet"] and cfg.data.val_files is None
    assert cfg.trainer.total_training_steps == 7 and cfg.trainer.total_epochs == 7
    assert cfg.trainer.default_local_dir == str(tmp_path / "out" / "sft" / "checkpoints")
    assert "hf_model" in cfg.checkpoint.save_contents and "hf_model" not in cfg.checkpoint.load_contents
    assert p.command[:7] == [
        "torchrun",
        "--nnodes=1",
        "--nproc_per_node=8",
        "--standalone",
        "-m",
        "verl.trainer.sft_trainer",
        "--config-path=pkg://qwenlong_verl.hydra_configs",
    ]
    assert shlex.split(p.command_line) == p.command
    target = tmp_path / "out" / "sft" / "checkpoints" / "global_step_7" / "huggingface"
    assert f"hand-off: RL phase 1 model_path: {target}" in p.notes


def test_multi_node_command_uses_c10d_rendezvous(tmp_path):
    p = plan(tmp_path, {"trainer.nnodes": 4, "data.train_batch_size": 32})
    assert p.command[:5] == ["torchrun", "--nnodes=4", "--nproc_per_node=8", "--rdzv_backend=c10d", "--rdzv_id=warm"]


@pytest.mark.slow
def test_verl_sft_entry_point_composes_the_same_config(tmp_path):
    """The printed command, run through veRL's own `sft_trainer` main (Hydra `--cfg job`), gives plan's config."""
    p = plan(tmp_path, {"engine.ulysses_sequence_parallel_size": 2, "optim.lr": 3e-6})
    module_at = p.command.index("-m")
    args = p.command[module_at + 2 :]
    out = subprocess.run(
        [sys.executable, "-m", "verl.trainer.sft_trainer", *args, "--cfg", "job", "--resolve"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert OmegaConf.create(out.stdout) == OmegaConf.create(OmegaConf.to_container(p.config, resolve=True))


# ----------------------------------------------------------------------------- checks veRL leaves to run time


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (
            {"data.train_batch_size": 12},
            "data.train_batch_size (12) must be a positive multiple of the data-parallel size 8",
        ),
        (
            {"engine.ulysses_sequence_parallel_size": 3},
            "engine.ulysses_sequence_parallel_size (3) must divide the GPU count",
        ),
        (
            {"engine.ulysses_sequence_parallel_size": 2, "data.max_token_len_per_gpu": 1000},
            "data.max_token_len_per_gpu (1000) x Ulysses SP (2) = 2000 is below data.max_length (4000)",
        ),
        (
            {"data.use_dynamic_bsz": False, "data.micro_batch_size_per_gpu": 3},
            "data.micro_batch_size_per_gpu (3) must divide the per-rank batch 2",
        ),
        (
            {"engine.ulysses_sequence_parallel_size": 2, "model.use_remove_padding": False},
            "needs model.use_remove_padding=true",
        ),
        ({"data.pad_mode": "left"}, "data.pad_mode must be right or no_padding"),
        ({"trainer.profile_interval": [5, 2]}, "trainer.profile_interval must be [start, end]"),
        ({"optim.lr_scheduler_type": "linear"}, "optim: "),
        ({"optim.lr_shceduler_type": "cosine"}, "did you mean 'optim.lr_scheduler_type'"),
    ],
)
def test_invalid_sft_configs_fail_at_plan_time(tmp_path, overrides, fragment):
    assert fragment in plan_error(tmp_path, overrides)


def test_sp_budget_suggestion(tmp_path):
    text = plan_error(tmp_path, {"engine.ulysses_sequence_parallel_size": 8, "data.max_token_len_per_gpu": 100})
    assert "set data.max_token_len_per_gpu=500" in text


# ----------------------------------------------------------------------------- local model and data


def test_local_model_is_loaded_by_verls_model_config(tmp_path):
    p = plan(tmp_path, model_path=tiny_model(tmp_path / "m"))
    assert any("Qwen2Config, tokenizer with chat template, context 8192 tokens" in n for n in p.notes)


def test_local_model_rejected_by_verl(tmp_path):
    text = plan_error(tmp_path, model_path=tiny_model(tmp_path / "m", architectures=None))
    assert "model: " in text and "Expect only one architecture" in text


def test_window_beyond_the_model_context_asks_for_yarn(tmp_path):
    model = tiny_model(tmp_path / "m", max_position_embeddings=2048)
    text = plan_error(tmp_path, model_path=model)
    assert "data.max_length (4000) exceeds the model's context (2048 tokens)" in text
    yarn = '"rope_scaling": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 2048}'
    assert f"add YaRN rope scaling to {tmp_path / 'm' / 'config.json'}: {yarn}" in text
    # doing what the message says makes the plan pass: transformers and vLLM both read config.json
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["rope_scaling"] = json.loads("{" + yarn + "}")["rope_scaling"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    p = plan(tmp_path, model_path=model)
    assert any("context 4096 tokens" in n for n in p.notes)


def test_verl_model_override_cannot_set_rope_scaling(tmp_path):
    """Why the docs say config.json: veRL 0.9.1 merges override_config key by key into the existing rope dict."""
    model = tiny_model(tmp_path / "m", max_position_embeddings=2048)
    yarn = {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 2048}
    text = plan_error(tmp_path, {"+model.override_config.rope_scaling": yarn}, model_path=model)
    assert "model: " in text and "object has no attribute 'rope_type'" in text


def test_template_dropping_traces_with_traced_data(tmp_path):
    from support.sft import DROPPING_TEMPLATE

    model = tiny_model(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "tokenizer_config.json").read_text())
    config["chat_template"] = DROPPING_TEMPLATE
    (tmp_path / "m" / "tokenizer_config.json").write_text(json.dumps(config))
    traced = sft_file(tmp_path / "traced.parquet", 64, traces=True)
    text = plan_error(tmp_path, phase={"train_files": [traced]}, model_path=model)
    assert "the training data has reasoning traces, but the tokenizer's chat template drops" in text
    # answer-only data: fine; unknown data: a warning note
    plain = sft_file(tmp_path / "plain.parquet", 64)
    assert not any("warning" in n for n in plan(tmp_path, phase={"train_files": [plain]}, model_path=model).notes)
    notes = plan(tmp_path, model_path=model).notes
    assert any(n.startswith("warning: the tokenizer's chat template drops") for n in notes)
    # model.custom_chat_template is what training uses, and it fixes the check
    from qwenlong_verl.driver.data.tokenizer import load_tokenizer

    keeping = {"model.custom_chat_template": load_tokenizer("builtin").chat_template}
    plan(tmp_path, keeping, phase={"train_files": [traced]}, model_path=model)


def test_data_present_gives_steps_and_hand_off_step(tmp_path):
    data = sft_file(tmp_path / "train.parquet", 100)
    p = plan(tmp_path, phase={"train_files": [data], "total_training_steps": None, "total_epochs": 3})
    # 100 rows over 8 ranks -> 12 each; 2 per rank per step -> 6 steps per epoch; 3 epochs
    assert "100 rows, 6 steps per epoch: 18 steps (~3.0 epochs)" in p.notes
    assert p.config.trainer.total_epochs == 3 and p.config.trainer.total_training_steps is None
    assert any(n.endswith("global_step_18/huggingface") for n in p.notes)
    capped = plan(tmp_path, {"data.train_max_samples": 40}, phase={"train_files": [data]})
    assert "40 rows, 2 steps per epoch: 7 steps (~3.5 epochs)" in capped.notes


def test_data_errors_name_the_file(tmp_path):
    wrong = tmp_path / "rl.parquet"
    pq.write_table(pa.table({"prompt": ["x"]}), wrong)
    text = plan_error(tmp_path, phase={"train_files": [str(wrong)]})
    assert f"data.train_files: {wrong} has no 'messages' column" in text and "qwenlong-verl sft-data" in text
    few = sft_file(tmp_path / "few.parquet", 10)
    assert "10 training rows make no full batch of data.train_batch_size (16)" in plan_error(
        tmp_path, phase={"train_files": [few]}
    )
    epochs = {"train_files": [str(tmp_path / "missing.parquet")], "total_training_steps": None, "total_epochs": 2}
    notes = plan(tmp_path, phase=epochs).notes
    assert any(n.endswith("global_step_<N>/huggingface") for n in notes)
    assert any("<N> is the step in" in n and "latest_checkpointed_iteration.txt" in n for n in notes)


# ----------------------------------------------------------------------------- hand-off to RL


def test_finished_sft_run_hands_off_to_rl_phase_1(tmp_path):
    """The folder veRL's checkpoint handler writes is what RL phase 1 loads as its model."""
    from verl.utils.config import omega_conf_to_dataclass

    sft = recipe(tmp_path)
    ckpt = tmp_path / "out" / "sft" / "checkpoints"
    with pytest.raises(FileNotFoundError, match="has not saved a checkpoint yet"):
        finished_model_path(sft)
    ckpt.mkdir(parents=True)
    (ckpt / "latest_checkpointed_iteration.txt").write_text("7")
    with pytest.raises(FileNotFoundError, match="verl.model_merger merge --backend fsdp"):
        finished_model_path(sft)
    tiny_model(handoff_model_path(sft, 7))
    model_path = finished_model_path(sft)
    assert model_path == ckpt / "global_step_7" / "huggingface"

    rl = parse_recipe(
        {
            "name": "rl",
            "model_path": str(model_path),
            "overrides": {
                "trainer.n_gpus_per_node": 1,
                "data.train_batch_size": 8,
                "actor_rollout_ref.actor.ppo_mini_batch_size": 4,
                "reward.reward_kwargs.overlong_buffer_cfg.len": 256,  # the ramp must fit the 1000-token outputs
            },
            "phases": [
                {
                    "name": "p1",
                    "max_prompt_length": 3000,
                    "max_response_length": 1000,
                    "total_training_steps": 2,
                    "train_files": ["a.parquet"],
                }
            ],
        },
        "rl.yaml",
    )
    config = plan_phase(rl, 0).config
    assert config.actor_rollout_ref.model.path == str(model_path)
    model = omega_conf_to_dataclass(config.actor_rollout_ref.model)
    assert model.architectures == ["Qwen2ForCausalLM"] and model.tokenizer.chat_template


def test_shipped_sft_recipe_hands_off_to_the_32b_rl_recipe(cli_main):
    """The shipped sft_warmup's hand-off path is the model_path of RL phase 1 in the 32B recipes."""
    from qwenlong_verl.driver.recipe import load_recipe
    from qwenlong_verl.driver.recipes import SHIPPED_DIR

    out = cli_main("plan", "sft_warmup")
    assert out.returncode == 0, out.stdout + out.stderr
    sft = load_recipe(SHIPPED_DIR / "sft_warmup.yaml")
    target = handoff_model_path(sft, sft.phases[0].total_training_steps)
    assert f"hand-off: RL phase 1 model_path: {target}" in out.stdout
    for rl in ("qwenlong_l1_32b", "qwenlong_l1_32b_judge_pool"):
        assert load_recipe(SHIPPED_DIR / f"{rl}.yaml").model_path == str(target)
