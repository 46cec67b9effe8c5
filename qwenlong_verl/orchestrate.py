"""``qwenlong-verl train``: run a recipe's phases in order, each as one stock veRL run, resumable at any moment.

For every phase, in order::

    pending ──build data──▶ data_ready ──launch veRL──▶ training ──exit 0, final checkpoint──▶ trained
        ──merge the final actor (veRL's model merger)──▶ done

* **Data.** With a recipe-level ``data:`` section, ``prepare`` writes the length bins once
  (``<output_dir>/data/phase<N>.parquet``). A phase with ``retrospective`` gets its own bin plus hard examples
  drawn from the earlier phases' ledgers (:mod:`~qwenlong_verl.curriculum.retrospective`); a ``val_size``
  hold-out is split off here too. Checked before the launch: enough rows for one batch, and with
  ``task_balance`` a batch size the tasks divide.
* **Launch.** ``python -m verl.trainer.main_ppo`` with the phase's composed overrides (``planning.plan_phase``,
  ``trainer.v1.trainer_mode=qwenlong``) plus ``trainer.resume_mode=auto``. Phase 1 starts from the recipe's
  ``model_path``; phase k+1 from phase k's merged final actor.
* **Merge.** ``python -m verl.model_merger merge --backend fsdp --local_dir <ckpt>/global_step_N/actor
  --target_dir <phase>/actor_hf`` (into a temporary folder, renamed when complete).

The state file (``<output_dir>/train_state.json``, written atomically) records each step's outcome, so a run
killed at any moment resumes with ``qwenlong-verl train RECIPE``: a finished phase is never repeated, an
unfinished one continues from veRL's last checkpoint (veRL's ``resume_mode=auto``; the trainer cuts the ledger
back to that checkpoint), a phase whose veRL run ended but was not recorded is recognised by its final
checkpoint and not launched again, and an interrupted merge is redone. A lock file keeps two ``train`` processes
off one output folder; the veRL child gets SIGKILL if ``train`` itself dies (Linux ``PR_SET_PDEATHSIG``).

The commands are replaceable (tests use stand-ins): ``QWENLONG_VERL_LAUNCHER`` replaces
``python -m verl.trainer.main_ppo`` and ``QWENLONG_VERL_MERGER`` replaces ``python -m verl.model_merger``
(shell words, e.g. ``"python my_launcher.py"``), or pass ``launcher=`` / ``merger=`` to :func:`train`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.curriculum import layout
from qwenlong_verl.planning import PhasePlan, PlanError, plan_phase
from qwenlong_verl.recipe import RecipeConfig

logger = logging.getLogger(__name__)

LAUNCHER_ENV = "QWENLONG_VERL_LAUNCHER"
MERGER_ENV = "QWENLONG_VERL_MERGER"
TRACKER_FILE = "latest_checkpointed_iteration.txt"
"""veRL writes the last saved step here, beside the ``global_step_<N>`` folders."""
LOCK_FILE = ".train.lock"
STATE_VERSION = 1

PENDING, DATA_READY, TRAINING, TRAINED, DONE = "pending", "data_ready", "training", "trained", "done"
STATUSES = (PENDING, DATA_READY, TRAINING, TRAINED, DONE)

Echo = Callable[[str], None]


class TrainError(RuntimeError):
    """A phase could not be built, launched or finished; the message says which and what to do."""


# ----------------------------------------------------------------------------- state


class RunState:
    """``train_state.json``: per phase its status and what it produced; every save is atomic."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None):
        self.path = path
        self.data = data or {"version": STATE_VERSION, "phases": {}, "prepared": None}

    @classmethod
    def load(cls, path: Path) -> RunState:
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise TrainError(
                f"{path} is not valid JSON ({exc}); it is only ever replaced atomically, so it was "
                "edited by hand: fix or delete it (deleting restarts unfinished bookkeeping)"
            ) from None
        if data.get("version") != STATE_VERSION:
            raise TrainError(
                f"{path} has state version {data.get('version')!r}, this qwenlong-verl writes {STATE_VERSION}"
            )
        bad = {n: p.get("status") for n, p in data.get("phases", {}).items() if p.get("status") not in STATUSES}
        if bad:
            raise TrainError(f"{path}: unknown phase status {bad}; statuses are {', '.join(STATUSES)}")
        return cls(path, data)

    def phase(self, name: str) -> dict[str, Any]:
        return self.data["phases"].setdefault(name, {"status": PENDING})

    def status(self, name: str) -> str:
        return self.data["phases"].get(name, {}).get("status", PENDING)

    def update(self, name: str, **values: Any) -> None:
        self.phase(name).update(values)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as handle:
            json.dump(self.data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class OutputLock:
    """An exclusive ``flock`` on ``<output_dir>/.train.lock``; the kernel drops it when the process dies."""

    def __init__(self, output_dir: Path):
        self.path = output_dir / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children (PEP 446)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise TrainError(
                f"another `qwenlong-verl train` is running on {self.path.parent} (it holds {self.path})"
            ) from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)


# ----------------------------------------------------------------------------- reports


@dataclass
class PhaseReport:
    """What ``train`` did (or, in a dry run, would do) for one phase."""

    number: int
    name: str
    status: str
    model_path: str
    train_files: list[str]
    val_files: list[str]
    command: list[str]
    rows: int | None = None
    tasks: dict[str, int] = field(default_factory=dict)
    carry: str = ""
    """The retrospective summary (or why there is none yet)."""
    notes: list[str] = field(default_factory=list)

    @property
    def command_line(self) -> str:
        return " ".join(shlex.quote(part) for part in self.command)


# ----------------------------------------------------------------------------- commands


def command_prefix(env_var: str, explicit: Sequence[str] | str | None, default: Sequence[str]) -> list[str]:
    """An explicit command, else the environment variable's shell words, else ``default``."""
    value = explicit if explicit is not None else os.environ.get(env_var) or None
    if value is None:
        return list(default)
    words = shlex.split(value) if isinstance(value, str) else list(value)
    if not words:
        raise TrainError(f"{env_var} is set but empty; unset it or name a command")
    return words


def veRL_arguments(plan: PhasePlan) -> list[str]:
    """The plan's command without the program that runs it (from ``--config-path=`` on)."""
    for i, part in enumerate(plan.command):
        if part.startswith("--config-path="):
            return plan.command[i:]
    raise TrainError(f"phase {plan.phase.name}: the planned command has no --config-path= ({plan.command_line})")


def launch_argv(recipe: RecipeConfig, plan: PhasePlan, launcher: Sequence[str] | str | None) -> list[str]:
    """What ``train`` runs for a phase: the launcher, veRL's arguments, and (RL) ``trainer.resume_mode=auto``."""
    if recipe.kind == "rl":
        prefix = command_prefix(LAUNCHER_ENV, launcher, [sys.executable, "-m", "verl.trainer.main_ppo"])
        return [*prefix, *veRL_arguments(plan), "trainer.resume_mode=auto"]
    if launcher is None and not os.environ.get(LAUNCHER_ENV):
        return list(plan.command)
    return [*command_prefix(LAUNCHER_ENV, launcher, []), *veRL_arguments(plan)]


def merger_backend(config) -> str:
    strategy = str(config.actor_rollout_ref.actor.strategy)
    if strategy in ("fsdp", "fsdp2"):
        return "fsdp"
    if strategy == "megatron":
        return "megatron"
    raise TrainError(
        f"actor strategy {strategy!r} has no veRL model-merger backend; phases can only hand over fsdp or megatron "
        "checkpoints"
    )


def launch_env(plan: PhasePlan) -> dict[str, str]:
    """The veRL child's environment: ours, plus ``VERL_PLATFORM=cpu`` when the phase runs on the CPU backend."""
    env = dict(os.environ)
    if str(plan.config.trainer.get("device", "cuda")) == "cpu":
        env["VERL_PLATFORM"] = "cpu"
    return env


def _run(argv: Sequence[str], what: str, env: dict[str, str] | None = None) -> int:
    """Run a child with the terminal as its output; it dies with us (SIGKILL on parent death, Linux)."""
    logger.info("%s: %s", what, " ".join(shlex.quote(a) for a in argv))
    try:
        child = subprocess.Popen(
            list(argv), env=env, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None
        )
    except FileNotFoundError as exc:
        raise TrainError(f"{what}: cannot start {argv[0]!r} ({exc})") from None
    try:
        return child.wait()
    except BaseException:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
        raise


def _die_with_parent() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ----------------------------------------------------------------------------- checkpoints


def last_checkpoint_step(checkpoint_dir: Path) -> int | None:
    """The step in veRL's ``latest_checkpointed_iteration.txt`` whose ``global_step_<N>`` folder exists."""
    tracker = checkpoint_dir / TRACKER_FILE
    if not tracker.is_file():
        return None
    text = tracker.read_text().strip()
    if not text.isdigit() or not (checkpoint_dir / f"global_step_{text}").is_dir():
        return None
    return int(text)


def expected_steps(plan: PhasePlan, rows: int | None) -> int | None:
    """The phase's last step as veRL computes it (``None`` when it depends on data veRL may filter)."""
    config = plan.config
    if config.trainer.total_training_steps is not None:
        return int(config.trainer.total_training_steps)
    if rows is None:
        return None
    return rows // int(config.data.train_batch_size) * int(config.trainer.total_epochs)


# ----------------------------------------------------------------------------- data


def _files_fingerprint(paths: Sequence[str]) -> list[list[Any]]:
    out = []
    for p in paths:
        stat = Path(p).stat() if Path(p).exists() else None
        out.append([str(p), stat.st_size if stat else None, int(stat.st_mtime) if stat else None])
    return out


def data_fingerprint(recipe: RecipeConfig) -> str:
    data = recipe.data
    payload = {
        "inputs": _files_fingerprint(data.inputs),
        "synth": dataclasses.asdict(data.synth) if data.synth is not None else None,
        "tokenizer": data.tokenizer,
        "windows": [p.max_prompt_length for p in recipe.phases],
        "kwargs": data.apply_chat_template_kwargs,
        "strict": data.strict,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def ensure_prepared(recipe: RecipeConfig, state: RunState, echo: Echo, persist: bool) -> None:
    """Run ``prepare`` for the recipe's ``data:`` section unless its output is recorded and unchanged."""
    if recipe.data is None or all(p.train_files for p in recipe.phases):
        return
    from qwenlong_verl.data.prepare import PrepareError, phase_file, prepare

    out = layout.prepared_dir(recipe)
    fingerprint = data_fingerprint(recipe)
    recorded = state.data.get("prepared") or {}
    bins = [phase_file(out, n) for n in range(1, len(recipe.phases) + 1)]
    if recorded.get("fingerprint") == fingerprint and all(b.is_file() for b in bins):
        return
    started = [p.name for p in recipe.phases if state.status(p.name) not in (PENDING, DATA_READY)]
    if recorded and started and all(b.is_file() for b in bins):
        echo(
            f"warning: data: changed since phase(s) {', '.join(started)} started; keeping the data prepared then "
            "(start over with --from-phase 1 to rebuild)"
        )
        return
    inputs = source_files(recipe, echo)
    echo(f"prepare: {', '.join(inputs)} -> {out} (tokenizer {recipe.data.tokenizer})")
    try:
        stats = prepare(
            inputs,
            str(out),
            tokenizer=recipe.data.tokenizer,
            phases=[p.max_prompt_length for p in recipe.phases],
            strict=recipe.data.strict,
            apply_chat_template_kwargs=dict(recipe.data.apply_chat_template_kwargs),
        )
    except PrepareError as exc:
        raise TrainError(f"{recipe.source}: data: {exc}") from None
    dropped = sum(stats.dropped.values())
    echo(
        f"prepare: {stats.rows_written} of {stats.rows_read} rows written"
        + (f", {dropped} dropped ({', '.join(f'{k} {v}' for k, v in stats.dropped.items())})" if dropped else "")
        + "; per phase: "
        + ", ".join(f"{p.file} {p.rows}" for p in stats.phase_stats)
    )
    state.data["prepared"] = {"fingerprint": fingerprint, "dir": str(out), "rows": stats.rows_written}
    if persist:
        state.save()


def source_files(recipe: RecipeConfig, echo: Echo) -> list[str]:
    """The data section's input files, plus its synthetic examples (generated here when the file is missing)."""
    data = recipe.data
    files = list(data.inputs)
    if data.synth is None:
        return files
    from qwenlong_verl.data.synth import SynthError, synth

    path = layout.prepared_dir(recipe) / layout.SYNTH_FILE
    if not path.is_file():
        cfg = data.synth
        partial = path.with_name(path.name + ".partial")
        try:
            stats = synth(partial, cfg.n, cfg.min_tokens, cfg.max_tokens, seed=cfg.seed, tasks=cfg.tasks or None)
        except SynthError as exc:
            raise TrainError(f"{recipe.source}: data.synth: {exc}") from None
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
        _fsync_dir(path.parent)
        echo(f"synth: {stats.examples} examples -> {path} ({', '.join(f'{t} {c}' for t, c in stats.tasks.items())})")
    files.append(str(path))
    return files


def phase_ledger_path(plan: PhasePlan) -> Path:
    """The ledger the phase's trainer writes (``qwenlong.curriculum`` of its composed config)."""
    from verl.utils.config import omega_conf_to_dataclass

    from qwenlong_verl.curriculum.config import CurriculumConfig

    cfg = omega_conf_to_dataclass(plan.config.qwenlong.curriculum, CurriculumConfig)
    return Path(cfg.resolved_ledger_path(str(plan.config.trainer.default_local_dir)))


def build_phase_data(
    recipe: RecipeConfig, index: int, plans: Sequence[PhasePlan], earlier_trained: bool = True
) -> dict[str, Any]:
    """Write the phase's files (carry-over, hold-out) when it needs its own; returns what the state records.

    ``earlier_trained``: whether the earlier phases have run (false in a dry run of a fresh recipe, where their
    ledgers cannot exist yet and the carry-over is only announced)."""
    from qwenlong_verl.curriculum import retrospective as retro
    from qwenlong_verl.curriculum.ledger import DifficultyLedger

    phase = recipe.phases[index]
    own_files = layout.own_train_files(recipe, index)
    missing = [f for f in own_files if not Path(f).is_file()]
    if missing:
        raise TrainError(f"phase {index + 1} ({phase.name}): training file(s) not found: {', '.join(missing)}")
    result: dict[str, Any] = {"carry": ""}
    if not layout.builds_phase_data(recipe, index):
        result["rows"] = _row_count(own_files)
        return result
    rows = retro.read_rows(own_files)
    val_rows: list[dict] = []
    if layout.holds_out_validation(recipe, index):
        try:
            rows, val_rows = retro.split_validation(rows, recipe.data.val_size, recipe.data.seed + index)
        except ValueError as exc:
            raise TrainError(f"phase {index + 1} ({phase.name}): {exc}") from None
    out_dir = layout.phase_data_dir(recipe, index)
    if phase.retrospective is not None:
        earlier = []
        for j in range(index):
            ledger = DifficultyLedger(phase_ledger_path(plans[j]))
            earlier.append((recipe.phases[j].name, j + 1, layout.train_files(recipe, j), ledger.read()))
        ledgers_there = any(records for *_, records in earlier)
        try:
            carried, report = retro.carry_over(rows, earlier, phase.retrospective, phase.name, index + 1)
        except (ValueError, FileNotFoundError) as exc:
            raise TrainError(f"phase {index + 1} ({phase.name}): retrospective: {exc}") from None
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / layout.REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        if ledgers_there:
            result["carry"] = report.summary()
        elif earlier_trained:
            result["carry"] = (
                f"warning: {phase.name}: the earlier phases left no ledger records (qwenlong.curriculum.ledger "
                "off?), so nothing is carried over"
            )
        else:
            result["carry"] = (
                f"{phase.name}: no ledger of an earlier phase yet; the carry-over is drawn when "
                f"{recipe.phases[index - 1].name} has trained"
            )
        result["carried"] = report.carried
        rows = [*rows, *carried]
    retro.write_rows(rows, out_dir / layout.TRAIN_FILE, like=own_files)
    if val_rows:
        retro.write_rows(val_rows, out_dir / layout.VAL_FILE, like=own_files)
    result["rows"] = len(rows)
    return result


def _row_count(files: Sequence[str]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def check_phase_data(recipe: RecipeConfig, index: int, plan: PhasePlan) -> tuple[dict[str, int], list[str]]:
    """Task counts of the phase's training files, and what veRL would only find out on the cluster: too few rows
    for one batch, a batch the tasks do not divide, lengths counted with other chat-template arguments."""
    import pyarrow.parquet as pq

    from qwenlong_verl.tasks import task_of

    phase = recipe.phases[index]
    files = layout.train_files(recipe, index)
    rows = []
    for f in files:  # only the label columns: a long-context file is mostly prompt text
        columns = [c for c in ("data_source", "extra_info") if c in pq.read_schema(f).names]
        rows.extend(pq.read_table(f, columns=columns).to_pylist())
    tasks = [
        task_of(r.get("data_source"), r.get("extra_info") if isinstance(r.get("extra_info"), dict) else None)
        for r in rows
    ]
    counts = {t: tasks.count(t) for t in sorted(set(tasks))}
    problems = []
    batch = int(plan.config.data.train_batch_size)
    if len(rows) < batch:
        problems.append(
            f"phase {index + 1} ({phase.name}): {len(rows)} training rows in {', '.join(files)} make no batch of "
            f"data.train_batch_size={batch}; add data or lower the batch size"
        )
    if plan.config.qwenlong.curriculum.task_balance and rows:
        from qwenlong_verl.curriculum.task_balance import TaskBalancedSampler

        try:
            TaskBalancedSampler(tasks, batch)
        except ValueError as exc:
            problems.append(f"phase {index + 1} ({phase.name}): {exc}")
    if recipe.data is not None:
        wanted = dict(recipe.data.apply_chat_template_kwargs)
        have = plan.config.data.get("apply_chat_template_kwargs") or {}
        from omegaconf import OmegaConf

        have = OmegaConf.to_container(have) if not isinstance(have, dict) else have
        if wanted != dict(have):
            problems.append(
                f"phase {index + 1} ({phase.name}): data.apply_chat_template_kwargs of the recipe's data: section ({wanted}) and of "
                f"the veRL config ({have}) differ, so prepare counted other lengths than veRL sees; make them equal"
            )
    return counts, problems


# ----------------------------------------------------------------------------- the run


def plan_all(recipe: RecipeConfig, state: RunState) -> list[PhasePlan]:
    """Every phase composed and validated up front (a typo in the last phase fails before the first starts)."""
    plans = []
    for i in range(len(recipe.phases)):
        model = layout.start_model_path(recipe) if i == 0 else _start_model(recipe, i, state)
        try:
            plan = plan_phase(recipe, i, model_path=model)
        except PlanError as exc:
            raise TrainError(str(exc)) from None
        trainer = plan.config.trainer
        where = f"{recipe.source}: phase {i + 1} ({recipe.phases[i].name})"
        if not trainer.save_freq or trainer.save_freq <= 0:
            raise TrainError(
                f"{where}: trainer.save_freq={trainer.save_freq}: `train` resumes from and hands over veRL "
                "checkpoints, so set trainer.save_freq > 0 (e.g. 10)"
            )
        if recipe.kind == "rl" and plan.config.actor_rollout_ref.actor.checkpoint.get("async_save", False):
            raise TrainError(
                f"{where}: actor checkpoint.async_save=true makes veRL skip {TRACKER_FILE}, which resuming and the "
                "hand-over read; turn it off"
            )
        plans.append(plan)
    return plans


def _start_model(recipe: RecipeConfig, index: int, state: RunState) -> str:
    if index == 0:
        return layout.start_model_path(recipe)
    previous = recipe.phases[index - 1].name
    return state.data["phases"].get(previous, {}).get("model_out") or str(_output_model_path(recipe, index - 1))


def _output_model_path(recipe: RecipeConfig, index: int) -> Path:
    if recipe.kind == "sft":
        from qwenlong_verl.sft.planning import finished_model_path

        return finished_model_path(recipe, index)
    return layout.merged_model_dir(recipe, index)


def _fingerprint(plan: PhasePlan) -> str:
    return hashlib.sha256("\n".join(plan.overrides).encode()).hexdigest()[:16]


def archive_from(recipe: RecipeConfig, state: RunState, start: int, echo: Echo) -> None:
    """``--from-phase K``: move phases K.. aside (never deleted) and forget their state."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(start, len(recipe.phases)):
        name = recipe.phases[i].name
        folder = layout.phase_dir(recipe, i)
        if folder.exists():
            target = folder.with_name(f"{folder.name}.archived-{stamp}")
            folder.rename(target)
            echo(f"{name}: previous outputs moved to {target}")
        state.data["phases"].pop(name, None)
    state.save()


def train(
    recipe: RecipeConfig,
    dry_run: bool = False,
    from_phase: int | None = None,
    launcher: Sequence[str] | str | None = None,
    merger: Sequence[str] | str | None = None,
    echo: Echo | None = None,
) -> list[PhaseReport]:
    """Run (or with ``dry_run`` only plan and build the data of) the recipe's phases; see the module docstring.

    ``from_phase`` (1-based) starts phase K afresh: phases before it must be done; phases K.. are archived first.
    """
    echo = echo or (lambda line: logger.info("%s", line))
    output_dir = Path(recipe.output_dir)
    count = len(recipe.phases)
    start = 0
    if from_phase is not None:
        if not 1 <= from_phase <= count:
            raise TrainError(f"--from-phase {from_phase}: the recipe has phases 1..{count}")
        start = from_phase - 1
    if dry_run:
        return _run_phases(recipe, RunState.load(layout.state_file(recipe)), start, None, None, echo, dry_run=True)
    with OutputLock(output_dir):
        state = RunState.load(layout.state_file(recipe))
        if from_phase is not None:
            not_done = [recipe.phases[i].name for i in range(start) if state.status(recipe.phases[i].name) != DONE]
            if not_done:
                raise TrainError(
                    f"--from-phase {from_phase}: earlier phase(s) {', '.join(not_done)} are not done; run without "
                    "--from-phase to continue them"
                )
            archive_from(recipe, state, start, echo)
        return _run_phases(recipe, state, start, launcher, merger, echo, dry_run=False)


def ensure_tiny_model(recipe: RecipeConfig, echo: Echo) -> None:
    """Write the tiny model a ``model_path: tiny | tiny-answers`` recipe starts from, once."""
    if recipe.model_path not in layout.TINY_MODELS:
        return
    target = layout.tiny_model_dir(recipe)
    if (target / "config.json").is_file():
        return
    from qwenlong_verl.data.tiny_model import write_tiny_model

    write_tiny_model(target, seed=0, answers=layout.TINY_MODELS[recipe.model_path])
    echo(f"model: wrote the {recipe.model_path} model (seed 0) to {target}")


def _run_phases(recipe, state, start, launcher, merger, echo, dry_run) -> list[PhaseReport]:
    plans = plan_all(recipe, state)
    if not dry_run:
        ensure_tiny_model(recipe, echo)
    ensure_prepared(recipe, state, echo, persist=not dry_run)
    reports = []
    for i in range(start, len(recipe.phases)):
        reports.append(_phase(recipe, i, plans, state, launcher, merger, echo, dry_run))
    if not dry_run:
        final = state.phase(recipe.phases[-1].name).get("model_out")
        echo(f"recipe {recipe.name}: all {len(recipe.phases)} phase(s) done; final model {final}")
    return reports


def _phase(recipe, i, plans, state, launcher, merger, echo, dry_run) -> PhaseReport:
    """One phase through the state machine (a dry run stops after the data)."""
    phase, plan = recipe.phases[i], plans[i]
    where = f"phase {i + 1} ({phase.name})"
    st = state.phase(phase.name)
    report = PhaseReport(
        number=i + 1,
        name=phase.name,
        status=st["status"],
        model_path=str(plan.config.actor_rollout_ref.model.path if recipe.kind == "rl" else recipe.model_path),
        train_files=list(layout.train_files(recipe, i)) if recipe.kind == "rl" else list(phase.train_files),
        val_files=list(layout.val_files(recipe, i)) if recipe.kind == "rl" else list(phase.val_files),
        command=launch_argv(recipe, plan, launcher),
        notes=list(plan.notes),
        rows=st.get("rows"),
        carry=st.get("carry", ""),
    )
    if st["status"] == DONE:
        if st.get("fingerprint") not in (None, _fingerprint(plan)):
            echo(f"warning: {where} is done but its settings changed since; use --from-phase {i + 1} to redo it")
        echo(f"{where}: done (final step {st.get('final_step')}); model {st.get('model_out')}")
        return report
    if recipe.kind == "rl" and st["status"] in (PENDING, DATA_READY):
        try:
            _phase_data(recipe, i, plans, state, report, echo, dry_run)
        except TrainError as exc:
            if not dry_run:
                raise
            report.notes.append(f"warning: {exc}")  # a dry run reports every phase's problems and goes on
    if dry_run:
        return report
    if state.status(phase.name) not in (TRAINED, DONE):
        _train_phase(recipe, plan, state, report, where, echo)
    final = int(state.phase(phase.name)["final_step"])
    if recipe.kind == "rl":
        target = layout.merged_model_dir(recipe, i)
        checkpoint = Path(plan.config.trainer.default_local_dir) / f"global_step_{final}" / "actor"
        _merge(plan, checkpoint, target, merger, where, echo)
        model_out = str(target)
    else:
        try:
            model_out = str(_output_model_path(recipe, i))
        except FileNotFoundError as exc:
            raise TrainError(f"{where}: {exc}") from None
    state.update(phase.name, status=DONE, model_out=model_out)
    report.status = DONE
    echo(f"{where}: done at step {final}; model {model_out}")
    return report


def _phase_data(recipe, i, plans, state, report: PhaseReport, echo: Echo, dry_run: bool) -> None:
    """Build the phase's files and check them against its veRL config; record ``data_ready``."""
    earlier_trained = all(state.status(p.name) == DONE for p in recipe.phases[:i])
    built = build_phase_data(recipe, i, plans, earlier_trained)
    report.rows, report.carry = built["rows"], built["carry"]
    if built["carry"] and not dry_run:
        echo(built["carry"])
    try:
        report.tasks, problems = check_phase_data(recipe, i, plans[i])
    except FileNotFoundError as exc:
        raise TrainError(f"phase {i + 1} ({recipe.phases[i].name}): {exc}") from None
    if problems:
        raise TrainError("; ".join(problems))
    if not dry_run:
        state.update(
            recipe.phases[i].name,
            status=DATA_READY,
            rows=built["rows"],
            carry=built["carry"],
            train_files=report.train_files,
            val_files=report.val_files,
        )


def _train_phase(recipe, plan: PhasePlan, state: RunState, report: PhaseReport, where: str, echo: Echo) -> None:
    """Launch veRL unless its final checkpoint is already there; then record ``trained`` at that step."""
    name = plan.phase.name
    st = state.phase(name)
    checkpoints = Path(plan.config.trainer.default_local_dir)
    total = expected_steps(plan, report.rows)
    saved = last_checkpoint_step(checkpoints)
    if saved is not None and total is not None and saved >= total:
        echo(f"{where}: veRL already saved its final step {saved}; not launching it again")
    else:
        if st["status"] == TRAINING:
            echo(f"{where}: resuming from veRL's last checkpoint (step {saved or 0})")
            if st.get("fingerprint") not in (None, _fingerprint(plan)):
                echo(f"warning: {where}: its settings changed since it started; continuing with the new ones")
        launches = int(st.get("launches", 0)) + 1
        state.update(
            name, status=TRAINING, fingerprint=_fingerprint(plan), launches=launches, model_in=report.model_path
        )
        echo(f"{where}: launching veRL (attempt {launches})")
        if recipe.kind == "rl" and report.command[1:3] == ["-m", "verl.trainer.main_ppo"]:
            from qwenlong_verl.planning import launch_problem  # veRL starts Ray here (a launcher may go elsewhere)

            problem = launch_problem(plan.config)
            if problem:
                raise TrainError(f"{where}: {problem}")
        code = _run(report.command, f"{where} training", env=launch_env(plan))
        if code != 0:
            raise TrainError(
                f"{where}: veRL exited with code {code}; fix the cause and rerun `qwenlong-verl train "
                f"{recipe.source}` to resume from its last checkpoint"
            )
    final = last_checkpoint_step(checkpoints)
    if final is None:
        raise TrainError(
            f"{where}: veRL ended without a checkpoint in {checkpoints} ({TRACKER_FILE}); the next phase starts from "
            "this phase's final checkpoint, so set trainer.save_freq > 0"
        )
    if total is not None and final < total:
        raise TrainError(f"{where}: veRL ended at step {final}, before the phase's last step {total}; rerun to resume")
    state.update(name, status=TRAINED, final_step=final)


def _merge(plan: PhasePlan, actor_dir: Path, target: Path, merger, where: str, echo: Echo) -> None:
    """veRL's model merger into ``target`` (via a temporary folder, renamed when complete)."""
    if (target / "config.json").is_file():
        return
    if not actor_dir.is_dir():
        raise TrainError(f"{where}: final actor checkpoint {actor_dir} not found")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    if target.exists():
        shutil.rmtree(target)
    argv = [
        *command_prefix(MERGER_ENV, merger, [sys.executable, "-m", "verl.model_merger"]),
        "merge",
        "--backend",
        merger_backend(plan.config),
        "--local_dir",
        str(actor_dir),
        "--target_dir",
        str(partial),
    ]
    echo(f"{where}: merging the final actor into {target}")
    code = _run(argv, f"{where} merge", env=launch_env(plan))
    if code != 0 or not (partial / "config.json").is_file():
        raise TrainError(f"{where}: model merger failed (exit {code}); rerun to retry: {shlex.join(argv)}")
    partial.rename(target)
