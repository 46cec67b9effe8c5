"""``qwenlong-verl train`` over a recipe of several kinds: RL, Memory-RL, an SCE merge step, RL from the merge.

veRL is replaced by ``curriculum_launcher.py`` (QWENLONG_VERL_LAUNCHER), as in test_run_train.py; everything else is
real: ``prepare`` cutting the bins of each phase's input range, veRL's model merger handing each phase over, and the
merge step's own child (``python -m qwenlong_verl.driver.merge``, mergekit's SCE) on the phases' Hugging Face
folders. The merge is killed half-written once (a stand-in for it, QWENLONG_VERL_MERGE_STEP) and must be redone; a
finished one must never be.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest
import yaml
from support import run_cli
from support.train_runs import launches, run_train

from qwenlong_verl.driver.run.state import RunState

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

KILLING_MERGE = (
    "import os, signal, sys\n"
    "out = sys.argv[sys.argv.index('--out') + 1] + '.partial'\n"  # where the merge writes before its swap
    "os.makedirs(out, exist_ok=True)\n"
    "open(os.path.join(out, 'model.safetensors'), 'w').write('half written')\n"
    "os.killpg(os.getpgrp(), signal.SIGKILL)\n"
)
FAILING_MERGE = "import sys; sys.exit(9)\n"


@pytest.fixture(scope="module")
def recipe_path(tmp_path_factory):
    """A tiny model (`qwenlong-verl tiny-model`), 60 synthetic examples and a four-step recipe over them."""
    from qwenlong_verl.driver.data.synth import synth

    root = tmp_path_factory.mktemp("mixed")
    made = run_cli("tiny-model", "--out", str(root / "model"), "--seed", "0", timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    synth(root / "raw.jsonl", n=60, min_tokens=1500, max_tokens=3500, seed=0)
    steps = {"total_training_steps": 2}
    recipe = {
        "name": "mixed",
        "model_path": str(root / "model"),
        "output_dir": str(root / "out"),
        "data": {"inputs": [str(root / "raw.jsonl")], "tokenizer": "builtin"},
        "overrides": {
            "trainer.n_gpus_per_node": 1,
            "trainer.save_freq": 2,
            "data.train_batch_size": 6,
            "actor_rollout_ref.actor.ppo_mini_batch_size": 6,
            "actor_rollout_ref.rollout.n": 2,
            "reward.reward_kwargs.overlong_buffer_cfg.len": 128,
        },
        "phases": [
            {"name": "p1", "max_prompt_length": 2400, "max_response_length": 512, **steps},
            {
                "name": "mem",
                "kind": "memory",
                "max_input_tokens": 4000,
                "chunk_tokens": 1024,
                "memory_tokens": 256,
                "question_tokens": 512,
                **steps,
            },
            {"name": "fuse", "kind": "merge", "models": ["p1", "mem"], "parameters": {"select_topk": 0.5}},
            {"name": "p2", "max_prompt_length": 2400, "max_response_length": 512, **steps},
        ],
    }
    path = root / "mixed.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    (root / "killing_merge.py").write_text(KILLING_MERGE)
    (root / "failing_merge.py").write_text(FAILING_MERGE)
    return path


def first_tensor_sum(folder: Path) -> float:
    from safetensors.torch import load_file

    weights = load_file(folder / "model.safetensors")
    return float(weights[sorted(weights)[0]].float().sum())


def test_train_runs_rl_memory_merge_rl_and_resumes_across_the_merge(recipe_path):
    root = recipe_path.parent
    out, log = root / "out", root / "launches.jsonl"
    merged = out / "fuse" / "actor_hf"
    state = lambda: RunState.load(out / "train_state.json")  # noqa: E731

    # 0. a dry run plans all four steps and prints the merge's command; nothing runs
    r = run_train(recipe_path, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    text = " ".join(r.stdout.split())
    assert "phase 3 (fuse) — merge inputs checked" in text and "-m qwenlong_verl.driver.merge --method sce" in text
    assert "actor_rollout_ref.rollout.agent.default_agent_loop=qwenlong_memory" in text
    assert not launches(log) and not (out / "train_state.json").exists()

    # 1. p1 and the memory phase train and hand over; the merge is killed half-written
    r = run_train(recipe_path, STANDIN_LOG=str(log), QWENLONG_VERL_MERGE_STEP=f"{sys.executable} killing_merge.py")
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    runs = launches(log)
    assert [x["phase"] for x in runs] == ["p1", "mem"]
    assert runs[1]["model"] == str(out / "p1" / "actor_hf")
    # each read its own bin of the data: the memory phase the rows beyond p1's window, up to its own
    assert runs[0]["train_files"] == [str(out / "data" / "phase1.parquet")]
    assert runs[1]["train_files"] == [str(out / "data" / "phase2.parquet")]
    stats = json.loads((out / "data" / "stats.json").read_text())
    assert [(s["min_exclusive"], s["max_inclusive"]) for s in stats["phase_stats"]] == [(0, 2400), (2400, 4000)]
    assert [state().status(p) for p in ("p1", "mem", "fuse", "p2")] == ["done", "done", "merging", "pending"]
    assert not merged.exists() and (out / "fuse" / "actor_hf.partial").exists()

    # 2. rerun: the merge is redone for real (the half-written folder removed); p2 starts from the merged model
    r = run_train(recipe_path, STANDIN_LOG=str(log))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "phase 1 (p1): done (final step 2)" in r.stdout and "phase 3 (fuse): done; model" in r.stdout
    assert (merged / "config.json").is_file() and not (out / "fuse" / "actor_hf.partial").exists()
    runs = launches(log)
    assert [x["phase"] for x in runs] == ["p1", "mem", "p2"]
    assert runs[2]["model"] == str(merged) and runs[2]["train_files"] == runs[0]["train_files"]  # p1's bin again
    assert runs[2]["checksum"] == pytest.approx(first_tensor_sum(merged), rel=1e-6)
    inputs = [first_tensor_sum(out / p / "actor_hf") for p in ("p1", "mem")]
    assert all(runs[2]["checksum"] != pytest.approx(x, rel=1e-6) for x in inputs)  # a merge, not a copy
    st = state()
    assert st.status("fuse") == "done" and st.phase("fuse")["launches"] == 2
    assert st.phase("fuse")["model_out"] == str(merged) and st.status("p2") == "done"
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(merged).config.architectures == ["Qwen2ForCausalLM"]

    # 3. a finished recipe: nothing launched, nothing merged (a merge command that fails would show it)
    before = (merged / "model.safetensors").stat().st_mtime_ns
    failing = f"{sys.executable} failing_merge.py"
    r = run_train(recipe_path, STANDIN_LOG=str(log), QWENLONG_VERL_MERGE_STEP=failing)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(launches(log)) == 3 and "phase 3 (fuse): done; model" in r.stdout

    # 4. killed after the merge's folder was swapped in but before it was recorded: recognised, not merged again
    RunState.load(out / "train_state.json").update("fuse", status="merging")
    r = run_train(recipe_path, STANDIN_LOG=str(log), QWENLONG_VERL_MERGE_STEP=failing)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"phase 3 (fuse): {merged} is complete; not merging again" in " ".join(r.stdout.split())
    assert (merged / "model.safetensors").stat().st_mtime_ns == before and state().status("fuse") == "done"
    assert len(launches(log)) == 3

    # 5. --from-phase 3 redoes the merge (the old one moved aside); a merge that fails says so, stays unfinished
    r = run_train(recipe_path, "--from-phase", "3", STANDIN_LOG=str(log), QWENLONG_VERL_MERGE_STEP=failing)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "phase 3 (fuse): the merge failed (exit 9); fix the cause and rerun" in " ".join(
        (r.stdout + r.stderr).split()
    )
    assert state().status("fuse") == "merging" and not merged.exists()
    assert [p.name for p in out.iterdir() if p.name.startswith("fuse.archived-")]
