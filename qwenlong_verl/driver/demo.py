"""``qwenlong-verl demo``: the main job on a CPU, end to end and for real, in a few minutes.

synthesise a small verifiable corpus → prepare phase windows with the builtin tokenizer → **really train** two
curriculum phases with stock veRL on the CPU backend (the shipped recipe ``cpu_smoke``: tiny random Qwen2, task balance,
task-norm advantage, AEPO, the hybrid reward) → the retrospective transition drawn from phase 1's real ledger →
phase 2 from phase 1's merged actor → score sample responses with the hybrid reward → a report folder with the
per-step figures veRL logged (reward, accuracy, entropy and the AEPO switch, grad norm, response length; drawn by
:mod:`qwenlong_verl.driver.run.report`, as ``qwenlong-verl report`` draws them) and the ledger's difficulties.

The training part is ``qwenlong-verl train``, so a demo that was interrupted resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwenlong_verl.common.files import atomic_folder, atomic_write
from qwenlong_verl.driver.recipes import SHIPPED_DIR
from qwenlong_verl.driver.run.report import (
    ENTROPY_PLOT,
    TRAINING_PLOT,
    plot_entropy,
    plot_training,
    read_metrics,
    step_table,
)
from qwenlong_verl.worker.rewards.keys import ENV_URLS

logger = logging.getLogger(__name__)

DEMO_RECIPE = SHIPPED_DIR / "cpu_smoke.yaml"
"""The recipe the demo trains: the shipped ``cpu_smoke`` (installed with the package, no checkout needed)."""
REPORT_FILE = "report.md"

Step = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo made, for the CLI summary and the tests."""

    out_dir: str
    report: str
    train_dir: str = ""
    synth_examples: int = 0
    phase_rows: list[int] = field(default_factory=list)
    steps: dict[str, int] = field(default_factory=dict)
    """Training steps logged per phase."""
    carried: int = 0
    reward_table: list[dict[str, Any]] = field(default_factory=list)
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
    """Score :func:`sample_responses` for a few rows per answer type; returns one summary row per response kind."""
    import asyncio

    import pandas as pd

    from qwenlong_verl.common.tasks import answer_type_of
    from qwenlong_verl.worker.rewards import compute_score_async

    frame = pd.concat([pd.read_parquet(f) for f in phase_files if Path(f).exists()], ignore_index=True)
    types = [
        answer_type_of(source, info) for source, info in zip(frame["data_source"], frame["extra_info"], strict=True)
    ]
    chosen = frame.assign(answer_type=types).groupby("answer_type", sort=True).head(per_task)
    jobs, expected = [], []
    for _, row in chosen.iterrows():
        info = dict(row["extra_info"])
        gold = row["reward_model"]["ground_truth"]
        raw_choices = info.get("choices")
        choices = [str(c) for c in raw_choices] if raw_choices is not None and len(raw_choices) else None
        for kind, (text, want) in sample_responses(str(gold), row["answer_type"], choices).items():
            jobs.append((row["data_source"], text, gold, info))
            expected.append((kind, row["answer_type"], want))

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


def _write_report(sections: list[str], path: Path) -> None:
    lines = ["# qwenlong-verl demo report", ""]
    lines += sections
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _plot_difficulty(records, carried: set[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qwenlong_verl.driver.retrospective import example_difficulties

    diffs = example_difficulties([("phase1", records)])
    kept = [d.difficulty for i, d in diffs.items() if i in carried]
    rest = [d.difficulty for i, d in diffs.items() if i not in carried]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bins = [i / 10 for i in range(11)]
    ax.hist([rest, kept], bins=bins, stacked=True, color=["#bbbbbb", "#c44e52"], label=["not carried", "carried"])
    ax.set_xlabel("difficulty = 1 − mean reward (phase 1, real rollouts)")
    ax.set_ylabel("examples")
    ax.legend(fontsize=8)
    ax.set_title("Retrospective sampling: carried examples")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- the demo


def run_demo(
    out_dir: str | Path = "outputs/demo",
    judge_kwargs: dict | None = None,
    step: Step | None = None,
    recipe_path: str | Path = DEMO_RECIPE,
) -> DemoResult:
    """Train the CPU recipe into ``<out_dir>/train`` (resuming an earlier demo there) and write the report;
    ``step(message)`` is called as each stage starts and with ``train``'s progress lines."""
    from qwenlong_verl.driver import layout, recipes
    from qwenlong_verl.driver.run import train
    from qwenlong_verl.driver.run.phase_data import phase_ledger_path
    from qwenlong_verl.worker.curriculum.ledger import DifficultyLedger

    say = step or (lambda message: logger.info("%s", message))
    out = Path(out_dir)
    report_dir = out / "report"
    recipe = recipes.load(recipe_path)
    recipe.output_dir = str(out / "train")
    result = DemoResult(out_dir=str(out), report=str(report_dir / REPORT_FILE), train_dir=recipe.output_dir)
    sections: list[str] = []

    say(f"training {recipe.name} for real on the CPU ({len(recipe.phases)} phases): {recipe.description}")
    reports = train(recipe, echo=say)
    result.commands = [r.command_line for r in reports]

    with atomic_folder(report_dir) as new:  # the report and its figures, all from this run or the last one
        data_dir = layout.prepared_dir(recipe)
        stats = json.loads((data_dir / "stats.json").read_text())
        synth_rows = (data_dir / layout.SYNTH_FILE).read_text().splitlines()
        result.synth_examples = len(synth_rows)
        result.phase_rows = [p["rows"] for p in stats["phase_stats"]]
        sections += [
            "## 1. Data",
            "",
            f"{result.synth_examples} synthetic questions (`{data_dir / layout.SYNTH_FILE}`), prepared into phase windows "
            f"with the {stats['tokenizer']} tokenizer:",
            "",
            "| phase | window (tokens) | rows | tasks |",
            "|---|---|---|---|",
        ]
        for p in stats["phase_stats"]:
            tasks = ", ".join(f"{k} {v}" for k, v in sorted(p["tasks"].items()))
            sections.append(
                f"| {p['phase']} | ({p['min_exclusive']:,}, {p['max_inclusive']:,}] | {p['rows']} | {tasks} |"
            )
        if stats.get("histogram"):
            (new / "lengths.png").write_bytes((data_dir / stats["histogram"]).read_bytes())
            sections += ["", "![input lengths per phase](lengths.png)"]
        sections.append("")

        say("reading the figures veRL logged at each step")
        phases = [read_metrics(layout.metrics_file(recipe, i), p.name) for i, p in enumerate(recipe.phases)]
        result.steps = {p.name: len(p.rows) for p in phases}
        sections += ["## 2. Training (stock veRL main_ppo, trainer mode qwenlong, CPU backend)", ""]
        if plot_training(phases, new / TRAINING_PLOT, title="Real veRL steps on the CPU (metrics.jsonl)"):
            sections += [f"![per-step figures]({TRAINING_PLOT})", ""]
        if plot_entropy(phases, new / ENTROPY_PLOT):
            sections += [f"![batch entropy and the AEPO switch]({ENTROPY_PLOT})", ""]
        sections += [*step_table(phases), ""]

        say("the retrospective transition, from phase 1's real difficulty ledger")
        sections += ["## 3. Retrospective transition", ""]
        for i, phase in enumerate(recipe.phases):
            if phase.retrospective is None:
                continue
            carry = json.loads((layout.phase_data_dir(recipe, i) / layout.REPORT_FILE).read_text())
            result.carried += int(carry["carried"])
            (new / "retrospective.json").write_text(json.dumps(carry, indent=2), encoding="utf-8")
            from qwenlong_verl.driver.plan import plan_phase

            ledger = DifficultyLedger(phase_ledger_path(plan_phase(recipe, i - 1, check=False)))
            records = ledger.read()
            _plot_difficulty(records, set(carry["indices"]), new / "difficulty.png")
            sections += [
                f"Ledger `{ledger.path}`: {len(records)} records written by the trainer from real rollouts. "
                f"{phase.name} = its own window's rows + {carry['carried']} hard rows of earlier phases drawn by difficulty.",
                "",
                "![difficulty of earlier examples, carried ones highlighted](difficulty.png)",
                "",
            ]

        judged = bool(judge_kwargs) or bool(os.getenv(ENV_URLS, "").strip())
        say("scoring sample responses with the hybrid reward" + (" (judge on)" if judged else " (rules only)"))
        result.reward_table = score_samples(
            [str(data_dir / p["file"]) for p in stats["phase_stats"]], judge_kwargs=judge_kwargs
        )
        _plot_rewards(result.reward_table, new / "rewards.png")
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
        sections += ["", "![reward summary](rewards.png)", "", "## 5. Commands run", ""]
        for r in reports:
            sections += [f"**phase {r.number} ({r.name})**", "", "```bash", r.command_line, "```", ""]

        _write_report(sections, new / REPORT_FILE)
    atomic_write(out / "demo_result.json", json.dumps(result.__dict__, indent=2))
    return result
