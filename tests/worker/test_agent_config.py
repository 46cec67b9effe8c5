"""``qwenlong.memory`` (worker/agent/config.py): field checks, budgets, and plan-time instantiation."""

from __future__ import annotations

import pytest

from qwenlong_verl.worker.agent.config import MemoryConfig


def test_defaults_are_the_papers_memory_rl_budgets():
    cfg = MemoryConfig()
    assert (cfg.chunk_tokens, cfg.memory_tokens, cfg.plan_tokens, cfg.max_chunks) == (32768, 15360, 0, 0)
    assert (cfg.update_tokens, cfg.answer_tokens) == (0, 0)  # 0 = the rollout's response_length


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("chunk_tokens", 0, "qwenlong.memory.chunk_tokens must be an integer >= 1, got 0"),
        ("memory_tokens", -1, "qwenlong.memory.memory_tokens must be an integer >= 1"),
        ("plan_tokens", 1.5, "qwenlong.memory.plan_tokens must be an integer >= 0"),
        ("max_chunks", True, "qwenlong.memory.max_chunks must be an integer >= 0"),
        ("answer_tokens", "8", "qwenlong.memory.answer_tokens must be an integer >= 0"),
    ],
)
def test_bad_values_fail_in_one_line(field, value, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")) as info:
        MemoryConfig(**{field: value})
    assert "\n" not in str(info.value)


def test_budget_problems_name_the_keys():
    cfg = MemoryConfig(chunk_tokens=1000, memory_tokens=100, plan_tokens=50, update_tokens=64, answer_tokens=16)
    assert cfg.budget_problems(2048, 64) == []
    [problem] = cfg.budget_problems(1100, 64)
    assert "chunk_tokens + memory_tokens + plan_tokens = 1150" in problem and "data.max_prompt_length" in problem
    problems = cfg.budget_problems(2048, 8)
    assert [p.split("=")[0] for p in problems] == ["qwenlong.memory.update_tokens", "qwenlong.memory.answer_tokens"]


def test_the_composed_section_is_checked_at_plan_time():
    from verl.utils.config import omega_conf_to_dataclass

    from qwenlong_verl.driver.checks import validate_qwenlong_sections
    from qwenlong_verl.driver.compose import compose

    base = ["actor_rollout_ref.model.path=/m", "data.train_files=[a]"]
    config = compose("qwenlong_l1", [*base, "qwenlong.memory.chunk_tokens=512", "qwenlong.memory.plan_tokens=64"])
    validate_qwenlong_sections(config)
    cfg = omega_conf_to_dataclass(config.qwenlong.memory, MemoryConfig)
    assert (cfg.chunk_tokens, cfg.plan_tokens, cfg.memory_tokens) == (512, 64, 15360)
    bad = compose("qwenlong_l1", [*base, "qwenlong.memory.chunk_tokens=0"])
    with pytest.raises(Exception, match="chunk_tokens must be an integer >= 1"):
        validate_qwenlong_sections(bad)
