"""``qwenlong-verl train``: run a recipe's phases in order, each as one stock veRL run, resumable at any moment.

For every phase, in order::

    pending ──build data──▶ data_ready ──launch veRL──▶ training ──exit 0, final checkpoint──▶ trained
        ──hand over the model (RL: veRL's model merger)──▶ done

and for a merge step (``kind: merge``)::

    pending ──run the merge (python -m qwenlong_verl.driver.merge)──▶ merging ──its folder complete──▶ done

* **Data.** With a recipe-level ``data:`` section, ``prepare`` writes the length bins once
  (``<output_dir>/data/phase<N>.parquet``). A phase with ``retrospective`` gets its own bin plus hard examples
  drawn from the earlier phases' ledgers (:mod:`~qwenlong_verl.driver.retrospective`); a ``val_size`` hold-out is
  split off here too (:mod:`~qwenlong_verl.driver.run.phase_data`). Checked before the launch: enough rows for
  one batch, and with ``task_balance`` a batch size the tasks divide.
* **Launch.** The phase kind's program (``python -m verl.trainer.main_ppo`` for RL) with the planned arguments,
  plus the kind's resume arguments (``trainer.resume_mode=auto``). Phase 1 starts from the recipe's
  ``model_path``; phase k+1 from phase k's output model.
* **Hand-over.** RL: ``python -m verl.model_merger merge --backend fsdp --local_dir <ckpt>/global_step_N/actor
  --target_dir <phase>/actor_hf`` (into a temporary folder, renamed when complete); SFT: the checkpoint's own
  Hugging Face folder.
* **Merge steps.** The models of the phases it names, merged into ``<step>/actor_hf`` (the next phase's model) by
  one child that writes the folder whole or not at all; a complete folder is never merged again.

The state file (``<output_dir>/train_state.json``, written atomically) records each step's outcome, so a run
killed at any moment resumes with ``qwenlong-verl train RECIPE``: a finished phase is never repeated, an
unfinished one continues from veRL's last checkpoint (veRL's ``resume_mode=auto``; the trainer cuts the ledger
back to that checkpoint), a phase whose veRL run ended but was not recorded is recognised by its final
checkpoint and not launched again, and an interrupted merge (hand-over or merge step) is redone. A lock file keeps
two ``train`` processes off one output folder; the veRL child gets SIGKILL if ``train`` itself dies (Linux
``PR_SET_PDEATHSIG``).

The commands are replaceable (tests use stand-ins): ``QWENLONG_VERL_LAUNCHER`` replaces the program of a phase
that trains, ``QWENLONG_VERL_MERGER`` replaces ``python -m verl.model_merger`` and ``QWENLONG_VERL_MERGE_STEP``
replaces ``python -m qwenlong_verl.driver.merge`` (shell words, e.g. ``"python my_launcher.py"``), or pass
``launcher=`` / ``merger=`` to :func:`train`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qwenlong_verl.driver import layout
from qwenlong_verl.driver.kinds import kind_of
from qwenlong_verl.driver.plan import PhasePlan, PlanError, plan_phase
from qwenlong_verl.driver.recipe import RecipeConfig
from qwenlong_verl.driver.run import phase_data
from qwenlong_verl.driver.run.process import (
    LAUNCHER_ENV,
    MERGE_STEP_ENV,
    Echo,
    command_prefix,
    launch_env,
    merge_model,
    run_child,
)
from qwenlong_verl.driver.run.state import (
    DATA_READY,
    DONE,
    MERGING,
    PENDING,
    TRAINED,
    TRAINING,
    OutputLock,
    RunState,
    TrainError,
)

logger = logging.getLogger(__name__)


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
    checked: str = "veRL config validated"
    """What planning checked (the kind's words)."""

    @property
    def command_line(self) -> str:
        return " ".join(shlex.quote(part) for part in self.command)


def launch_argv(plan: PhasePlan, launcher: Sequence[str] | str | None) -> list[str]:
    """What ``train`` runs for a phase: the launcher (else the kind's program), veRL's arguments, resume arguments;
    for a merge step its program (or ``QWENLONG_VERL_MERGE_STEP``) and arguments.

    The kind's program names ``python`` for ``plan`` to print; here that is this interpreter, whose environment
    has veRL and this package."""
    default = [sys.executable if word == "python" else word for word in plan.program]
    prefix = (
        command_prefix(LAUNCHER_ENV, launcher, default)
        if plan.kind.trains
        else command_prefix(MERGE_STEP_ENV, None, default)
    )
    return [*prefix, *plan.args, *plan.kind.resume_args()]


def uses_default_launcher(launcher: Sequence[str] | str | None) -> bool:
    return launcher is None and not os.environ.get(LAUNCHER_ENV)


def last_checkpoint_step(checkpoint_dir: Path) -> int | None:
    """The step in veRL's ``latest_checkpointed_iteration.txt`` whose ``global_step_<N>`` folder exists."""
    tracker = checkpoint_dir / layout.TRACKER_FILE
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


def plan_all(recipe: RecipeConfig, state: RunState) -> list[PhasePlan]:
    """Every phase composed and validated up front (a typo in the last phase fails before the first starts)."""
    plans = []
    for i in range(len(recipe.phases)):
        try:
            plan = plan_phase(
                recipe, i, model_path=start_model(recipe, i, state), output_of=lambda j: phase_output(recipe, j, state)
            )
        except PlanError as exc:
            raise TrainError(str(exc)) from None
        problems = plan.kind.train_problems(plan.config)
        if problems:
            raise TrainError(f"{recipe.source}: phase {i + 1} ({recipe.phases[i].name}): {'; '.join(problems)}")
        plans.append(plan)
    return plans


def start_model(recipe: RecipeConfig, index: int, state: RunState) -> str:
    """The model phase ``index`` starts from: the recipe's, else the previous phase's recorded (or future) output."""
    if index == 0:
        return layout.start_model_path(recipe)
    return phase_output(recipe, index - 1, state)


def phase_output(recipe: RecipeConfig, index: int, state: RunState) -> str:
    """Phase ``index``'s output model: as recorded when it finished, else where it will write it."""
    recorded = state.data["phases"].get(recipe.phases[index].name, {}).get("model_out")
    return recorded or str(kind_of(recipe, index).output_model_path(recipe, index))


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
    count = len(recipe.phases)
    start = 0
    if from_phase is not None:
        if not 1 <= from_phase <= count:
            raise TrainError(f"--from-phase {from_phase}: the recipe has phases 1..{count}")
        start = from_phase - 1
    relied_on = [p.name for p in (recipe.phases[:start] if from_phase else recipe.phases)]  # outputs this run uses
    if dry_run:
        state = RunState.load(layout.state_file(recipe), relied_on)
        return Run(recipe, state, launcher, merger, echo, dry_run=True).phases_from(start)
    with OutputLock(Path(recipe.output_dir)):
        state = RunState.load(layout.state_file(recipe), relied_on)
        if from_phase is not None:
            not_done = [recipe.phases[i].name for i in range(start) if state.status(recipe.phases[i].name) != DONE]
            if not_done:
                raise TrainError(
                    f"--from-phase {from_phase}: earlier phase(s) {', '.join(not_done)} are not done; run without "
                    "--from-phase to continue them"
                )
            archive_from(recipe, state, start, echo)
        return Run(recipe, state, launcher, merger, echo, dry_run=False).phases_from(start)


@dataclass
class Run:
    """One ``train`` invocation: the recipe, its state and how to launch; walks each phase through its states."""

    recipe: RecipeConfig
    state: RunState
    launcher: Sequence[str] | str | None
    merger: Sequence[str] | str | None
    echo: Echo
    dry_run: bool
    plans: list[PhasePlan] = field(default_factory=list)

    def phases_from(self, start: int) -> list[PhaseReport]:
        recipe = self.recipe
        self.plans = plan_all(recipe, self.state)
        if not self.dry_run:
            phase_data.ensure_tiny_model(recipe, self.echo)
        phase_data.ensure_prepared(recipe, self.state, self.echo, persist=not self.dry_run)
        reports = [self.phase(i) for i in range(start, len(recipe.phases))]
        if not self.dry_run:
            final = self.state.phase(recipe.phases[-1].name).get("model_out")
            self.echo(f"recipe {recipe.name}: all {len(recipe.phases)} phase(s) done; final model {final}")
        return reports

    def phase(self, i: int) -> PhaseReport:
        """One phase through the state machine (a dry run stops after the data)."""
        recipe, plan, state, echo = self.recipe, self.plans[i], self.state, self.echo
        phase, kind = recipe.phases[i], plan.kind
        where = f"phase {i + 1} ({phase.name})"
        st = state.phase(phase.name)
        train_files, val_files = kind.data_files(recipe, i)
        report = PhaseReport(
            number=i + 1,
            name=phase.name,
            status=st["status"],
            model_path=kind.model_path(recipe, plan.config),
            train_files=train_files,
            val_files=val_files,
            command=launch_argv(plan, self.launcher),
            notes=list(plan.notes),
            checked=kind.checked,
            rows=st.get("rows"),
            carry=st.get("carry", ""),
        )
        if st["status"] == DONE:
            if st.get("fingerprint") not in (None, _fingerprint(plan)):
                echo(f"warning: {where} is done but its settings changed since; use --from-phase {i + 1} to redo it")
            at = f" (final step {st['final_step']})" if "final_step" in st else ""
            echo(f"{where}: done{at}; model {st.get('model_out')}")
            return report
        if kind.builds_data(recipe) and st["status"] in (PENDING, DATA_READY):
            try:
                self.phase_data(i, report)
            except TrainError as exc:
                if not self.dry_run:
                    raise
                report.notes.append(f"warning: {exc}")  # a dry run reports every phase's problems and goes on
        if self.dry_run:
            return report
        if not kind.trains:
            self.merge_step(plan, report, where)
            return report
        if state.status(phase.name) not in (TRAINED, DONE):
            self.train_phase(plan, report, where)
        final = int(state.phase(phase.name)["final_step"])
        model_out = self.hand_over(i, final, where)
        state.update(phase.name, status=DONE, model_out=model_out)
        report.status = DONE
        echo(f"{where}: done at step {final}; model {model_out}")
        return report

    def merge_step(self, plan: PhasePlan, report: PhaseReport, where: str) -> None:
        """Run the merge unless its folder is complete (a merge that finished is never redone); record ``done``."""
        state, name = self.state, plan.phase.name
        spec = plan.config
        target = plan.kind.output_model_path(self.recipe, plan.index)
        if (target / "config.json").is_file():
            self.echo(f"{where}: {target} is complete; not merging again")
        else:
            launches = int(state.phase(name).get("launches", 0)) + 1
            state.update(
                name,
                status=MERGING,
                fingerprint=_fingerprint(plan),
                launches=launches,
                inputs=[spec.base, *spec.models],
            )
            self.echo(f"{where}: merging {', '.join(spec.models)} on {spec.base} by {spec.method} into {target}")
            code = run_child(report.command, f"{where} merge")
            if code != 0 or not (target / "config.json").is_file():
                raise TrainError(
                    f"{where}: the merge failed (exit {code}); fix the cause and rerun `qwenlong-verl train "
                    f"{self.recipe.source}` to merge again"
                )
        state.update(name, status=DONE, model_out=str(target))
        report.status = DONE
        self.echo(f"{where}: done; model {target}")

    def phase_data(self, i: int, report: PhaseReport) -> None:
        """Build the phase's files and check them against its veRL config; record ``data_ready``."""
        recipe, state = self.recipe, self.state
        earlier_trained = all(state.status(p.name) == DONE for p in recipe.phases[:i])
        built = phase_data.build_phase_data(recipe, i, self.plans, earlier_trained)
        report.rows, report.carry = built["rows"], built["carry"]
        if built["carry"] and not self.dry_run:
            self.echo(built["carry"])
        try:
            report.tasks, problems = phase_data.check_phase_data(recipe, i, self.plans[i])
        except FileNotFoundError as exc:
            raise TrainError(f"phase {i + 1} ({recipe.phases[i].name}): {exc}") from None
        if problems:
            raise TrainError("; ".join(problems))
        if not self.dry_run:
            state.update(
                recipe.phases[i].name,
                status=DATA_READY,
                rows=built["rows"],
                carry=built["carry"],
                train_files=report.train_files,
                val_files=report.val_files,
            )

    def train_phase(self, plan: PhasePlan, report: PhaseReport, where: str) -> None:
        """Launch veRL unless its final checkpoint is already there; then record ``trained`` at that step."""
        state, echo = self.state, self.echo
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
            if uses_default_launcher(self.launcher):  # veRL starts Ray here (a launcher may go elsewhere)
                problem = plan.kind.preflight(plan.config)
                if problem:
                    raise TrainError(f"{where}: {problem}")
            code = run_child(report.command, f"{where} training", env=launch_env(plan.config))
            if code != 0:
                raise TrainError(
                    f"{where}: veRL exited with code {code}; fix the cause and rerun `qwenlong-verl train "
                    f"{self.recipe.source}` to resume from its last checkpoint"
                )
        final = last_checkpoint_step(checkpoints)
        if final is None:
            raise TrainError(
                f"{where}: veRL ended without a checkpoint in {checkpoints} ({layout.TRACKER_FILE}); the next phase "
                "starts from this phase's final checkpoint, so set trainer.save_freq > 0"
            )
        if total is not None and final < total:
            raise TrainError(
                f"{where}: veRL ended at step {final}, before the phase's last step {total}; rerun to resume"
            )
        state.update(name, status=TRAINED, final_step=final)

    def hand_over(self, i: int, final: int, where: str) -> str:
        """The phase's output model: merged from its final checkpoint when the kind says so, else located."""
        plan = self.plans[i]
        source = plan.kind.merge_source(plan.config, final)
        try:
            target = plan.kind.output_model_path(self.recipe, i)
        except FileNotFoundError as exc:
            raise TrainError(f"{where}: {exc}") from None
        if source is not None:
            merge_model(plan.config, source, target, self.merger, where, self.echo)
        return str(target)
