"""The training report of a ``qwenlong-verl train`` output folder: per-step figures as markdown and PNGs.

Everything comes from files the run wrote: ``train_state.json`` (which phases, their status) and each phase's
``metrics.jsonl`` (veRL's ``{"step", "data"}`` lines, appended by every launch; the last line of a step wins,
since a resumed launch repeats the steps after its checkpoint). ``qwenlong-verl report <output_dir>`` writes
``<output_dir>/report/`` as a whole; the demo draws its training section with the same functions.

Plots: ``training.png`` (reward, accuracy, response length, entropy, grad norm; phases one after another) and,
whenever the metrics hold an entropy, ``entropy_aepo.png``: per phase the batch entropy and, for AEPO runs, the
switch state (shaded where negative responses were dropped), the warm-up of relative thresholds and the
thresholds ``h_low`` / ``h_high`` as lines.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import atomic_folder

logger = logging.getLogger(__name__)

REPORT_DIR = "report"
"""``<output_dir>/report/``: the training report (rebuilt as a whole)."""
README = "README.md"
TRAINING_PLOT = "training.png"
ENTROPY_PLOT = "entropy_aepo.png"


@dataclass(frozen=True)
class Figure:
    """One per-step figure: its label and the metric keys that carry it (the first one a phase logs wins)."""

    label: str
    keys: tuple[str, ...]

    def key(self, rows: Sequence[dict[str, Any]]) -> str | None:
        """The key this phase's rows carry the figure under (``None``: not logged)."""
        return next((k for k in self.keys if any(r.get(k) is not None for r in rows)), None)


ENTROPY = Figure("entropy (nats)", ("qwenlong/entropy", "actor/entropy"))
"""``qwenlong/entropy`` is the batch entropy AEPO reads (mean over responses of their mean token entropy, logged
with clipping or AEPO on); veRL's ``actor/entropy`` (a token mean) is the fallback for a plain run."""

TRAINING_FIGURES = (
    Figure("reward (mean)", ("critic/score/mean",)),
    Figure("accuracy", ("qwenlong_reward/acc",)),
    Figure("response length", ("response_length/mean",)),
    ENTROPY,
    Figure("grad norm", ("actor/grad_norm",)),
)
"""What ``training.png`` and the step table show, in order."""

AEPO_ACTIVE, AEPO_WARMUP = "qwenlong/aepo_active", "qwenlong/aepo_warmup"
AEPO_LOW, AEPO_HIGH, AEPO_REFERENCE = "qwenlong/aepo_h_low", "qwenlong/aepo_h_high", "qwenlong/aepo_reference"
AEPO_SWITCHES = "qwenlong/aepo_switches"
PHASE_NUMBER = "qwenlong/phase"


@dataclass
class PhaseMetrics:
    """One phase's per-step metrics: one dict per step (``step`` plus the logged figures), in step order."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    unreadable: int = 0
    """Lines of ``metrics.jsonl`` that were not a ``{"step", "data"}`` JSON object (e.g. cut by a kill)."""

    @property
    def has_aepo(self) -> bool:
        return any(r.get(AEPO_ACTIVE) is not None for r in self.rows)

    def values(self, key: str | None) -> tuple[list[int], list[float]]:
        """Steps and values of ``key`` where it was logged."""
        pairs = [(r["step"], r[key]) for r in self.rows if key is not None and r.get(key) is not None]
        return [s for s, _ in pairs], [v for _, v in pairs]

    def last(self, key: str | None) -> float | None:
        values = self.values(key)[1]
        return values[-1] if values else None


def read_metrics(path: str | Path, name: str = "") -> PhaseMetrics:
    """``metrics.jsonl`` (missing: no steps) read as :class:`PhaseMetrics`; the last line of each step wins.

    A line that is not a ``{"step": int, "data": {...}}`` object is counted and skipped, never fatal: a kill
    can cut the last line of an append."""
    path = Path(path)
    phase = PhaseMetrics(name or path.parent.name)
    by_step: dict[int, dict[str, Any]] = {}
    if path.is_file():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                step, data = entry["step"], entry["data"]
                if isinstance(step, bool) or not isinstance(step, int) or not isinstance(data, dict):
                    raise TypeError("step must be an integer and data an object")
            except (ValueError, KeyError, TypeError) as exc:
                phase.unreadable += 1
                logger.warning("%s:%d: skipped a line that is not a metrics record (%s)", path, number, exc)
                continue
            by_step[step] = {k: v for k, v in data.items() if _is_number(v)}  # the writer logs floats or null
    phase.rows = [{**by_step[step], "step": step} for step in sorted(by_step)]
    return phase


# ----------------------------------------------------------------------------- markdown


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def aepo_state(row: dict[str, Any]) -> str:
    """The AEPO column of one step: ``warm-up``, ``on``, ``off`` or ``–`` (no AEPO)."""
    if row.get(AEPO_ACTIVE) is None:
        return "–"
    if row.get(AEPO_WARMUP):
        return "warm-up"
    return "on" if row[AEPO_ACTIVE] else "off"


def step_table(phases: Sequence[PhaseMetrics]) -> list[str]:
    """Markdown lines: one row per phase and step with :data:`TRAINING_FIGURES`, the AEPO state and step time."""
    header = ["phase", "step", *(f.label for f in TRAINING_FIGURES), "AEPO", "h_low", "h_high", "step time (s)"]
    rows = []
    for phase in phases:
        keys = [f.key(phase.rows) for f in TRAINING_FIGURES]
        for r in phase.rows:
            cells = [_cell(r.get(k)) if k else "–" for k in keys]
            rows.append(
                [
                    phase.name,
                    str(r["step"]),
                    *cells,
                    aepo_state(r),
                    _cell(r.get(AEPO_LOW)),
                    _cell(r.get(AEPO_HIGH)),
                    _cell(r.get("timing_s/step")),
                ]
            )
    return _table(header, rows)


def phase_summary(phases: Sequence[PhaseMetrics], status: dict[str, str] | None = None) -> list[str]:
    """Markdown lines: one row per phase (steps, last figures, AEPO thresholds and how often it was on)."""
    header = ["phase", "status", "steps", "reward (last)", "accuracy (last)", "entropy first → last", "AEPO"]
    rows = []
    for phase in phases:
        entropy = phase.values(ENTROPY.key(phase.rows))[1]
        spread = f"{_cell(entropy[0])} → {_cell(entropy[-1])}" if entropy else "–"
        rows.append(
            [
                phase.name,
                (status or {}).get(phase.name, "–"),
                str(len(phase.rows)),
                _cell(phase.last(TRAINING_FIGURES[0].key(phase.rows))),
                _cell(phase.last(TRAINING_FIGURES[1].key(phase.rows))),
                spread,
                _aepo_summary(phase),
            ]
        )
    return _table(header, rows)


def _aepo_summary(phase: PhaseMetrics) -> str:
    if not phase.has_aepo:
        return "off"
    rows = [r for r in phase.rows if r.get(AEPO_ACTIVE) is not None]
    warm = sum(1 for r in rows if r.get(AEPO_WARMUP))
    on = sum(1 for r in rows if r[AEPO_ACTIVE] and not r.get(AEPO_WARMUP))
    parts = [f"on {on} of {len(rows) - warm} steps"]
    if warm:
        parts.append(f"{warm} warm-up steps")
    low, high = phase.last(AEPO_LOW), phase.last(AEPO_HIGH)
    if low is not None and high is not None:
        band = f"band {low:.4g}–{high:.4g} nats"
        reference = phase.last(AEPO_REFERENCE)
        if reference is not None:
            band += f" (reference {reference:.4g})"
        parts.append(band)
    switches = phase.last(AEPO_SWITCHES)
    if switches is not None:
        parts.append(f"{switches:.0f} switches")
    return ", ".join(parts)


# ----------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training(phases: Sequence[PhaseMetrics], path: Path, title: str = "Per-step figures (metrics.jsonl)") -> bool:
    """``training.png``: one panel per figure any phase logged, phases one after another; False if none."""
    shown = [f for f in TRAINING_FIGURES if any(f.key(p.rows) for p in phases)]
    if not shown:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown) + 1.5, 3), squeeze=False)
    for ax, figure in zip(axes[0], shown, strict=True):
        offset = 0
        for phase in phases:
            xs, ys = phase.values(figure.key(phase.rows))
            ax.plot([offset + x for x in xs], ys, marker="o", markersize=3, label=phase.name)
            offset += max((r["step"] for r in phase.rows), default=0)
        ax.set_title(figure.label, fontsize=9)
        _integer_steps(ax)
        ax.set_xlabel("step (phases in order)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_entropy(phases: Sequence[PhaseMetrics], path: Path) -> bool:
    """``entropy_aepo.png`` (:func:`entropy_figure`); returns False and writes nothing when no phase has entropy."""
    fig = entropy_figure(phases)
    if fig is None:
        return False
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return True


def entropy_figure(phases: Sequence[PhaseMetrics]):
    """Per phase with an entropy, the batch entropy; with AEPO also its state and thresholds (``None``: no entropy)."""
    shown = [p for p in phases if ENTROPY.key(p.rows)]
    if not shown:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown) + 0.8, 3.4), squeeze=False)
    for ax, phase in zip(axes[0], shown, strict=True):
        key = ENTROPY.key(phase.rows)
        xs, ys = phase.values(key)
        ax.plot(xs, ys, marker="o", markersize=3, color="#3b6ea8", label=key)
        if phase.has_aepo:
            _draw_aepo(ax, phase)
        ax.set_title(f"{phase.name}: {'AEPO' if phase.has_aepo else 'no AEPO'}", fontsize=9)
        _integer_steps(ax)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("nats", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="best")
    fig.suptitle("Batch entropy and the AEPO switch", fontsize=10)
    fig.tight_layout()
    return fig


def _integer_steps(ax) -> None:
    """Whole steps on x, plain values on y (no ``+1.397`` offset label for a flat curve)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.ticklabel_format(axis="y", useOffset=False)


def _draw_aepo(ax, phase: PhaseMetrics) -> None:
    """Shade warm-up and AEPO-on steps (each step spans ±0.5) and draw the thresholds as step lines."""
    labelled: set[str] = set()
    for r in phase.rows:
        if r.get(AEPO_ACTIVE) is None:
            continue
        if r.get(AEPO_WARMUP):
            what, color = "warm-up (AEPO off)", "#dddddd"
        elif r[AEPO_ACTIVE]:
            what, color = "AEPO on (negatives dropped)", "#f4c7a1"
        else:
            continue
        ax.axvspan(r["step"] - 0.5, r["step"] + 0.5, color=color, alpha=0.6, linewidth=0, label=_once(what, labelled))
    for key, name, color in ((AEPO_HIGH, "h_high", "#c44e52"), (AEPO_LOW, "h_low", "#55a868")):
        xs, ys = phase.values(key)
        if xs:
            ax.step(xs, ys, where="mid", linestyle="--", color=color, linewidth=1.2, label=name)


def _once(label: str, seen: set[str]) -> str | None:
    if label in seen:
        return None
    seen.add(label)
    return label


# ----------------------------------------------------------------------------- the report command


@dataclass
class TrainingReport:
    """What :func:`build_training_report` wrote."""

    report_dir: Path
    phases: list[PhaseMetrics]
    plots: list[str]
    missing: list[str] = field(default_factory=list)
    """Phases of ``train_state.json`` without any logged step yet."""


def is_training_folder(path: str | Path) -> bool:
    """Whether ``path`` is a ``qwenlong-verl train`` output folder (it has ``train_state.json``)."""
    from qwenlong_verl.driver.layout import STATE_FILE

    return (Path(path) / STATE_FILE).is_file()


def _phase_order(phase: PhaseMetrics) -> tuple[float, str]:
    """Phases in training order: the ``qwenlong/phase`` number each step logs (1-based), else by name."""
    number = next((r[PHASE_NUMBER] for r in phase.rows if r.get(PHASE_NUMBER) is not None), math.inf)
    return float(number), phase.name


def build_training_report(run_dir: str | Path) -> TrainingReport:
    """Read a training output folder, write ``<run_dir>/report/`` (``README.md`` and the plots) as a whole."""
    from qwenlong_verl.driver.layout import METRICS_FILE, STATE_FILE
    from qwenlong_verl.driver.run.state import RunState, TrainError

    root = Path(run_dir)
    try:
        state = RunState.load(root / STATE_FILE)
    except TrainError as exc:
        raise InputError(str(exc)) from None
    names = list(state.data["phases"])
    if not names:
        raise InputError(f"{root / STATE_FILE} lists no phases yet; run `qwenlong-verl train` first")
    if REPORT_DIR in names:
        raise InputError(
            f"{root}: a phase is named {REPORT_DIR!r}, where the report would go; rename the phase in the recipe"
        )
    read = [read_metrics(root / name / METRICS_FILE, name) for name in names]
    phases = sorted((p for p in read if p.rows), key=_phase_order)
    missing = [p.name for p in read if not p.rows]
    status = {name: state.status(name) for name in names}

    out = root / REPORT_DIR
    with atomic_folder(out) as new:
        plots = []
        if plot_training(phases, new / TRAINING_PLOT):
            plots.append(TRAINING_PLOT)
        if plot_entropy(phases, new / ENTROPY_PLOT):
            plots.append(ENTROPY_PLOT)
        text = render_markdown(root, phases, status, plots, missing)
        (new / README).write_text(text, encoding="utf-8")
    return TrainingReport(report_dir=out, phases=phases, plots=plots, missing=missing)


def render_markdown(
    root: Path, phases: Sequence[PhaseMetrics], status: dict[str, str], plots: Sequence[str], missing: Sequence[str]
) -> str:
    order = [p.name for p in phases] + [name for name in status if name not in {p.name for p in phases}]
    out = [f"# Training report: {root.name}", ""]
    out += [
        f"- **run folder**: {root}",
        "- **phases**: " + ", ".join(f"{name} ({status.get(name, '?')})" for name in order),
        f"- **report built**: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
    ]
    if missing:
        out += [f"No steps logged yet for: {', '.join(missing)}.", ""]
    unreadable = sum(p.unreadable for p in phases)
    if unreadable:
        out += [f"> {unreadable} unreadable metrics line(s) skipped (a launch killed mid-write).", ""]
    if not phases:
        out.append("No per-step metrics yet.")
        return "\n".join(out) + "\n"
    out += ["## Phases", "", *phase_summary(phases, status), ""]
    if TRAINING_PLOT in plots:
        out += [f"![per-step figures]({TRAINING_PLOT})", ""]
    if ENTROPY_PLOT in plots:
        out += [
            "## Entropy and AEPO",
            "",
            "Batch entropy per step (`qwenlong/entropy`: mean over responses of their mean token entropy, what AEPO "
            "reads; veRL's token-mean `actor/entropy` where that is not logged). With AEPO: shaded where negative-"
            "advantage responses left the update, grey during the warm-up of relative thresholds, and the thresholds "
            "`h_high` / `h_low` (nats) as dashed lines.",
            "",
            f"![entropy and AEPO]({ENTROPY_PLOT})",
            "",
        ]
    out += ["## Per-step figures", "", *step_table(phases), ""]
    return "\n".join(out) + "\n"
