"""The hostile-input probe harness (``tools/probe.py``): its judge cannot be fooled, and a probe of every area is
answered well.

The whole catalogue (~490 probes) takes minutes on 2 cores, so the end-to-end test runs a fixed, representative
subset of every area (``make probe`` runs them all). The classifier tests feed it outcomes a careless tool gives
(a traceback, a silent exit 0, a changed input, a multi-line error) and real runs that destroy data, so a harness
that passed everything could not pass.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import probes  # noqa: E402
from probes.core import (  # noqa: E402
    ERROR,
    LOST,
    OK,
    POOR,
    WELL,
    Cli,
    Ctx,
    Custom,
    Outcome,
    Probe,
    classify,
    data_loss,
    error_lines,
    execute,
    snapshot,
)

SUBSET = (
    # inputs: bad rows dropped and counted, or refused naming the line; whole files refused naming the encoding
    "prepare/row/non-utf8-byte",
    "sft-data/row/documents-null",
    "score/row/surrogate-response",
    "eval/row/answer-nan",
    "prepare/file/utf16-le",
    "prepare/file/document-50mb",
    "eval/parquet/truncated",
    "prepare/file/empty",
    "prepare/parquet/wrong-columns",
    # outputs: never over an input, never partial
    "score/output/symlink-to-input",
    "sft-data/output/hardlink-to-input",
    "synth/output/failed-run-keeps-old",
    "prepare/output/replaces-old",
    "eval/output/is-a-file",
    "score/output/kill-9-mid-write",
    # flags
    "tiny-model/flag/seed=huge",
    "eval/flag/temperature=inf",
    "eval/flag/n=huge",
    "prepare/flag/phases=arabic-digits",
    "synth/flag/n=empty",
    # recipes
    "plan/recipe/duplicate-key",
    "plan/recipe/alias-bomb",
    "train/recipe/batch-size-eight",
    "recipes/copy-over-copy",
    # run state and environment
    "train/state/a-folder",
    "train/state/locked-by-a-live-process",
    # network
    "eval/policy/lone_surrogate",
    "score/judge/http_429",
    "secrets/eval-url-500",
    # eval folders
    "report/run-json-not-json",
    "report/a-file",
    "report/items-missing",
    "report/items-non-utf8",
    "eval/loong-task-in-instruction",
    "eval/resume-other-temperature",
)


def test_the_catalogue_is_large_distinct_and_covers_every_area():
    catalogue = probes.catalogue()
    names = [p.name for p in catalogue]
    assert len(names) == len(set(names)) >= 230
    areas = {p.area for p in catalogue}
    assert areas == {"inputs", "outputs", "flags", "recipes", "state", "network", "eval-folders"}
    assert {p.area for p in catalogue if p.name in SUBSET} == areas
    assert set(SUBSET) <= set(names)
    assert {p.expect for p in catalogue} == {ERROR, OK}


@pytest.mark.slow
def test_a_probe_of_every_area_is_answered_well():
    from probes.runner import run_probes, summary_line

    chosen = [p for p in probes.catalogue() if p.name in SUBSET]
    results = run_probes(chosen, jobs=2)
    assert len(results) == len(SUBSET)
    bad = [f"{r.name}: {r.verdict}: {r.reason}" for r in results if r.verdict != WELL]
    assert not bad, summary_line(results) + "\n" + "\n".join(bad)


# ----------------------------------------------------------------------------- the judge itself


def _probe(expect: str) -> Probe:
    return Probe("unit/x", "unit", "a unit probe", expect, lambda ctx: Cli(("--version",)))


def test_a_traceback_is_poor_whatever_the_exit_code():
    tb = "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'documents'\n"
    verdict, reason = classify(_probe(ERROR), Outcome(1, "", tb))
    assert verdict == POOR and "KeyError: 'documents'" in reason
    verdict, _ = classify(_probe(OK), Outcome(0, tb, ""))  # on stdout too
    assert verdict == POOR
    verdict, _ = classify(_probe(ERROR), Outcome(1, "", "error: fine\n", exception="Traceback ...\nOSError: x"))
    assert verdict == POOR


def test_a_silent_exit_0_on_a_malformed_value_is_poor():
    verdict, reason = classify(_probe(ERROR), Outcome(0, "wrote 3 rows\n", ""))
    assert (verdict, reason) == (POOR, "silent exit 0 on a malformed input")


def test_a_multi_line_or_unnamed_error_is_poor_and_one_named_line_is_well():
    two = "error: rows.jsonl line 3: bad\n  and here is more of it\n"
    assert classify(_probe(ERROR), Outcome(2, "", two))[0] == POOR
    assert classify(_probe(ERROR), Outcome(2, "", "error: one\nerror: two\n"))[0] == POOR
    assert classify(_probe(ERROR), Outcome(1, "", "it broke\n"))[0] == POOR  # no `error:` line at all
    one = "WARNING qwenlong_verl.x: dropped a row\nerror: rows.jsonl line 3: field 'answer': not text\n"
    assert classify(_probe(ERROR), Outcome(2, "", one), names=("rows.jsonl",))[0] == WELL
    verdict, reason = classify(_probe(ERROR), Outcome(2, "", one), names=("other.jsonl",))
    assert verdict == POOR and "names none of" in reason
    usage = "usage: qwenlong-verl prepare [-h]\n       --input FILE\nqwenlong-verl prepare: error: argument --n: bad\n"
    assert error_lines(usage) == (["argument --n: bad"], [])


def test_an_ok_probe_that_exits_non_zero_or_fails_its_check_is_poor():
    assert classify(_probe(OK), Outcome(2, "", "error: refused\n"))[0] == POOR
    verdict, reason = classify(_probe(OK), Outcome(0, "", ""), failed_checks=["a bad row reached out.parquet"])
    assert (verdict, reason) == (POOR, "a bad row reached out.parquet")
    assert classify(_probe(OK), Outcome(0, "", ""), max_seconds=1.0)[0] == WELL
    assert classify(_probe(OK), Outcome(0, "", "", seconds=3.0), max_seconds=1.0)[0] == POOR
    assert classify(_probe(OK), Outcome(None, "", "", seconds=60, timed_out=True))[0] == POOR


def test_a_changed_input_or_a_torn_output_is_data_loss(tmp_path):
    ctx = Ctx(tmp_path)
    ctx.write("rows.jsonl", b'{"a": 1}\n')
    ctx.write("old.jsonl", b'{"b": 1}\n')
    ctx.output("old.jsonl")
    before = snapshot(tmp_path)
    assert data_loss(ctx, before, snapshot(tmp_path)) is None
    ctx.write("old.jsonl", b'{"b": 2}\n{"b": 3}\n')  # a whole new output: fine
    assert data_loss(ctx, before, snapshot(tmp_path)) is None
    ctx.write("old.jsonl", b'{"b": 2}\n{"b"')  # torn
    assert "incomplete" in data_loss(ctx, before, snapshot(tmp_path))
    ctx.write("old.jsonl", b'{"b": 1}\n')
    ctx.write("rows.jsonl", b'{"a": 2}\n')  # an input changed
    assert data_loss(ctx, before, snapshot(tmp_path)) == "input rows.jsonl changed"
    ctx.path("rows.jsonl").unlink()
    assert data_loss(ctx, before, snapshot(tmp_path)) == "input rows.jsonl was deleted"


def test_a_real_run_that_damages_its_input_is_judged_lost(tmp_path):
    """Through ``execute``, as the runner does: a command that rewrites its own input loses data, even when it
    exits 0 and says nothing wrong."""

    def build(ctx: Ctx) -> Custom:
        ctx.write("rows.jsonl", b'{"question": "q"}\n')

        def run(ctx: Ctx) -> Outcome:
            ctx.path("rows.jsonl").write_bytes(b"")
            return Outcome(0, "done\n", "")

        return Custom("a careless command", run)

    result = execute(Probe("unit/careless", "unit", "rewrites its input", OK, build), tmp_path)
    assert (result.verdict, result.reason) == (LOST, "input rows.jsonl changed")


def test_a_leaked_secret_is_poor(tmp_path):
    def build(ctx: Ctx) -> Custom:
        ctx.secret("secretpw")
        return Custom("leaks", lambda ctx: Outcome(1, "", "error: cannot reach http://u:secretpw@host/v1\n"))

    result = execute(Probe("unit/leak", "unit", "prints a password", ERROR, build), tmp_path)
    assert result.verdict == POOR and "secretpw" in result.reason

    def build_file(ctx: Ctx) -> Custom:
        ctx.secret("secretpw")

        def run(ctx: Ctx) -> Outcome:
            ctx.write("ev/run.json", '{"base_url": "http://u:secretpw@host/v1"}')
            return Outcome(0, "", "")

        return Custom("writes it", run)

    result = execute(Probe("unit/leak-file", "unit", "writes a password", OK, build_file), tmp_path)
    assert result.verdict == POOR and "ev/run.json" in result.reason
