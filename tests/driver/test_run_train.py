"""``qwenlong-verl train``: the phase state machine, killed (SIGKILL) at several moments and resumed.

veRL itself is replaced by ``curriculum_launcher.py`` (QWENLONG_VERL_LAUNCHER), which writes what a ``qwenlong``
run writes — the difficulty ledger and veRL-layout FSDP checkpoints — and can SIGKILL its whole process group
(itself and ``train``) at a chosen step. Everything else is real: the recipe, ``prepare`` on synthetic data, the
retrospective carry-over from the ledger, and veRL's own model merger (``python -m verl.model_merger``) handing
each phase's final actor to the next phase.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support import ROOT
from support.standins import make_model_dir
from support.train_runs import launches, run_train

from qwenlong_verl.driver.recipe import load_recipe
from qwenlong_verl.driver.retrospective import read_rows
from qwenlong_verl.driver.run import TrainError, train
from qwenlong_verl.driver.run.state import OutputLock, RunState
from qwenlong_verl.worker.curriculum.ledger import DifficultyLedger

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BATCH = 6
KILLING_MERGER = (
    "import os, signal, sys\n"
    "target = sys.argv[sys.argv.index('--target_dir') + 1]\n"
    "os.makedirs(target, exist_ok=True)\n"
    "open(os.path.join(target, 'model.safetensors'), 'w').write('half written')\n"
    "os.killpg(os.getpgrp(), signal.SIGKILL)\n"
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny local model (config + tokenizer) and 60 synthetic examples of the three tasks."""
    from qwenlong_verl.driver.data.synth import synth

    root = tmp_path_factory.mktemp("train")
    model = make_model_dir(root / "model")
    synth(root / "raw.jsonl", n=60, min_tokens=1500, max_tokens=3500, seed=0)
    return root, model


def write_recipe(folder: Path, workspace, name: str) -> Path:
    """Two phases from the synthetic examples (bins <= 2400 and (2400, 4000] tokens), 4 steps each; phase 2
    task-balanced with a retrospective carry of half its own size."""
    root, model = workspace
    data = {
        "name": name,
        "model_path": str(model),
        "output_dir": str(folder / name),
        "data": {"inputs": [str(root / "raw.jsonl")], "tokenizer": "builtin"},
        "overrides": {
            "trainer.n_gpus_per_node": 1,
            "trainer.save_freq": 2,
            "data.train_batch_size": BATCH,
            "actor_rollout_ref.actor.ppo_mini_batch_size": BATCH,
            "actor_rollout_ref.rollout.n": 2,
            "reward.reward_kwargs.overlong_buffer_cfg.len": 128,  # the ramp must fit the 512-token output budget
        },
        "phases": [
            {
                "name": "p1",
                "max_prompt_length": 2400,
                "max_response_length": 512,
                "total_training_steps": 4,
                "task_balance": True,
            },
            {
                "name": "p2",
                "max_prompt_length": 4000,
                "max_response_length": 512,
                "total_training_steps": 4,
                "task_balance": True,
                "retrospective": {"ratio": 0.5, "seed": 7},
            },
        ],
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def first_tensor_sum(checkpoint_actor: Path) -> float:
    import torch

    state = torch.load(checkpoint_actor / "model_world_size_1_rank_0.pt", weights_only=True)
    return float(state[sorted(state)[0]].float().sum())


def test_killed_at_any_moment_resumes_and_never_repeats_a_phase(workspace):
    root, _ = workspace
    recipe_path = write_recipe(root, workspace, "e2e")
    out = root / "e2e"
    log = root / "e2e-launches.jsonl"
    state_of = lambda: RunState.load(out / "train_state.json")  # noqa: E731
    ledger1 = DifficultyLedger(out / "p1" / "checkpoints" / "difficulty_ledger.jsonl")

    # 1. the node dies during phase 1, after step 3's ledger records, with step 2 the last checkpoint
    r = run_train(recipe_path, STANDIN_LOG=str(log), STANDIN_KILL="p1:3")
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    assert state_of().status("p1") == "training" and ledger1.steps() == [1, 2, 3]
    assert (out / "data" / "phase1.parquet").is_file() and (out / "data" / "stats.json").is_file()

    # 2. rerun: phase 1 resumes from step 2 (ledger cut back, then steps 3-4), then dies while merging
    killing_merger = root / "killing_merger.py"
    killing_merger.write_text(KILLING_MERGER)
    r = run_train(recipe_path, STANDIN_LOG=str(log), QWENLONG_VERL_MERGER=f"{sys.executable} {killing_merger}")
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    runs = launches(log)
    assert [(x["phase"], x["start"]) for x in runs] == [("p1", 0), ("p1", 2)]
    assert state_of().status("p1") == "trained" and state_of().phase("p1")["final_step"] == 4
    records = ledger1.read()
    assert [r.step for r in records] == [s for s in (1, 2, 3, 4) for _ in range(BATCH)]  # each step once, whole
    assert len({(r.step, r.uid) for r in records}) == len(records)
    assert (out / "p1" / "actor_hf.partial").exists() and not (out / "p1" / "actor_hf").exists()

    # 3. rerun: veRL's merger hands phase 1 over; phase 2 builds its data and trains; dies after its last save
    r = run_train(recipe_path, STANDIN_LOG=str(log), STANDIN_KILL="p2:end")
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    merged = out / "p1" / "actor_hf"
    assert (merged / "config.json").is_file() and (merged / "model.safetensors").is_file()
    assert not (out / "p1" / "actor_hf.partial").exists()
    runs = launches(log)
    assert [(x["phase"], x["start"]) for x in runs] == [("p1", 0), ("p1", 2), ("p2", 0)]
    p2 = runs[2]
    assert p2["model"] == str(merged)
    # phase 2 starts from phase 1's final weights (the stand-in adds 1 per step; bf16 after the merge)
    assert p2["checksum"] == pytest.approx(
        first_tensor_sum(out / "p1" / "checkpoints" / "global_step_4" / "actor"), rel=2e-3
    )
    assert p2["checksum"] != pytest.approx(runs[0]["checksum"], rel=0.1)
    assert state_of().status("p1") == "done" and state_of().status("p2") == "training"

    # the retrospective carry-over: phase 2 = its own bin + hard phase-1 examples drawn from phase 1's ledger
    own = read_rows([out / "data" / "phase2.parquet"])
    built = read_rows([out / "p2" / "data" / "train.parquet"])
    report = json.loads((out / "p2" / "data" / "retrospective.json").read_text())
    carried = [r for r in built if r["extra_info"]["phase"] == 1]
    assert len(built) == len(own) + len(carried) == p2["rows"]
    assert len(carried) == report["carried"] == round(0.5 * len(own))
    seen_in_p1 = {r.index for r in records}
    assert {r["extra_info"]["index"] for r in carried} <= seen_in_p1
    assert all((r["extra_info"]["index"] * 7) % 11 != 10 for r in carried)  # solved (mean reward 1.0): dropped
    assert "carried" in r.stdout and "hard example(s)" in r.stdout

    # 4. rerun: phase 2 had saved its final step: not launched again, only merged
    r = run_train(recipe_path, STANDIN_LOG=str(log))
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(launches(log)) == 3
    assert "already saved its final step 4; not launching it again" in r.stdout
    assert state_of().status("p2") == "done" and (out / "p2" / "actor_hf" / "config.json").is_file()
    assert DifficultyLedger(out / "p2" / "checkpoints" / "difficulty_ledger.jsonl").steps() == [1, 2, 3, 4]

    # 5. rerun of a finished recipe: nothing launched, nothing merged
    before = (out / "p2" / "actor_hf" / "model.safetensors").stat().st_mtime_ns
    r = run_train(recipe_path, STANDIN_LOG=str(log))
    assert r.returncode == 0 and len(launches(log)) == 3
    assert "phase 1 (p1): done" in r.stdout and "phase 2 (p2): done" in r.stdout
    assert (out / "p2" / "actor_hf" / "model.safetensors").stat().st_mtime_ns == before

    # 6. --from-phase 2 redoes phase 2 from phase 1's model; its old outputs are moved aside, not deleted
    r = run_train(recipe_path, "--from-phase", "2", STANDIN_LOG=str(log))
    assert r.returncode == 0, r.stdout + r.stderr
    runs = launches(log)
    assert [(x["phase"], x["start"]) for x in runs[3:]] == [("p2", 0)] and runs[3]["model"] == str(merged)
    archived = [p for p in out.iterdir() if p.name.startswith("p2.archived-")]
    assert len(archived) == 1 and (archived[0] / "actor_hf" / "config.json").is_file()
    assert state_of().status("p2") == "done" and state_of().phase("p1")["launches"] == 2


def test_train_dies_its_veRL_child_dies_too(workspace, tmp_path):
    recipe_path = write_recipe(tmp_path, workspace, "orphan")
    marker = tmp_path / "child.pid"
    launcher = tmp_path / "slow_launcher.py"
    launcher.write_text(f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n")
    env = {**os.environ, "QWENLONG_VERL_LAUNCHER": f"{sys.executable} {launcher}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qwenlong_verl.driver.cli", "train", str(recipe_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() or not marker.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, "the launcher never started"
            time.sleep(0.2)
        child = int(marker.read_text())
        os.kill(proc.pid, signal.SIGKILL)  # only `train`, not its group
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(child), "the veRL child outlived `qwenlong-verl train`"
        # and the lock died with it: a new run may start (here: fails later, on the missing checkpoint)
        with OutputLock(tmp_path / "orphan"):
            pass
    finally:
        if proc.poll() is None:
            proc.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def test_launch_failures_name_the_phase_and_what_to_do(workspace, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, workspace, "fails"))
    with pytest.raises(TrainError, match=r"phase 1 \(p1\): veRL exited with code 3; .* rerun .* to resume"):
        train(recipe, launcher=[sys.executable, "-c", "import sys; sys.exit(3)"])
    state = RunState.load(tmp_path / "fails" / "train_state.json")
    assert state.status("p1") == "training" and state.phase("p1")["launches"] == 1
    with pytest.raises(TrainError, match="veRL ended without a checkpoint .* set trainer.save_freq > 0"):
        train(recipe, launcher=[sys.executable, "-c", "pass"])
    assert RunState.load(tmp_path / "fails" / "train_state.json").phase("p1")["launches"] == 2


def test_refusals_before_anything_runs(workspace, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, workspace, "refused"))
    with OutputLock(Path(recipe.output_dir)):
        with pytest.raises(TrainError, match="another `qwenlong-verl train` is running"):
            train(recipe)
    with pytest.raises(TrainError, match=r"--from-phase 2: earlier phase\(s\) p1 are not done"):
        train(recipe, from_phase=2)
    with pytest.raises(TrainError, match=r"--from-phase 3: the recipe has phases 1..2"):
        train(recipe, from_phase=3)
    no_save = load_recipe(write_recipe(tmp_path, workspace, "nosave"))
    no_save.overrides["trainer.save_freq"] = -1
    with pytest.raises(TrainError, match="trainer.save_freq=-1: .* set trainer.save_freq > 0"):
        train(no_save)
    assert not (tmp_path / "nosave" / "train_state.json").exists()


def test_dry_run_of_the_paper_recipe_on_synthetic_data(tmp_path):
    """Acceptance: the QwenLong-L1 recipe as shipped, its data: inputs replaced by synthetic examples (and the
    builtin tokenizer, no hub): every phase's dataset is built and its veRL command printed; nothing launched."""
    from qwenlong_verl.driver.data.synth import synth

    synth(tmp_path / "synthetic.jsonl", n=24, min_tokens=12000, max_tokens=30000, seed=1)
    recipe = yaml.safe_load((ROOT / "qwenlong_verl" / "recipes" / "qwenlong_l1_32b.yaml").read_text())
    recipe["data"].update(inputs=[str(tmp_path / "synthetic.jsonl")], tokenizer="builtin")
    recipe["output_dir"] = str(tmp_path / "out")
    path = tmp_path / "qwenlong_l1_32b.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))

    r = run_train(path, "--dry-run", QWENLONG_VERL_LAUNCHER=None)
    assert r.returncode == 0, r.stdout + r.stderr
    text = r.stdout
    out = tmp_path / "out"
    stats = json.loads((out / "data" / "stats.json").read_text())
    rows = [p["rows"] for p in stats["phase_stats"]]
    assert len(rows) == 2 and all(n > 0 for n in rows) and sum(rows) == 24
    assert len(read_rows([out / "data" / "phase1.parquet"])) == rows[0]
    assert len(read_rows([out / "phase2" / "data" / "train.parquet"])) == rows[1]  # no ledger yet: own bin only
    for number, name in ((1, "phase1"), (2, "phase2")):
        assert f"phase {number} ({name}) — data built, veRL config validated" in text
    commands = [line for line in text.splitlines() if "-m verl.trainer.main_ppo" in line and "--config-name" in line]
    assert len(commands) == 2
    assert all("trainer.v1.trainer_mode=qwenlong" in c and "trainer.resume_mode=auto" in c for c in commands)
    assert "qwenlong.curriculum.phase=phase2" in commands[1] and "qwenlong.curriculum.phase_number=2" in commands[1]
    assert f"actor_rollout_ref.model.path={out / 'phase1' / 'actor_hf'}" in commands[1]
    assert f"data.train_files=[{out / 'phase2' / 'data' / 'train.parquet'}]" in commands[1]
    assert "the carry-over is drawn when phase1 has trained" in text
    assert "make no batch of data.train_batch_size=128" in " ".join(text.split())  # 24 examples: reported, not fatal
    assert not (out / "train_state.json").exists() and not (out / ".train.lock").exists()


def test_state_file_written_by_hand_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "train_state.json"
    path.write_text("{not json")
    with pytest.raises(TrainError, match="is not valid JSON .* edited by hand"):
        RunState.load(path)
    path.write_text(json.dumps({"version": 1, "phases": {"p1": {"status": "finished"}}}))
    with pytest.raises(TrainError, match=r"unknown phase status \{'p1': 'finished'\}"):
        RunState.load(path)
    state = RunState(path)
    state.update("p1", status="training", launches=1)
    assert RunState.load(path).phase("p1") == {"status": "training", "launches": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["train_state.json"]  # no temporary file left


def test_a_folder_in_place_of_the_state_file_is_one_line(tmp_path):
    (tmp_path / "train_state.json").mkdir()
    with pytest.raises(TrainError, match=r"train_state\.json cannot be read \(Is a directory\); fix or delete it"):
        RunState.load(tmp_path / "train_state.json")


def test_changed_source_data_is_prepared_again_only_before_training_started(workspace, tmp_path):
    from qwenlong_verl.driver.run.phase_data import ensure_prepared

    root, _ = workspace
    raw = tmp_path / "raw.jsonl"
    raw.write_text((root / "raw.jsonl").read_text())
    path = write_recipe(tmp_path, workspace, "data")
    spec = yaml.safe_load(path.read_text())
    spec["data"]["inputs"] = [str(raw)]
    path.write_text(yaml.safe_dump(spec))
    recipe = load_recipe(path)
    state = RunState(tmp_path / "state.json")
    lines = []
    ensure_prepared(recipe, state, lines.append, persist=True)
    assert lines[0].startswith("prepare:") and state.data["prepared"]["rows"] == 60
    ensure_prepared(recipe, state, lines.append, persist=True)
    assert len(lines) == 2  # unchanged: not prepared again
    raw.write_text("\n".join(raw.read_text().splitlines()[:50]) + "\n")
    ensure_prepared(recipe, state, lines.append, persist=True)  # no phase started: prepared again
    assert state.data["prepared"]["rows"] == 50 and len(lines) == 4
    raw.write_text("\n".join(raw.read_text().splitlines()[:40]) + "\n")
    state.update("p1", status="training")
    ensure_prepared(recipe, state, lines.append, persist=True)
    assert lines[-1].startswith("warning: data: changed since phase(s) p1 started")
    assert state.data["prepared"]["rows"] == 50


NEVER = [sys.executable, "-c", "import sys; sys.exit(9)"]
"""A launcher that fails at once: a test that reaches it launched a phase."""


@pytest.mark.parametrize(
    "state, message",
    [
        ([], "expected a JSON object, got list"),
        ({"version": 1, "phases": []}, "'phases' must be an object of phase name -> entry, got list"),
        ({"version": 1, "phases": {"p1": "done"}}, "phases.p1 must be an object, got str"),
        ({"version": 1, "phases": {"p1": {}}}, r"unknown phase status \{'p1': None\}"),
        (
            {"version": 1, "phases": {"p1": {"status": "training", "launches": "2"}}},
            "phases.p1.launches must be an integer",
        ),
        ({"version": 1, "phases": {"p1": {"status": "done", "model_out": 3}}}, "phases.p1.model_out must be a string"),
        ({"version": 1, "phases": {}, "prepared": [1]}, "'prepared' must be an object or null"),
        ({"version": 2}, "state version 2"),
    ],
)
def test_state_of_the_wrong_shape_is_one_line_naming_the_key(tmp_path, state, message):
    path = tmp_path / "train_state.json"
    path.write_text(json.dumps(state))
    with pytest.raises(TrainError, match=message) as caught:
        RunState.load(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_a_done_phase_must_still_have_its_output_model(tmp_path):
    path = tmp_path / "train_state.json"
    model = tmp_path / "p1" / "actor_hf"
    done = {"status": "done", "final_step": 4, "model_out": str(model)}
    path.write_text(json.dumps({"version": 1, "phases": {"p1": done, "p2": {"status": "done"}}}))
    with pytest.raises(
        TrainError,
        match=rf"phase 1 \(p1\) is marked done but has no output model: {model} does "
        r"not exist; rerun with `--from-phase 1` to redo it",
    ):
        RunState.load(path, ["p1", "p2"])
    model.mkdir(parents=True)
    with pytest.raises(
        TrainError,
        match=r"phase 2 \(p2\) is marked done but has no model_out; "
        r"rerun with `--from-phase 2`",
    ):
        RunState.load(path, ["p1", "p2"])
    assert RunState.load(path, ["p1"]).status("p2") == "done"  # --from-phase 2 forgets p2: not relied on


def test_train_refuses_a_done_phase_without_outputs_and_from_phase_redoes_it(workspace, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, workspace, "edited"))
    out = Path(recipe.output_dir)
    out.mkdir(parents=True)
    (out / "train_state.json").write_text(
        json.dumps({"version": 1, "phases": {"p1": {"status": "done", "final_step": 4, "model_out": str(out / "p1")}}})
    )
    with pytest.raises(TrainError, match=r"phase 1 \(p1\) is marked done but .* `--from-phase 1`"):
        train(recipe, launcher=NEVER)  # before: phase 2 launched from the missing folder
    assert "launches" not in RunState.load(out / "train_state.json").phase("p2")
    with pytest.raises(TrainError, match=r"phase 1 \(p1\): veRL exited with code 9"):
        train(recipe, from_phase=1, launcher=NEVER)  # the advice works: p1 is redone


def test_an_empty_launcher_variable_is_an_error_not_real_veRL(workspace, tmp_path, monkeypatch):
    recipe = load_recipe(write_recipe(tmp_path, workspace, "emptied"))
    monkeypatch.setenv("QWENLONG_VERL_LAUNCHER", "")
    with pytest.raises(TrainError, match="QWENLONG_VERL_LAUNCHER is set but empty; unset it or name a command"):
        train(recipe)
    assert "launches" not in RunState.load(Path(recipe.output_dir) / "train_state.json").phase("p1")
    monkeypatch.setenv("QWENLONG_VERL_LAUNCHER", "python 'unclosed")
    with pytest.raises(TrainError, match="QWENLONG_VERL_LAUNCHER=.* is not valid shell words"):
        train(recipe)


def test_a_broken_parquet_file_of_a_phase_is_one_line_naming_it(workspace, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, workspace, "broken"))
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    recipe.phases[0].train_files = [str(empty)]  # used as it is: its rows are counted
    with pytest.raises(TrainError) as caught:
        train(recipe, launcher=NEVER)
    assert str(caught.value).startswith(f"phase 1 (p1): {empty}: not a readable parquet file")
    assert "\n" not in str(caught.value)

    # phase 2 builds its file from its own (retrospective: every row read); a dry run reports it and goes on
    bin2 = Path(recipe.output_dir) / "data" / "phase2.parquet"
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(bin2.read_bytes()[: bin2.stat().st_size // 2])
    recipe.phases[0].train_files = []
    recipe.phases[1].train_files = [str(truncated)]
    reports = train(recipe, dry_run=True)
    assert any(f"phase 2 (p2): {truncated}: not a readable parquet file" in note for note in reports[1].notes)
