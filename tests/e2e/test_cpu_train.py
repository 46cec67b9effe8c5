"""Real training on the CPU: ``qwenlong-verl train cpu_smoke`` (the shipped recipe) runs stock veRL's ``main_ppo`` for two
phases (tiny random Qwen2, transformers rollout, FSDP2 over gloo), killed with SIGKILL in phase 1 after its first
checkpoint and resumed. Nothing is stubbed: every figure below comes from veRL's own step."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.real_runs import RealRun

from qwenlong_verl.worker.cpu_backend import TRACE_ENV, trace_lines

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "qwenlong_verl" / "recipes" / "cpu_smoke.yaml"
PHASES = ("phase1", "phase2")
STEPS = 2
BATCH = 3

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One real two-phase run, SIGKILLed once mid-phase-1 and resumed; yields its output folder."""
    out = tmp_path_factory.mktemp("demo") / "train"  # where `qwenlong-verl demo --out <parent>` trains
    real = RealRun(RECIPE, out, out.parent / f"{out.name}-train.log", {TRACE_ENV: str(out.parent / "trace.jsonl")})
    tracker = out / "phase1" / "checkpoints" / "latest_checkpointed_iteration.txt"
    metrics = out / "phase1" / "metrics.jsonl"
    first = real.start()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and first.poll() is None:
        # veRL logs a step after its checkpoint (and validation): kill once both are on disk, so step 1's line is
        # the killed launch's to keep. A kill between the two loses that step's line, in every veRL logger alike.
        if (
            tracker.is_file()
            and tracker.read_text().strip() == "1"
            and metrics.is_file()
            and metrics.read_text().strip()
        ):
            break
        time.sleep(0.2)
    assert first.poll() is None, f"train ended before the kill: {real.tail(3000)}"
    real.stop()  # SIGKILL: the train driver, veRL and its Ray processes at once
    real.start()
    code = real.wait(timeout=900)
    assert code == 0, real.tail()
    return out


def _metrics(out: Path, phase: str) -> list[dict]:
    return [json.loads(line) for line in (out / phase / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_every_phase_done(run):
    state = json.loads((run / "train_state.json").read_text())
    assert [state["phases"][p]["status"] for p in PHASES] == ["done", "done"]
    assert state["phases"]["phase1"]["launches"] == 2  # the killed launch and the resume


def test_ledger_has_each_step_once_from_real_rollouts(run):
    for phase in PHASES:
        lines = (run / phase / "checkpoints" / "difficulty_ledger.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        steps = sorted(r["step"] for r in records)
        assert steps == sorted(s for s in range(1, STEPS + 1) for _ in range(BATCH)), (phase, steps)
        assert all(r["n"] == 4 and r["trained"] for r in records)


def test_phase2_carries_phase1_examples_from_its_real_ledger(run):
    report = json.loads((run / "phase2" / "data" / "retrospective.json").read_text())
    assert report["carried"] >= 1


def test_merged_actor_loads_and_feeds_phase2(run):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(run / "phase2" / "actor_hf")
    assert model.config.num_hidden_layers == 2
    state = json.loads((run / "train_state.json").read_text())
    assert state["phases"]["phase2"]["model_in"] == str(run / "phase1" / "actor_hf")


def test_metrics_file_keeps_each_attempt_and_the_figures(run):
    for number, phase in enumerate(PHASES, start=1):
        lines = _metrics(run, phase)
        assert {line["step"] for line in lines} == set(range(1, STEPS + 1))
        for line in lines:
            data = line["data"]
            assert data["qwenlong/phase"] == number
            assert data["actor/grad_norm"] > 0  # the answers model's rewards vary within groups
            assert any(key.startswith("qwenlong_reward/") for key in data)
            # rollout (transformers generate) and actor (FSDP2) agree on the same tokens
            assert data["training/rollout_probs_diff_max"] <= 1e-3


def test_rollout_weights_change_every_step(run):
    syncs = trace_lines(run.parent / "trace.jsonl")
    assert len(syncs) >= 2 * STEPS
    for previous, current in zip(syncs, syncs[1:], strict=False):
        if current["global_steps"] == previous["global_steps"] + 1:
            assert current["digest"] != previous["digest"]


def test_demo_reports_the_real_run(run, cli):
    demo = run.parent
    proc = cli("demo", "--out", str(demo), timeout=300, env={"QWENLONG_JUDGE_URLS": ""})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"phase 2 (phase2): done (final step {STEPS})" in proc.stdout  # the trained run is reused, not retrained
    text = (demo / "report" / "report.md").read_text()
    for heading in ("Data", "Training (stock veRL main_ppo", "Retrospective transition", "Hybrid reward", "Commands"):
        assert heading in text
    for png in ("training.png", "difficulty.png", "rewards.png", "lengths.png"):
        data = (demo / "report" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    result = json.loads((demo / "demo_result.json").read_text())
    assert result["steps"] == {"phase1": STEPS, "phase2": STEPS}
    carry = json.loads((run / "phase2" / "data" / "retrospective.json").read_text())
    assert result["carried"] == carry["carried"] >= 1
    assert all(r["agree"] == r["n"] for r in result["reward_table"]), result["reward_table"]
