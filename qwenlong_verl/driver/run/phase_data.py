"""The data side of ``train``: prepare the length bins once, build each phase's files, check them before launch."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import atomic_folder, refuse_overwriting, write_with
from qwenlong_verl.driver import layout
from qwenlong_verl.driver.plan import PhasePlan
from qwenlong_verl.driver.recipe import RecipeConfig
from qwenlong_verl.driver.run.state import DATA_READY, PENDING, RunState, TrainError

Echo = Callable[[str], None]


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
        "windows": recipe.data_cuts(),
        "kwargs": data.apply_chat_template_kwargs,
        "strict": data.strict,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def ensure_prepared(recipe: RecipeConfig, state: RunState, echo: Echo, persist: bool) -> None:
    """Run ``prepare`` for the recipe's ``data:`` section unless its output is recorded and unchanged."""
    if recipe.data is None or all(recipe.phases[i].train_files for i in recipe.data_phases()):
        return
    from qwenlong_verl.driver.data.prepare import PrepareError, phase_file, prepare

    out = layout.prepared_dir(recipe)
    fingerprint = data_fingerprint(recipe)
    recorded = state.data.get("prepared") or {}
    cuts = recipe.data_cuts()
    bins = [phase_file(out, n) for n in range(1, len(cuts) + 1)]
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
            phases=cuts,
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
    from qwenlong_verl.driver.data.synth import SynthError, synth

    path = layout.prepared_dir(recipe) / layout.SYNTH_FILE
    if not path.is_file():
        cfg = data.synth
        try:
            stats = write_with(  # a killed synth leaves no file, so the next run generates it again
                path,
                lambda tmp: synth(tmp, cfg.n, cfg.min_tokens, cfg.max_tokens, seed=cfg.seed, **cfg.synth_kwargs()),
            )
        except SynthError as exc:
            raise TrainError(f"{recipe.source}: data.synth: {exc}") from None
        echo(f"synth: {stats.examples} examples -> {path} ({', '.join(f'{t} {c}' for t, c in stats.tasks.items())})")
    files.append(str(path))
    return files


def phase_ledger_path(plan: PhasePlan) -> Path:
    """The ledger the phase's trainer writes (``qwenlong.curriculum`` of its composed config)."""
    from verl.utils.config import omega_conf_to_dataclass

    from qwenlong_verl.worker.curriculum.config import CurriculumConfig

    cfg = omega_conf_to_dataclass(plan.config.qwenlong.curriculum, CurriculumConfig)
    return Path(cfg.resolved_ledger_path(str(plan.config.trainer.default_local_dir)))


def build_phase_data(
    recipe: RecipeConfig, index: int, plans: Sequence[PhasePlan], earlier_trained: bool = True
) -> dict[str, Any]:
    """Write the phase's files (carry-over, hold-out) when it needs its own; returns what the state records.

    ``earlier_trained``: whether the earlier phases have run (false in a dry run of a fresh recipe, where their
    ledgers cannot exist yet and the carry-over is only announced)."""
    from qwenlong_verl.driver import retrospective as retro
    from qwenlong_verl.worker.curriculum.ledger import DifficultyLedger

    phase = recipe.phases[index]
    own_files = layout.own_train_files(recipe, index)
    missing = [f for f in own_files if not Path(f).is_file()]
    if missing:
        raise TrainError(f"phase {index + 1} ({phase.name}): training file(s) not found: {', '.join(missing)}")
    result: dict[str, Any] = {"carry": ""}
    if not layout.builds_phase_data(recipe, index):
        with _reading_phase(recipe, index):
            result["rows"] = sum(retro.count_rows(f) for f in own_files)
        return result
    with _reading_phase(recipe, index):
        rows = retro.read_rows(own_files)
    val_rows: list[dict] = []
    if layout.holds_out_validation(recipe, index):
        try:
            rows, val_rows = retro.split_validation(rows, recipe.data.val_size, recipe.data.seed + index)
        except ValueError as exc:
            raise TrainError(f"phase {index + 1} ({phase.name}): {exc}") from None
    out_dir = layout.phase_data_dir(recipe, index)
    try:
        refuse_overwriting(out_dir, own_files, flag=f"phase {index + 1} ({phase.name}) data folder")
    except InputError as exc:
        raise TrainError(str(exc)) from None
    report = None
    if phase.retrospective is not None:
        earlier = []
        for j in recipe.carry_sources(index):
            ledger = DifficultyLedger(phase_ledger_path(plans[j]))
            earlier.append((recipe.phases[j].name, j + 1, layout.train_files(recipe, j), ledger.read()))
        ledgers_there = any(records for *_, records in earlier)
        try:
            carried, report = retro.carry_over(rows, earlier, phase.retrospective, phase.name, index + 1)
        except (ValueError, FileNotFoundError) as exc:
            raise TrainError(f"phase {index + 1} ({phase.name}): retrospective: {exc}") from None
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
                f"{recipe.phases[recipe.carry_sources(index)[-1]].name} has trained"
            )
        result["carried"] = report.carried
        rows = [*rows, *carried]
    with atomic_folder(out_dir) as new:  # train, val and the carry-over report of one build, never mixed
        if report is not None:
            (new / layout.REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        retro.write_rows(rows, new / layout.TRAIN_FILE, like=own_files)
        if val_rows:
            retro.write_rows(val_rows, new / layout.VAL_FILE, like=own_files)
    result["rows"] = len(rows)
    return result


@contextmanager
def _reading_phase(recipe: RecipeConfig, index: int) -> Iterator[None]:
    """A broken parquet file of a phase: one line naming the phase and the file (a dry run reports it and goes on)."""
    from qwenlong_verl.driver.retrospective import DataFileError

    try:
        yield
    except DataFileError as exc:
        raise TrainError(f"phase {index + 1} ({recipe.phases[index].name}): {exc}") from None


def check_phase_data(recipe: RecipeConfig, index: int, plan: PhasePlan) -> tuple[dict[str, int], list[str]]:
    """Rows per task label of the phase's training files, and what veRL would only find out on the cluster: too few
    rows for one batch, a batch the task labels do not divide, lengths counted with other chat-template arguments."""
    from qwenlong_verl.common.tasks import task_label_of
    from qwenlong_verl.driver.retrospective import read_table

    phase = recipe.phases[index]
    files = layout.train_files(recipe, index)
    rows = []
    for f in files:  # only the label columns: a long-context file is mostly prompt text
        if not Path(f).is_file():
            raise FileNotFoundError(f"training file not found: {f}")
        with _reading_phase(recipe, index):
            rows.extend(read_table(f, columns=("data_source", "extra_info")).to_pylist())
    tasks = [
        task_label_of(r.get("data_source"), r.get("extra_info") if isinstance(r.get("extra_info"), dict) else None)
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
        from qwenlong_verl.worker.curriculum.task_balance import TaskBalancedSampler

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


def ensure_tiny_model(recipe: RecipeConfig, echo: Echo) -> None:
    """Write the tiny model a ``model_path: tiny | tiny-answers`` recipe starts from, once."""
    if recipe.model_path not in layout.TINY_MODELS:
        return
    target = layout.tiny_model_dir(recipe)
    if (target / "config.json").is_file():
        return
    from qwenlong_verl.driver.data.tiny_model import write_tiny_model

    write_tiny_model(target, seed=0, answers=layout.TINY_MODELS[recipe.model_path])
    echo(f"model: wrote the {recipe.model_path} model (seed 0) to {target}")
