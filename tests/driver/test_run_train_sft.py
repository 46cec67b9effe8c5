"""`qwenlong-verl train` on a `kind: sft` recipe, end to end on CPU: sft-data -> the SFT run -> RL phase 1's model.

veRL's SFT trainer needs a GPU, so `tests/support/sft_launcher.py` stands in for it (QWENLONG_VERL_LAUNCHER): it
composes the config from the arguments `train` passes, reads the data through veRL's own SFT dataset and model
config, and writes the checkpoint layout veRL writes.
"""

from __future__ import annotations

import json
import sys

import pytest
import yaml
from support import ROOT
from support.sft import RECORDS, tiny_model, write_jsonl

from qwenlong_verl.driver.data.sft import convert
from qwenlong_verl.driver.kinds.sft import handoff_model_path
from qwenlong_verl.driver.plan import plan_phase
from qwenlong_verl.driver.recipe import load_recipe, parse_recipe
from qwenlong_verl.driver.run import TrainError, train

LAUNCHER = [sys.executable, str(ROOT / "tests" / "support" / "sft_launcher.py")]


@pytest.fixture
def sft_recipe(tmp_path):
    model = tiny_model(tmp_path / "base_model")
    data = tmp_path / "sft.parquet"
    convert([str(write_jsonl(tmp_path / "raw.jsonl", RECORDS * 4))], str(data), tokenizer=model, max_length=1024)
    recipe = {
        "name": "warm",
        "kind": "sft",
        "model_path": model,
        "output_dir": str(tmp_path / "out"),
        "overrides": {"trainer.n_gpus_per_node": 1, "data.train_batch_size": 2, "trainer.save_freq": 2},
        "phases": [
            {
                "name": "sft",
                "max_prompt_length": 768,
                "max_response_length": 256,
                "total_training_steps": 5,
                "train_files": [str(data)],
            }
        ],
    }
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return load_recipe(path)


@pytest.mark.slow
def test_train_runs_sft_and_hands_off_to_rl(sft_recipe, tmp_path, monkeypatch):
    log = tmp_path / "launches.jsonl"
    monkeypatch.setenv("STANDIN_LOG", str(log))
    monkeypatch.setenv("STANDIN_FAIL_AFTER", "2")
    with pytest.raises(TrainError, match="veRL exited with code 1"):
        train(sft_recipe, launcher=LAUNCHER, echo=lambda line: None)
    monkeypatch.delenv("STANDIN_FAIL_AFTER")
    (report,) = train(sft_recipe, launcher=LAUNCHER, echo=lambda line: None)

    launches = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(x["start"], x["total"], x["rows"]) for x in launches] == [(0, 5, 12), (2, 5, 12)]  # resumed
    target = handoff_model_path(sft_recipe, 5)
    state = json.loads((tmp_path / "out" / "train_state.json").read_text())["phases"]["sft"]
    assert (state["status"], state["final_step"], state["model_out"]) == ("done", 5, str(target))
    assert report.status == "done" and (target / "model.safetensors").is_file()
    assert not (target.parent.parent / "global_step_4").exists()  # max_ckpt_to_keep: 1

    rl = parse_recipe(
        {
            "name": "rl",
            "model_path": state["model_out"],
            "overrides": {
                "trainer.n_gpus_per_node": 1,
                "data.train_batch_size": 8,
                "actor_rollout_ref.actor.ppo_mini_batch_size": 4,
                "reward.reward_kwargs.overlong_buffer_cfg.len": 64,  # the ramp must fit the 256-token output budget
            },
            "phases": [
                {
                    "name": "p1",
                    "max_prompt_length": 768,
                    "max_response_length": 256,
                    "total_training_steps": 2,
                    "train_files": ["a.parquet"],
                }
            ],
        },
        "rl.yaml",
    )
    from verl.utils.config import omega_conf_to_dataclass

    model = omega_conf_to_dataclass(plan_phase(rl, 0).config.actor_rollout_ref.model)
    assert model.architectures == ["Qwen2ForCausalLM"] and model.tokenizer.chat_template


def test_train_dry_run_prints_the_torchrun_command(sft_recipe):
    lines = []
    (report,) = train(sft_recipe, dry_run=True, echo=lines.append)
    assert report.command[:4] == ["torchrun", "--nnodes=1", "--nproc_per_node=1", "--standalone"]
    assert any(n.startswith("hand-off: RL phase 1 model_path:") for n in report.notes)
    assert not (handoff_model_path(sft_recipe, 5)).exists()
