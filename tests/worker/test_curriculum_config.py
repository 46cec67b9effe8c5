"""``qwenlong.curriculum``: its dataclass checks, and every RL phase planned into the ``qwenlong`` trainer mode."""

from __future__ import annotations

import pytest
import yaml
from omegaconf import OmegaConf
from verl.utils.config import omega_conf_to_dataclass

from qwenlong_verl.driver.plan import PlanError, plan_phase
from qwenlong_verl.driver.recipe import load_recipe
from qwenlong_verl.worker.curriculum.config import LEDGER_FILE, CurriculumConfig


def test_defaults_and_ledger_path():
    cfg = CurriculumConfig()
    assert (cfg.phase, cfg.phase_number, cfg.ledger, cfg.task_balance) == ("main", 1, True, False)
    assert cfg.resolved_ledger_path("/ck") == f"/ck/{LEDGER_FILE}"
    assert CurriculumConfig(ledger_path="/elsewhere/l.jsonl").resolved_ledger_path("/ck") == "/elsewhere/l.jsonl"


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"phase": " "}, "phase must be a non-empty name"),
        ({"phase_number": 0}, "phase_number must be an integer >= 1"),
        ({"phase_number": True}, "phase_number must be an integer >= 1"),
        ({"task_balance": "yes"}, "task_balance must be true or false"),
        ({"ledger": 1}, "ledger must be true or false"),
        ({"pass_threshold": float("nan")}, "pass_threshold must be a finite number"),
        ({"seed": -1}, "seed must be an integer >= 0"),
    ],
)
def test_bad_values_are_refused(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        CurriculumConfig(**kwargs)


def _recipe(tmp_path, **phase2):
    data = {
        "name": "cur",
        "model_path": "/models/tiny",
        "output_dir": str(tmp_path / "out"),
        "data": {"inputs": ["raw.jsonl"]},
        "overrides": {
            "trainer.n_gpus_per_node": 1,
            "data.train_batch_size": 6,
            "actor_rollout_ref.actor.ppo_mini_batch_size": 6,
            "reward.reward_kwargs.overlong_buffer_cfg.len": 50,  # the ramp must fit the 100-token output budget
        },
        "phases": [
            {
                "name": "a",
                "max_prompt_length": 1000,
                "max_response_length": 100,
                "total_training_steps": 2,
                "task_balance": True,
            },
            {
                "name": "b",
                "max_prompt_length": 2000,
                "max_response_length": 100,
                "total_training_steps": 2,
                "retrospective": True,
                **phase2,
            },
        ],
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_recipe(path)


def test_each_phase_is_planned_into_the_qwenlong_mode_with_its_curriculum_keys(tmp_path):
    recipe = _recipe(tmp_path)
    first, second = plan_phase(recipe, 0), plan_phase(recipe, 1)
    for number, plan in ((1, first), (2, second)):
        assert plan.config.trainer.v1.trainer_mode == "qwenlong"
        assert "trainer.v1.trainer_mode=qwenlong" in plan.overrides
        section = omega_conf_to_dataclass(plan.config.qwenlong.curriculum)  # what the trainer instantiates
        assert isinstance(section, CurriculumConfig) and section.phase_number == number
    assert omega_conf_to_dataclass(first.config.qwenlong.curriculum).task_balance
    assert not omega_conf_to_dataclass(second.config.qwenlong.curriculum).task_balance
    assert list(first.config.data.train_files) == [str(tmp_path / "out" / "data" / "phase1.parquet")]
    assert list(second.config.data.train_files) == [str(tmp_path / "out" / "b" / "data" / "train.parquet")]
    assert second.config.trainer.default_local_dir == str(tmp_path / "out" / "b" / "checkpoints")


def test_a_bad_curriculum_override_fails_at_plan_time_naming_the_section(tmp_path):
    recipe = _recipe(tmp_path, overrides={"qwenlong.curriculum.pass_threshold": "half"})
    with pytest.raises(PlanError, match=r"phase 2 \(b\): .*qwenlong.curriculum"):
        plan_phase(recipe, 1)


def test_the_base_config_section_instantiates():
    from importlib.resources import files

    text = (files("qwenlong_verl.hydra_configs") / "base" / "qwenlong_l1.yaml").read_text()
    node = OmegaConf.create(yaml.safe_load(text))["qwenlong"]["curriculum"]
    assert omega_conf_to_dataclass(node) == CurriculumConfig()
