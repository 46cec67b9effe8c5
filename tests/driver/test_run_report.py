"""The training report of a ``train`` output folder, built from the files a real run writes.

The folder is written with the run's own writers: ``train_state.json`` by :class:`RunState` (as ``train`` does)
and each phase's ``metrics.jsonl`` by the trainer mode's ``append_metrics`` (as veRL's step does), including a
resumed step logged twice and a line cut by a kill.
"""

from __future__ import annotations

import json

import pytest

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.driver.cli import main
from qwenlong_verl.driver.run import report
from qwenlong_verl.driver.run.state import DONE, TRAINING, RunState

PNG = b"\x89PNG\r\n\x1a\n"


def aepo_step(number, entropy, active, warmup, low=None, high=None, reference=None, switches=0.0):
    m = {
        "qwenlong/phase": float(number),
        "qwenlong/entropy": entropy,
        "actor/entropy": entropy * 1.1,
        "critic/score/mean": 0.1 * number,
        "qwenlong_reward/acc": 0.25,
        "response_length/mean": 100.0,
        "actor/grad_norm": 1.0,
        "timing_s/step": 2.0,
        "qwenlong/aepo_active": float(active),
        "qwenlong/aepo_warmup": float(warmup),
        "qwenlong/aepo_switches": switches,
    }
    if low is not None:
        m.update({"qwenlong/aepo_h_low": low, "qwenlong/aepo_h_high": high, "qwenlong/aepo_reference": reference})
    return m


@pytest.fixture
def run(tmp_path):
    """Two phases: ``short`` (phase 1, relative AEPO, resumed once) and ``long`` (phase 2, plain, still training).

    Alphabetical order (long, short) is not the training order: the report must follow ``qwenlong/phase``."""
    from qwenlong_verl.worker.curriculum.trainer_stages import append_metrics

    root = tmp_path / "run"
    state = RunState(root / "train_state.json")
    root.mkdir()
    state.update("short", status=DONE, final_step=5, model_out=str(root / "short" / "actor_hf"))
    state.update("long", status=TRAINING, launches=1)
    state.update("later", status="pending")

    short = root / "short" / "metrics.jsonl"
    append_metrics(str(short), 1, aepo_step(1, 0.30, 0, 1))
    append_metrics(str(short), 2, aepo_step(1, 0.10, 0, 1, low=0.18, high=0.22, reference=0.20))
    append_metrics(str(short), 3, aepo_step(1, 0.99, 1, 0, low=0.18, high=0.22, reference=0.20, switches=1.0))
    # the launch was killed after step 3 and resumed from the checkpoint of step 2: step 3 again, last line wins
    append_metrics(str(short), 3, aepo_step(1, 0.25, 1, 0, low=0.18, high=0.22, reference=0.20, switches=1.0))
    append_metrics(str(short), 4, aepo_step(1, 0.20, 1, 0, low=0.18, high=0.22, reference=0.20, switches=1.0))
    append_metrics(str(short), 5, aepo_step(1, 0.15, 0, 0, low=0.18, high=0.22, reference=0.20, switches=2.0))

    long = root / "long" / "metrics.jsonl"
    for step, entropy in ((1, 0.5), (2, 0.45)):
        append_metrics(
            str(long),
            step,
            {"qwenlong/phase": 2.0, "actor/entropy": entropy, "critic/score/mean": 0.5, "actor/grad_norm": 0.7},
        )
    with open(long, "a") as f:
        f.write('{"step": 3, "data": {"actor/entr')  # a kill in the middle of an append
    return root


def test_report_writes_plots_and_markdown_in_training_order(run):
    out = report.build_training_report(run)
    assert out.report_dir == run / "report"
    assert [p.name for p in out.phases] == ["short", "long"] and out.missing == ["later"]
    assert out.plots == ["training.png", "entropy_aepo.png"]
    for name in out.plots:
        data = (run / "report" / name).read_bytes()
        assert data[:8] == PNG and len(data) > 5000
    text = (run / "report" / "README.md").read_text()
    assert text.index("| short | done | 5 |") < text.index("| long | training | 2 |")
    assert "- **phases**: short (done), long (training), later (pending)" in text
    assert "No steps logged yet for: later." in text
    assert "1 unreadable metrics line(s) skipped" in text
    # the AEPO summary: 2 warm-up steps, on at steps 3 and 4 of the 3 after it, the frozen band and its reference
    assert "on 2 of 3 steps, 2 warm-up steps, band 0.18–0.22 nats (reference 0.2), 2 switches" in text
    # per-step rows: the resumed step 3 shows its last line (0.25, not 0.99)
    assert "| short | 1 | 0.1 | 0.25 | 100 | 0.3 | 1 | warm-up | – | – | 2 |" in text
    assert "| short | 2 | 0.1 | 0.25 | 100 | 0.1 | 1 | warm-up | 0.18 | 0.22 | 2 |" in text
    assert "| short | 3 | 0.1 | 0.25 | 100 | 0.25 | 1 | on | 0.18 | 0.22 | 2 |" in text
    assert "| short | 5 | 0.1 | 0.25 | 100 | 0.15 | 1 | off | 0.18 | 0.22 | 2 |" in text
    # a plain run: veRL's token-mean entropy, no AEPO columns
    assert "| long | 2 | 0.5 | – | – | 0.45 | 0.7 | – | – | – | – |" in text
    assert "| long | training | 2 | 0.5 | – | 0.5 → 0.45 | off |" in text


def test_entropy_figure_draws_the_aepo_state_and_thresholds(run):
    phases = [report.read_metrics(run / name / "metrics.jsonl", name) for name in ("short", "long")]
    assert phases[0].rows[2]["qwenlong/entropy"] == 0.25 and phases[1].unreadable == 1
    fig = report.entropy_figure(phases)
    aepo_ax, plain_ax = fig.axes
    labels = {line.get_label() for line in aepo_ax.get_lines()}
    assert labels == {"qwenlong/entropy", "h_high", "h_low"}
    high = next(line for line in aepo_ax.get_lines() if line.get_label() == "h_high")
    assert list(high.get_xdata()) == [2, 3, 4, 5] and set(high.get_ydata()) == {0.22}
    spans = [p for p in aepo_ax.patches]  # one per warm-up step and per step with AEPO on
    assert len(spans) == 4
    legend = [t.get_text() for t in aepo_ax.get_legend().get_texts()]
    assert "warm-up (AEPO off)" in legend and "AEPO on (negatives dropped)" in legend
    assert {line.get_label() for line in plain_ax.get_lines()} == {"actor/entropy"} and not plain_ax.patches
    assert aepo_ax.get_title() == "short: AEPO" and plain_ax.get_title() == "long: no AEPO"
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_no_entropy_no_entropy_plot(tmp_path):
    phase = report.PhaseMetrics("p", rows=[{"step": 1, "critic/score/mean": 0.5}])
    assert report.plot_entropy([phase], tmp_path / "e.png") is False and not (tmp_path / "e.png").exists()
    assert report.plot_training([phase], tmp_path / "t.png") is True and (tmp_path / "t.png").read_bytes()[:8] == PNG
    assert report.plot_training([report.PhaseMetrics("q")], tmp_path / "none.png") is False


def test_report_command_on_a_training_folder_replaces_the_old_report(run, capsys):
    (run / "report").mkdir()
    (run / "report" / "stale.png").write_bytes(b"old")
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert "short: 5 steps" in out and "long: 2 steps" in out and "no steps logged yet: later" in out
    assert f"report: {run / 'report' / 'README.md'}" in " ".join(out.split())
    assert sorted(p.name for p in (run / "report").iterdir()) == ["README.md", "entropy_aepo.png", "training.png"]


def test_bad_training_folders_are_one_line_input_errors(tmp_path, capsys):
    root = tmp_path / "run"
    root.mkdir()
    (root / "train_state.json").write_text("{not json")
    assert main(["report", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {root / 'train_state.json'} is not valid JSON") and err.count("\n") == 1
    RunState(root / "train_state.json").save()
    with pytest.raises(InputError, match="lists no phases yet"):
        report.build_training_report(root)
    RunState(root / "train_state.json").update("report", status="pending")
    with pytest.raises(InputError, match="a phase is named 'report'"):
        report.build_training_report(root)


def test_read_metrics_skips_records_of_the_wrong_shape(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"step": 1, "data": {"a": 1.0, "b": None, "c": "text", "d": True}},
        {"step": "2", "data": {}},
        {"data": {}},
        [1, 2],
        {"step": 2, "data": {"a": 2.0}},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    phase = report.read_metrics(path)
    assert phase.name == tmp_path.name and phase.unreadable == 3
    assert phase.rows == [{"a": 1.0, "step": 1}, {"a": 2.0, "step": 2}]
    assert report.read_metrics(tmp_path / "missing.jsonl", "x").rows == []
