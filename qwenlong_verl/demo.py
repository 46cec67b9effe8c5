"""``qwenlong-verl demo``: the main job's CPU path, end to end, in a couple of minutes.

synthesise a small verifiable corpus → prepare phase windows with the builtin tokenizer → a retrospective
phase transition from a simulated difficulty ledger → score sample responses with the hybrid reward (rule
only unless a judge URL is set) → ``plan`` every phase of a recipe on that data → a report folder.

Nothing here is simulated except the rollouts' rewards in the ledger (a CPU cannot roll out a policy); every
other step runs the same code a GPU run does.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.rewards.keys import ENV_URLS

logger = logging.getLogger(__name__)

DEMO_PHASES = (4096, 8192)
DEMO_RECIPE = "demo_cpu"

Step = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo made, for the CLI summary and the tests."""

    out_dir: str
    report: str
    synth_examples: int = 0
    phase_rows: list[int] = field(default_factory=list)
    carried: int = 0
    reward_table: list[dict[str, Any]] = field(default_factory=list)
    planned_phases: int = 0
    commands: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- sample responses


def _wrong_answer(gold: str, task: str, choices: list[str] | None) -> str:
    """A plausible wrong answer of the right shape (a different letter, a far number, another name)."""
    if task == "choice":
        letters = [chr(ord("A") + i) for i in range(len(choices or "ABCD"))]
        return next(letter for letter in letters if letter != gold.strip().upper())
    if task == "numeric":
        try:
            return f"{float(gold.replace(',', '')) * 1.5 + 7:g}"
        except ValueError:
            return "42"
    return "Nobody in particular"


def sample_responses(gold: str, task: str, choices: list[str] | None) -> dict[str, tuple[str, float]]:
    """Responses a policy might write for one question, each with the reward it must get."""
    wrong = _wrong_answer(gold, task, choices)
    think = "<think>The question needs figures from several documents; collecting them.</think>\n\n"
    return {
        "correct": (f"{think}Therefore, the answer is {gold}.", 1.0),
        "correct, boxed": (f"{think}The final answer is $\\boxed{{{gold}}}$.", 1.0),
        "wrong": (f"{think}Therefore, the answer is {wrong}.", 0.0),
        "hedged": (f"{think}The answer is {gold} or {wrong}.", 0.0),
        "unfinished think": (f"<think>I believe the answer is {gold}, but let me check", 0.0),
        "no answer": (f"{think}I could not find it in the documents.", 0.0),
    }


def score_samples(phase_files: list[str], per_task: int = 4, judge_kwargs: dict | None = None):
    """Score :func:`sample_responses` for a few rows per task; returns one summary row per response kind."""
    import asyncio

    import pandas as pd

    from qwenlong_verl.rewards import compute_score_async

    frame = pd.concat([pd.read_parquet(f) for f in phase_files if Path(f).exists()], ignore_index=True)
    chosen = frame.groupby(frame["extra_info"].map(lambda e: e["task"]), sort=True).head(per_task)
    jobs, expected = [], []
    for _, row in chosen.iterrows():
        info = dict(row["extra_info"])
        gold = row["reward_model"]["ground_truth"]
        raw_choices = info.get("choices")
        choices = [str(c) for c in raw_choices] if raw_choices is not None and len(raw_choices) else None
        for kind, (text, want) in sample_responses(str(gold), info["task"], choices).items():
            jobs.append((row["data_source"], text, gold, info))
            expected.append((kind, info["task"], want))

    async def run_all():
        kwargs = judge_kwargs or {}
        return await asyncio.gather(*(compute_score_async(ds, text, gt, info, **kwargs) for ds, text, gt, info in jobs))

    results = asyncio.run(run_all())
    table: dict[str, dict[str, Any]] = {}
    for (kind, _task, want), res in zip(expected, results, strict=True):
        entry = table.setdefault(kind, {"kind": kind, "n": 0, "mean_score": 0.0, "expected": want, "agree": 0})
        entry["n"] += 1
        entry["mean_score"] += res["score"]
        entry["agree"] += int(abs(res["score"] - want) < 1e-9)
    for entry in table.values():
        entry["mean_score"] /= entry["n"]
    return list(table.values())


# ----------------------------------------------------------------------------- plots and report


def _plot_rewards(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    kinds = [r["kind"] for r in rows]
    ax.barh(kinds, [r["mean_score"] for r in rows], color="#4c72b0", label="hybrid reward")
    ax.scatter([r["expected"] for r in rows], kinds, color="#dd8452", zorder=3, label="expected")
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("mean reward")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Hybrid reward on sample responses")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write_report(result: DemoResult, sections: list[str], path: Path) -> None:
    lines = ["# qwenlong-verl demo report", ""]
    lines += sections
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------- the demo


def run_demo(
    out_dir: str | Path = "outputs/demo",
    n: int = 60,
    seed: int = 0,
    judge_kwargs: dict | None = None,
    step: Step | None = None,
) -> DemoResult:
    """Run the whole CPU path into ``out_dir``; ``step(message)`` is called as each stage starts."""
    from qwenlong_verl.data.prepare import prepare
    from qwenlong_verl.data.synth import synth

    say = step or (lambda message: logger.info("%s", message))
    out = Path(out_dir)
    report_dir = out / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out_dir=str(out), report=str(report_dir / "report.md"))
    sections: list[str] = []

    say(f"synthesising {n} verifiable long-context questions")
    corpus = out / "synth.jsonl"
    stats = synth(corpus, n=n, min_tokens=2000, max_tokens=DEMO_PHASES[-1] - 1200, seed=seed)
    result.synth_examples = stats.examples
    sections += [
        "## 1. Synthetic corpus",
        "",
        f"{stats.examples} questions, {stats.document_tokens:,} document tokens, tasks "
        + ", ".join(f"{k} {v}" for k, v in sorted(stats.tasks.items()))
        + f" (`{corpus}`).",
        "",
    ]

    say("preparing phase windows with the builtin tokenizer")
    data_dir = out / "data"
    prepared = prepare([str(corpus)], str(data_dir), tokenizer="builtin", phases=list(DEMO_PHASES))
    result.phase_rows = [p.rows for p in prepared.phase_stats]
    (report_dir / "lengths.png").write_bytes((data_dir / prepared.histogram).read_bytes())
    sections += ["## 2. Phase windows", "", "| phase | window (tokens) | rows | tasks |", "|---|---|---|---|"]
    for p in prepared.phase_stats:
        tasks = ", ".join(f"{k} {v}" for k, v in sorted(p.tasks.items()))
        sections.append(f"| {p.phase} | ({p.min_exclusive:,}, {p.max_inclusive:,}] | {p.rows} | {tasks} |")
    sections += ["", "![input lengths per phase](lengths.png)", ""]

    say("simulating phase-1 rollouts into a difficulty ledger, then the retrospective transition")
    carried_section, phase_files, carry = _retrospective_transition(prepared.phase_files, out, report_dir, seed)
    result.carried = carry.carried
    sections += carried_section

    judged = bool(judge_kwargs) or bool(os.getenv(ENV_URLS, "").strip())
    say("scoring sample responses with the hybrid reward" + (" (judge on)" if judged else " (rules only)"))
    result.reward_table = score_samples(phase_files, judge_kwargs=judge_kwargs)
    _plot_rewards(result.reward_table, report_dir / "rewards.png")
    sections += [
        "## 4. Hybrid reward on sample responses",
        "",
        "| response | n | mean reward | expected | agree |",
        "|---|---|---|---|---|",
    ]
    for r in result.reward_table:
        sections.append(
            f"| {r['kind']} | {r['n']} | {r['mean_score']:.2f} | {r['expected']:.0f} | {r['agree']}/{r['n']} |"
        )
    sections += ["", "![reward summary](rewards.png)", ""]

    say("planning every phase: veRL config composed and validated by veRL")
    recipe_path = _write_demo_recipe(out, phase_files)
    from qwenlong_verl.planning import plan_recipe
    from qwenlong_verl.recipe import load_recipe

    plans = plan_recipe(load_recipe(recipe_path))
    result.planned_phases = len(plans)
    result.commands = [p.command_line for p in plans]
    sections += ["## 5. Plan", "", f"Recipe `{recipe_path}`; each phase validated by veRL's `validate_config`.", ""]
    for p in plans:
        sections += [f"**phase {p.index + 1} ({p.phase.name})**", "", "```bash", p.command_line, "```", ""]

    _write_report(result, sections, Path(result.report))
    (out / "demo_result.json").write_text(json.dumps(result.__dict__, indent=2), encoding="utf-8")
    return result


def _write_demo_recipe(out: Path, phase_files: list[str]) -> Path:
    """The smoke recipe pointed at the demo's data (model path is only validated, never loaded)."""
    import yaml

    from qwenlong_verl.recipe import load_recipe

    root = Path(__file__).resolve().parents[1] / "recipes" / "smoke_1gpu.yaml"
    base = yaml.safe_load(root.read_text()) if root.exists() else None
    if base is None:
        raise FileNotFoundError(f"{root} is missing; the demo plans the shipped smoke recipe on its own data")
    base["name"] = DEMO_RECIPE
    base["output_dir"] = str(out / "run")
    for phase, path in zip(base["phases"], phase_files, strict=False):
        phase["train_files"] = [path]
    path = out / f"{DEMO_RECIPE}.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False), encoding="utf-8")
    load_recipe(path)
    return path


def _simulated_pass_rate(rng: random.Random, task: str, tokens: int) -> float:
    """A stand-in policy: longer inputs and aggregation questions are harder."""
    base = {"numeric": 0.35, "choice": 0.7, "qa": 0.55}.get(task, 0.5)
    return min(1.0, max(0.0, base - tokens / 40000 + rng.uniform(-0.3, 0.3)))


def simulated_ledger(phase_file: str, phase: str, seed: int, steps: int = 3, rollouts: int = 8):
    """Ledger records as the trainer would write them for ``steps`` passes over a phase's data."""
    from qwenlong_verl.curriculum.ledger import LedgerRecord
    from qwenlong_verl.curriculum.retrospective import read_rows, row_index

    rng = random.Random(f"demo-ledger:{seed}")
    records = []
    rows = read_rows([phase_file])
    rates = {
        row_index(r, phase): _simulated_pass_rate(rng, r["extra_info"]["task"], r["extra_info"]["input_tokens"])
        for r in rows
    }
    for step in range(1, steps + 1):
        for row in rows:
            info = row["extra_info"]
            index = row_index(row, phase)
            passed = sum(rng.random() < rates[index] for _ in range(rollouts))
            mean = passed / rollouts
            records.append(
                LedgerRecord(
                    phase=phase,
                    step=step,
                    uid=f"demo-{step}-{index}",
                    index=index,
                    task=info["task"],
                    data_source=row["data_source"],
                    n=rollouts,
                    mean_reward=mean,
                    reward_std=(mean * (1 - mean)) ** 0.5,
                    pass_rate=mean,
                    mean_response_length=float(rng.randint(300, 2000)),
                    retro=False,
                    trained=True,
                )
            )
    return records


def _retrospective_transition(phase_files: list[str], out: Path, report_dir: Path, seed: int):
    """Phase 1's simulated ledger → phase 2's data with hard phase-1 examples carried over."""
    from qwenlong_verl.curriculum.config import CurriculumConfig
    from qwenlong_verl.curriculum.ledger import DifficultyLedger
    from qwenlong_verl.curriculum.retrospective import carry_over, read_rows, write_rows
    from qwenlong_verl.recipe import RetrospectiveConfig

    # where the trainer mode writes phase 1's ledger under the demo recipe (output_dir <out>/run)
    ledger = DifficultyLedger(CurriculumConfig().resolved_ledger_path(str(out / "run" / "phase1" / "checkpoints")))
    if ledger.path.exists():
        ledger.path.unlink()
    ledger.append(simulated_ledger(phase_files[0], "phase1", seed))
    own = read_rows([phase_files[1]])
    carried, report = carry_over(
        own,
        [("phase1", 1, [phase_files[0]], ledger.read())],
        RetrospectiveConfig(ratio=0.5, seed=seed + 1),
        "phase2",
        2,
    )
    phase2 = out / "data" / "phase2_with_retrospective.parquet"
    write_rows(own + carried, phase2, like=[phase_files[1]])
    (report_dir / "retrospective.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    _plot_difficulty(ledger.read(), set(report.indices), report_dir / "difficulty.png")
    section = [
        "## 3. Retrospective transition (phase 1 → phase 2)",
        "",
        f"Ledger `{ledger.path}`: {len(ledger.read())} records (rollout rewards simulated; everything else is the",
        "code a GPU run uses). Phase 2 = its own window's rows + hard phase-1 rows drawn ∝ difficulty:",
        "",
        "```",
        report.summary(),
        "```",
        "",
        "![difficulty of phase-1 examples, carried ones highlighted](difficulty.png)",
        "",
    ]
    return section, [phase_files[0], str(phase2)], report


def _plot_difficulty(records, carried: set[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qwenlong_verl.curriculum.retrospective import example_difficulties

    diffs = example_difficulties([("phase1", records)])
    kept = [d.difficulty for i, d in diffs.items() if i in carried]
    rest = [d.difficulty for i, d in diffs.items() if i not in carried]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bins = [i / 10 for i in range(11)]
    ax.hist([rest, kept], bins=bins, stacked=True, color=["#bbbbbb", "#c44e52"], label=["not carried", "carried"])
    ax.set_xlabel("difficulty = 1 − mean reward (phase 1)")
    ax.set_ylabel("examples")
    ax.legend(fontsize=8)
    ax.set_title("Retrospective sampling: carried examples")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
