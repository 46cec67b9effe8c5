"""Eval folders: ``report`` on folders that are not eval or training outputs, eval folders damaged by hand or by a
kill, resuming with other settings, and benchmark rows at the edge of their schema (Loong rows that ask in
``instruction``).

Per docs/eval.md: a folder is resumed only with the settings it was sampled with; a torn last line (a killed
append) is cut, never fatal; anything else wrong with a folder is one line naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from probes.core import ERROR, OK, Cli, Ctx, Probe, Scene, run_in_process
from probes.helpers import NO_RETRY, eval_argv, good_rows, jsonl_bytes, raw_record, serve

AREA = "eval-folders"


def make_eval_folder(ctx: Ctx, out: str = "ev") -> str:
    """A real, finished eval folder (two items, one sample each) made in-process against a fake server."""
    server = serve(ctx)
    ctx.write("raw.jsonl", jsonl_bytes(good_rows(raw_record, 2)))
    outcome = run_in_process(eval_argv(server.url, out=out), ctx.root)
    if outcome.rc != 0:
        raise RuntimeError(f"could not make the eval folder: {outcome.stderr[-300:]}")
    return server.url


def _finished(ctx: Ctx) -> str:
    """A finished eval folder, ``ev``, that ``report`` may write its report into."""
    make_eval_folder(ctx)
    ctx.output("ev/report")
    return "ev"


def _damaged(name: str, edit: Callable[[bytes], bytes] | None) -> Callable[[Ctx], str]:
    """A finished eval folder whose file ``name`` is rewritten by ``edit`` (None: deleted)."""

    def make(ctx: Ctx) -> str:
        target = _finished(ctx)
        path = ctx.path(f"{target}/{name}")
        if edit is None:
            path.unlink()
        else:
            path.write_bytes(edit(path.read_bytes()))
        return target

    return make


def _plain(setup: Callable[[Ctx], None], target: str) -> Callable[[Ctx], str]:
    def make(ctx: Ctx) -> str:
        setup(ctx)
        return target

    return make


def _training_folder(state: bytes) -> Callable[[Ctx], str]:
    def make(ctx: Ctx) -> str:
        ctx.write("run/train_state.json", state)
        return "run"

    return make


FOLDER_KINDS = (
    Scene("empty-folder", "an empty folder", _plain(lambda c: c.path("d").mkdir(), "d"), ("d",)),
    Scene("missing-folder", "a folder that does not exist", _plain(lambda c: None, "nope"), ("nope",)),
    Scene("a-file", "a plain file", _plain(lambda c: c.write("f.txt", "x\n"), "f.txt"), ("f.txt",)),
    Scene(
        "unrelated-folder",
        "a folder of someone's photos",
        _plain(lambda c: c.write("pics/a.jpg", b"\xff\xd8"), "pics"),
        ("pics",),
    ),
    Scene("control", "a finished eval folder (control)", _finished, expect=OK),
    Scene("run-json-not-json", "run.json is not JSON", _damaged("run.json", lambda b: b"{oops"), ("run.json",)),
    Scene("run-json-a-list", "run.json is a JSON list", _damaged("run.json", lambda b: b"[1]"), ("run.json",)),
    Scene(
        "items-bad-line",
        "items.jsonl has a line that is not JSON",
        _damaged("items.jsonl", lambda b: b + b"{not json\n"),
        ("items.jsonl",),
    ),
    Scene(
        "items-non-utf8",
        "items.jsonl has a latin-1 byte",
        _damaged("items.jsonl", lambda b: b.replace(b"Xland", b"Xl\xe4nd", 1)),
        ("items.jsonl",),
    ),
    Scene(
        "generations-torn-tail",
        "generations.jsonl ends in a torn line (a killed append)",
        _damaged("generations.jsonl", lambda b: b + b'{"id": "probe/x", "k": 0, "sta'),
        expect=OK,
    ),
    Scene(
        "scores-torn-tail",
        "scores.jsonl ends in a torn line (a killed append)",
        _damaged("scores.jsonl", lambda b: b + b'{"id": "pro'),
        expect=OK,
    ),
    Scene(
        "scores-a-list-row",
        "scores.jsonl has a row that is a JSON list",
        _damaged("scores.jsonl", lambda b: b"[1, 2]\n" + b),
        ("scores.jsonl",),
    ),
    Scene(
        "generations-utf16",
        "generations.jsonl re-saved as UTF-16",
        _damaged("generations.jsonl", lambda b: b"\xff\xfe" + b.decode().encode("utf-16-le")),
        ("generations.jsonl",),
    ),
    Scene("items-missing", "items.jsonl deleted", _damaged("items.jsonl", None), ("items.jsonl",)),
    Scene(
        "training-state-broken",
        "a training folder whose train_state.json is not JSON",
        _training_folder(b"{nope"),
        ("train_state.json",),
    ),
    Scene(
        "training-no-phase-yet",
        "a training folder whose state lists no phase yet",
        _training_folder(json.dumps({"version": 1, "phases": {}, "prepared": None}).encode()),
        ("train_state.json",),
    ),
    Scene(
        "run-json-non-utf8",
        "run.json holds a latin-1 byte",
        _damaged("run.json", lambda b: b.replace(b'"policy"', b'"p\xf6licy"', 1)),
        ("run.json",),
    ),
)


def _report_probe(kind: Scene) -> Probe:
    def build(ctx: Ctx) -> Cli:
        return Cli(("report", kind.set_up(ctx)))

    return Probe(f"report/{kind.name}", AREA, f"report: {kind.what}", kind.expect, build, timeout_s=90)


def _compare_probe(name: str, what: str, other: Callable[[Ctx], str], expect: str, names: tuple[str, ...]) -> Probe:
    def build(ctx: Ctx) -> Cli:
        ctx.error_names(*names)
        return Cli(("report", _finished(ctx), "--compare", other(ctx)))

    return Probe(f"report/compare-{name}", AREA, f"report --compare {what}", expect, build, timeout_s=90)


def _resume_probe(name: str, what: str, extra: tuple[str, ...], expect: str, names: tuple[str, ...]) -> Probe:
    """Resume a finished eval folder with the same or other settings."""

    def build(ctx: Ctx) -> Cli:
        url = make_eval_folder(ctx)
        ctx.output("ev")
        ctx.error_names(*names)
        return Cli(tuple(eval_argv(url, *extra)))

    return Probe(f"eval/resume-{name}", AREA, f"eval resumed {what}", expect, build, timeout_s=90)


LOONG = {
    "id": "l1",
    "type": "paper",
    "level": 4,
    "set": 1,
    "docs": ["Paper one says Yville. " * 20],
    "answer": "Yville",
}


def _loong_probe(name: str, what: str, row: dict, expect: str, names: tuple[str, ...]) -> Probe:
    def build(ctx: Ctx) -> Cli:
        server = serve(ctx)
        ctx.write("loong.jsonl", jsonl_bytes([row, {**row, "id": "l2"}]))
        ctx.error_names(*names)
        if expect == OK:
            ctx.check(lambda c, o: None if o.rc or c.path("ev/items.jsonl").is_file() else "no items recorded")
        return Cli(tuple(eval_argv(server.url, *NO_RETRY, bench="loong=loong.jsonl")))

    return Probe(f"eval/loong-{name}", AREA, f"eval on Loong rows: {what}", expect, build, timeout_s=90)


def probes() -> list[Probe]:
    found = [_report_probe(k) for k in FOLDER_KINDS]
    found += [
        _compare_probe("missing", "a folder that does not exist", lambda ctx: "nope", ERROR, ("nope",)),
        _compare_probe(
            "training",
            "a training folder",
            _training_folder(b'{"version": 1, "phases": {}}'),
            ERROR,
            ("run", "--compare"),
        ),
        _compare_probe("itself", "the same folder (control)", lambda ctx: "ev", OK, ()),
        _resume_probe("same-settings", "with the same settings (control)", (), OK, ()),
        _resume_probe(
            "other-temperature", "with another --temperature", ("--temperature", "0.2"), ERROR, ("temperature",)
        ),
        _resume_probe("other-model", "with another --model", ("--model", "other"), ERROR, ("model", "other")),
        _loong_probe(
            "task-in-instruction",
            'question "" and the task in instruction',
            {**LOONG, "question": "", "instruction": "Which city do the papers name?"},
            OK,
            (),
        ),
        _loong_probe(
            "both-empty",
            "question and instruction both empty",
            {**LOONG, "question": "", "instruction": " "},
            ERROR,
            ("question", "instruction"),
        ),
        _loong_probe("level-nine", "level 9", {**LOONG, "question": "q?", "level": 9}, ERROR, ("level",)),
    ]
    return found
