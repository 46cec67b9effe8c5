"""The memory pipeline for real on the CPU: ``qwenlong-verl train cpu_memory`` (the shipped recipe) runs stock veRL's
``main_ppo`` (tiny random Qwen2, transformers rollout, FSDP2 over gloo) for a full-context step, Memory-RL steps with
the ``qwenlong_memory`` agent loop (each document read chunk by chunk, each generation trained as its own sequence),
an SCE merge of the two models, and a full-context step from the merged model. Every figure below is veRL's own step,
our trainer mode's or the merged weights, from the run's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support.real_runs import RealRun

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "qwenlong_verl" / "recipes" / "cpu_memory.yaml"
PHASE = "memory"
PHASES = ("context", "memory", "merge", "final")
PROMPT_EXTRA = 320
"""Tokens a memory-update prompt holds beyond its chunk at most here: template and instructions (~200), a question
with its options, a 4-token memory, a 2-token plan. Every document of the recipe is longer than chunk + this."""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recipe() -> dict:
    return yaml.safe_load(RECIPE.read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("memory") / "train"
    real = RealRun(RECIPE, out, out.parent / "train.log")
    real.start()
    code = real.wait(timeout=900)
    assert code == 0, real.tail()
    return out


def _metrics(run: Path, phase: str = PHASE) -> list[dict]:
    lines = (run / phase / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["data"] for line in lines if line.strip()]


def _phase(recipe: dict, name: str = PHASE) -> dict:
    return next(p for p in recipe["phases"] if p["name"] == name)


def test_every_phase_done_and_each_starts_from_the_one_before(run):
    state = json.loads((run / "train_state.json").read_text())["phases"]
    assert [state[p]["status"] for p in PHASES] == ["done"] * 4
    assert state["memory"]["model_in"] == str(run / "context" / "actor_hf")
    assert state["final"]["model_in"] == str(run / "merge" / "actor_hf")


def test_sce_merge_of_the_memory_expert_and_the_context_model(run):
    """The merged model loads, and differs from both models it merges (SCE moved its weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    models = {p: AutoModelForCausalLM.from_pretrained(run / p / "actor_hf") for p in ("context", "memory", "merge")}
    weights = {p: torch.cat([t.detach().float().flatten() for t in m.state_dict().values()]) for p, m in models.items()}
    assert weights["merge"].shape == weights["memory"].shape
    assert not torch.equal(weights["merge"], weights["memory"]) and not torch.equal(
        weights["merge"], weights["context"]
    )
    assert torch.isfinite(weights["merge"]).all()
    assert _metrics(run, "final")  # the full-context step from the merged model ran and logged


def test_documents_are_read_in_chunks_one_sequence_per_generation(run, recipe):
    overrides, memory = recipe["overrides"], _phase(recipe)
    chunk = memory["chunk_tokens"]
    batch, n = overrides["data.train_batch_size"], overrides["actor_rollout_ref.rollout.n"]
    steps = _metrics(run)
    assert len(steps) == memory["total_training_steps"]
    for data in steps:
        assert data["qwenlong/memory_trajectories"] == batch * n
        assert data["qwenlong/memory_document_tokens/mean"] > chunk
        # K = ceil(tokens / chunk) memory updates + the answer, per trajectory
        assert 2 <= data["qwenlong/memory_chunks/mean"] <= memory["max_chunks"]
        assert data["qwenlong/memory_generations/mean"] == pytest.approx(data["qwenlong/memory_chunks/mean"] + 1)
        assert data["qwenlong/memory_generations/max"] <= memory["max_chunks"] + 1
        assert data["qwenlong/memory_tokens/max"] <= memory["memory_tokens"]
        assert 0.0 <= data["qwenlong/memory_truncated_share"] <= 1.0
        # every generation is its own sequence holding at most one chunk (veRL's own prompt lengths): a memory
        # update reads a whole chunk plus memory, plan, question and template, never the document
        assert chunk <= data["prompt_length/max"] <= chunk + PROMPT_EXTRA
        assert data["prompt_length/max"] < data["qwenlong/memory_document_tokens/mean"]
        # the rollout (transformers generate) and the actor (FSDP2) agree on every generation's tokens
        assert data["training/rollout_probs_diff_max"] <= 1e-3
    assert any(d["actor/grad_norm"] > 0 for d in steps)  # the trajectory-level advantage reaches the update


def test_ledger_has_one_record_per_question_per_step(run, recipe):
    overrides = recipe["overrides"]
    lines = (run / PHASE / "checkpoints" / "difficulty_ledger.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    steps = _phase(recipe)["total_training_steps"]
    assert sorted(r["step"] for r in records) == [
        s for s in range(1, steps + 1) for _ in range(overrides["data.train_batch_size"])
    ]
    assert all(r["n"] == overrides["actor_rollout_ref.rollout.n"] and r["trained"] for r in records)
