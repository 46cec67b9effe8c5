"""Outputs and data loss: output paths that are folders, files, inputs or links to them; runs that fail over an
existing output; ``kill -9`` in the middle of a write; two writers at once.

An input is never touched and an existing output is its old bytes or a whole new output, whatever happens
(docs/architecture.md, "Files are written atomically").
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from probes.core import ERROR, OK, Cli, Ctx, Custom, Outcome, Probe, complete_file, finish, start
from probes.helpers import (
    GOOD,
    NO_RETRY,
    difficulty_argv,
    eval_argv,
    good_rows,
    jsonl_bytes,
    parquet_rows,
    prepare_argv,
    prepared_rows_parquet,
    raw_record,
    score_argv,
    score_record,
    serve,
    sft_argv,
    synth_argv,
)

AREA = "outputs"


@dataclass(frozen=True)
class Writer:
    """A command that writes ``out`` (a file or a folder), with the input it reads (None: it reads none)."""

    command: str
    folder: bool
    argv: Callable[[Ctx, str], list[str]]
    input_name: str | None = None
    input_data: Callable[[], bytes] | None = None
    suffix: str = ".jsonl"
    """What a file output of this writer is named with (sft-data writes parquet only)."""

    def setup(self, ctx: Ctx) -> None:
        if self.input_name:
            ctx.write(self.input_name, self.input_data())


def _raw() -> bytes:
    return jsonl_bytes(good_rows(raw_record))


def _responses() -> bytes:
    return jsonl_bytes(good_rows(score_record))


def _difficulty(ctx: Ctx, out: str) -> list[str]:
    return difficulty_argv(serve(ctx).url, "rows.parquet", 1, "--output", out)


def _eval(ctx: Ctx, out: str) -> list[str]:
    return eval_argv(serve(ctx).url, *NO_RETRY, out=out)


WRITERS = (
    Writer("synth", False, lambda ctx, out: synth_argv(out)),
    Writer("prepare", True, lambda ctx, out: prepare_argv("raw.jsonl", out), "raw.jsonl", _raw),
    Writer("sft-data", False, lambda ctx, out: sft_argv("raw.jsonl", out), "raw.jsonl", _raw, ".parquet"),
    Writer("score", False, lambda ctx, out: score_argv("resp.jsonl", out), "resp.jsonl", _responses),
    Writer("difficulty", False, _difficulty, "rows.parquet", prepared_rows_parquet),
    Writer("eval", True, _eval, "raw.jsonl", _raw),
    Writer("tiny-model", True, lambda ctx, out: ["tiny-model", "--out", out]),
    Writer("recipes-copy", True, lambda ctx, out: ["recipes", "copy", "cpu_smoke", out]),
)


# ----------------------------------------------------------------------------- odd output paths


@dataclass(frozen=True)
class PathKind:
    """An output path that must be refused (or, ``expect`` ok, taken as it is)."""

    name: str
    what: str
    make: Callable[[Ctx, Writer], str]
    """Sets the scene, returns the path to pass."""
    applies: Callable[[Writer], bool]
    expect: str = ERROR


def _existing_folder(ctx: Ctx, w: Writer) -> str:
    ctx.write("taken/keep.txt", "the user's own file\n")
    return "taken"


def _existing_file(ctx: Ctx, w: Writer) -> str:
    ctx.write("taken", "the user's own file\n")
    return "taken"


def _under_file(ctx: Ctx, w: Writer) -> str:
    ctx.write("afile", "a plain file\n")
    return "afile/out" if w.folder else f"afile/out{w.suffix}"


def _the_input(ctx: Ctx, w: Writer) -> str:
    return w.input_name


def _other_spelling(ctx: Ctx, w: Writer) -> str:
    (ctx.root / "sub").mkdir()
    return f"./sub/../{w.input_name}"


def _symlink(ctx: Ctx, w: Writer) -> str:
    os.symlink(w.input_name, ctx.path("link" + Path(w.input_name).suffix))
    return "link" + Path(w.input_name).suffix


def _hardlink(ctx: Ctx, w: Writer) -> str:
    os.link(ctx.path(w.input_name), ctx.path("hard" + Path(w.input_name).suffix))
    return "hard" + Path(w.input_name).suffix


def _input_inside(ctx: Ctx, w: Writer) -> str:
    """The folder holds the input under the very name the writer gives its own file."""
    return "out"


def _odd_name(ctx: Ctx, w: Writer) -> str:
    name = "out dir/\u00e9 \u00fc" + ("" if w.folder else w.suffix)
    ctx.check(lambda c, o: None if o.rc != 0 or c.path(name).exists() else f"{name!r} was not written")
    return name


PATH_KINDS = (
    PathKind("is-a-folder", "the output file is an existing folder", _existing_folder, lambda w: not w.folder),
    PathKind("is-a-file", "the output folder is an existing file", _existing_file, lambda w: w.folder),
    PathKind("under-a-file", "the output's parent is a plain file", _under_file, lambda w: True),
    PathKind("equals-input", "the output is the input file", _the_input, lambda w: w.input_name is not None),
    PathKind(
        "equals-input-spelled-otherwise",
        "the output is the input as ./sub/../NAME",
        _other_spelling,
        lambda w: w.input_name is not None,
    ),
    PathKind(
        "symlink-to-input",
        "the output is a symlink to the input",
        _symlink,
        lambda w: w.input_name is not None and not w.folder,
    ),
    PathKind(
        "hardlink-to-input",
        "the output is a hard link to the input",
        _hardlink,
        lambda w: w.input_name is not None and not w.folder,
    ),
    PathKind(
        "spaces-and-accents", "an output name with spaces and accents (legitimate)", _odd_name, lambda w: True, OK
    ),
)


def _path_probe(w: Writer, kind: PathKind) -> Probe:
    def build(ctx: Ctx) -> Cli:
        w.setup(ctx)
        out = kind.make(ctx, w)
        names = (out, os.path.normpath(out), w.input_name or out, "afile" if kind.name == "under-a-file" else out)
        ctx.error_names(*[n for n in names if n])
        return Cli(tuple(w.argv(ctx, out)))

    return Probe(
        f"{w.command}/output/{kind.name}", AREA, f"{w.command}: {kind.what}", kind.expect, build, timeout_s=120
    )


def _prepare_over_its_input() -> Probe:
    """``prepare --input out/phase1.parquet --output out``: the bin it would write is its input."""

    def build(ctx: Ctx) -> Cli:
        ctx.write("out/phase1.parquet", prepared_rows_parquet())
        ctx.error_names("out/phase1.parquet", "phase1.parquet")
        return Cli(tuple(prepare_argv("out/phase1.parquet", "out")))

    return Probe(
        "prepare/output/input-inside-the-folder",
        AREA,
        "prepare: an input is out/phase1.parquet of the output folder",
        ERROR,
        build,
    )


# ----------------------------------------------------------------------------- existing outputs


def _rows_of(path: Path) -> int:
    if path.suffix == ".parquet":
        return parquet_rows(path)
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())


def whole(rows: int | None = None) -> Callable[[Path], str | None]:
    """Validates a rewritten output file: complete, and (when given) holding ``rows`` rows."""

    def validate(path: Path) -> str | None:
        problem = complete_file(path)
        if problem is None and rows is not None and _rows_of(path) != rows:
            return f"{path.name} holds {_rows_of(path)} rows, not {rows}"
        return problem

    return validate


def prepared_folder(path: Path) -> str | None:
    """A whole ``prepare`` folder: stats.json readable and its row count that of the bins beside it."""
    try:
        stats = json.loads((path / "stats.json").read_text())
        rows = sum(parquet_rows(p) for p in path.glob("phase*.parquet"))
    except Exception as exc:  # any reader failure is an incomplete folder
        return f"{path.name} is not a whole prepare output ({type(exc).__name__}: {str(exc)[:80]})"
    if rows != stats.get("rows_written"):
        return f"{path.name}: the bins hold {rows} rows, stats.json says {stats.get('rows_written')}"
    return None


OLD_ROWS = 1


def _old_output(ctx: Ctx, w: Writer) -> str:
    """An earlier output of the writer (one row, so old and new differ) at ``old``."""
    if w.command == "prepare":
        ctx.write("old/phase1.parquet", prepared_rows_parquet())
        ctx.write("old/stats.json", json.dumps({"rows_written": GOOD, "dropped": {}}))
        ctx.write("old/notes.txt", "the user's notes, kept beside the bins\n")
        return "old"
    name = "old.parquet" if w.command == "sft-data" else "old.jsonl"
    if name.endswith(".parquet"):
        ctx.write(name, prepared_rows_parquet())
    else:
        ctx.write(name, jsonl_bytes(good_rows(score_record, OLD_ROWS)))
    return name


def _declare(ctx: Ctx, w: Writer, out: str) -> None:
    if w.command == "prepare":
        ctx.output(f"{out}/phase1.parquet")
        ctx.output(f"{out}/stats.json")
        return
    ctx.output(out, whole())


OVERWRITERS = [w for w in WRITERS if w.command in ("synth", "prepare", "sft-data", "score")]


def _failed_over_old(w: Writer) -> Probe:
    """A run that fails (its input is UTF-16) leaves the earlier output exactly as it was."""

    def build(ctx: Ctx) -> Cli:
        out = _old_output(ctx, w)
        if w.input_name:
            ctx.write(w.input_name, b"\xff\xfe" + w.input_data().decode().encode("utf-16-le"))
            ctx.error_names(w.input_name)
            return Cli(tuple(w.argv(ctx, out)))
        ctx.error_names("--min-tokens")
        argv = w.argv(ctx, out)
        argv[argv.index("--min-tokens") + 1] = "10"
        return Cli(tuple(argv))

    return Probe(
        f"{w.command}/output/failed-run-keeps-old",
        AREA,
        f"{w.command}: a failing run over an existing output",
        ERROR,
        build,
    )


def _replaced(w: Writer) -> Probe:
    def build(ctx: Ctx) -> Cli:
        w.setup(ctx)
        out = _old_output(ctx, w)
        _declare(ctx, w, out)
        if w.command == "prepare":
            ctx.check(lambda c, o: None if c.path("old/notes.txt").is_file() else "the user's notes.txt went")
        return Cli(tuple(w.argv(ctx, out)))

    return Probe(
        f"{w.command}/output/replaces-old",
        AREA,
        f"{w.command}: a good run over an existing output",
        OK,
        build,
        timeout_s=120,
    )


# ----------------------------------------------------------------------------- kill -9 mid-write


def _writing(ctx: Ctx, out: str) -> bool:
    """A temporary file or folder of an atomic write of ``out`` exists (the writer is in the middle of it)."""
    parent = ctx.path(out).parent
    name = Path(out).name
    try:
        entries = os.listdir(parent)
    except OSError:
        return False
    return any(e.startswith(f".{name}.") or e == f"{name}.partial" for e in entries)


def _kill_mid_write(w: Writer, argv_for: Callable[[Ctx, str], list[str]], validate, big_input: Callable[[], bytes]):
    """Start the writer over an existing output, SIGKILL it the moment its temporary output appears, check the
    output is the old one or a whole new one, then rerun to the end (a rerun must finish the job)."""

    def run(ctx: Ctx) -> Outcome:
        argv = argv_for(ctx, out_name)
        child = start(argv, ctx.cwd)
        started = time.perf_counter()
        caught = False
        while child.poll() is None and time.perf_counter() - started < 90:
            if _writing(ctx, out_name):
                time.sleep(0.02)
                os.killpg(child.pid, signal.SIGKILL)
                caught = True
                break
            time.sleep(0.002)
        killed = finish(child, 30)
        path = ctx.path(out_name)
        old_aside = path.with_name(path.name + ".old")
        if not path.exists() and old_aside.exists():
            path = old_aside  # killed between the two renames of a folder swap: the next writer puts it back
        if not path.exists():
            ctx.lost(f"after kill -9 ({'mid-write' if caught else 'too late'}) {out_name} is gone")
        elif path != old_aside and snapshot_of(path) != before_state[0]:
            problem = validate(path)
            if problem:
                ctx.lost(f"after kill -9 mid-write: {problem}")
        if not caught:
            ctx.check(lambda c, o: f"the writer finished (exit {killed.rc}) before it could be killed mid-write")
        rerun = finish(start(argv, ctx.cwd), 120)
        rerun.stdout = f"killed {'mid-write' if caught else 'late'} after {killed.seconds:.2f} s\n" + rerun.stdout
        return rerun

    out_name = "old" if w.folder else ("old.parquet" if w.command == "sft-data" else "old.jsonl")
    before_state: list = [None]

    def build(ctx: Ctx) -> Custom:
        if w.input_name:
            ctx.write(w.input_name, big_input())
        _old_output(ctx, w)
        before_state[0] = snapshot_of(ctx.path(out_name))
        _declare(ctx, w, out_name)
        return Custom(f"kill -9 mid-write, then rerun: qwenlong-verl {' '.join(argv_for(ctx, out_name))}", run)

    return Probe(
        f"{w.command}/output/kill-9-mid-write",
        AREA,
        f"{w.command}: SIGKILL while replacing an existing output, then rerun",
        OK,
        build,
        timeout_s=240,
    )


def snapshot_of(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _many_raw(n: int) -> Callable[[], bytes]:
    return lambda: jsonl_bytes([{**raw_record(i), "id": f"r{i}"} for i in range(n)])


def _many_responses(n: int) -> Callable[[], bytes]:
    return lambda: jsonl_bytes([score_record(i) for i in range(n)])


WRITER = {w.command: w for w in WRITERS}


def _plotted_prepare(ctx: Ctx, out: str) -> list[str]:
    """``prepare`` with its plot: the plot keeps the folder swap open longer."""
    return prepare_argv("raw.jsonl", out, plot=True)


def _kill_probes() -> list[Probe]:
    synth_n = 120
    return [
        _kill_mid_write(WRITER["synth"], lambda ctx, out: synth_argv(out, synth_n, 4000), whole(synth_n), lambda: b""),
        _kill_mid_write(WRITER["prepare"], _plotted_prepare, prepared_folder, _many_raw(400)),
        _kill_mid_write(WRITER["score"], WRITER["score"].argv, whole(20_000), _many_responses(20_000)),
        _kill_mid_write(WRITER["sft-data"], WRITER["sft-data"].argv, whole(2000), _many_raw(2000)),
    ]


# ----------------------------------------------------------------------------- two writers at once


def _two_at_once(w: Writer, argv_for: Callable[[Ctx, str], list[str]], validate) -> Probe:
    """Two runs writing the same output at the same moment: each finishes or fails with one line, and the output
    is whole."""

    def run(ctx: Ctx) -> Outcome:
        argv = argv_for(ctx, "out")
        children = [start(argv, ctx.cwd), start(argv, ctx.cwd)]
        outcomes = [finish(c, 120) for c in children]
        failed = [o for o in outcomes if o.rc != 0]
        if len(failed) == 2:
            return Outcome(failed[1].rc, failed[1].stdout, failed[1].stderr, max(o.seconds for o in outcomes))
        if ctx.path("out").exists():
            problem = validate(ctx.path("out"))
            if problem:
                ctx.lost(f"two writers at once left an incomplete output: {problem}")
        # the one that failed (if any) must have said why in one line; the other finished
        shown = failed[0] if failed else outcomes[0]
        rc = 0 if not failed or _one_error_line(failed[0]) else failed[0].rc
        return Outcome(rc, shown.stdout, shown.stderr, max(o.seconds for o in outcomes))

    def build(ctx: Ctx) -> Custom:
        w.setup(ctx)
        ctx.output("out", validate)
        return Custom(f"2 x at once: qwenlong-verl {' '.join(argv_for(ctx, 'out'))}", run)

    return Probe(
        f"{w.command}/output/two-writers-at-once",
        AREA,
        f"{w.command}: two runs write one output at the same moment",
        OK,
        build,
        timeout_s=240,
    )


def _one_error_line(outcome: Outcome) -> bool:
    from probes.core import error_lines

    errors, others = error_lines(outcome.stderr)
    return len(errors) == 1 and not others and "Traceback" not in outcome.stderr


def _concurrent_probes() -> list[Probe]:
    return [
        _two_at_once(WRITER["synth"], lambda ctx, out: synth_argv(out, 20, 3000), whole(20)),
        _two_at_once(WRITER["prepare"], _plotted_prepare, prepared_folder),
    ]


def probes() -> list[Probe]:
    found = [_path_probe(w, kind) for w in WRITERS for kind in PATH_KINDS if kind.applies(w)]
    found.append(_prepare_over_its_input())
    found += [_failed_over_old(w) for w in OVERWRITERS]
    found += [_replaced(w) for w in OVERWRITERS]
    found += _kill_probes()
    found += _concurrent_probes()
    return found
