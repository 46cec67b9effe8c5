"""Run state and environment: a hand-edited ``train_state.json``, a run folder locked by a live process, and the
environment variables the CLI reads (``QWENLONG_VERL_LAUNCHER``, ``QWENLONG_JUDGE_URLS``, ``QWENLONG_EVAL_DATA``).

No probe here trains: ``train`` runs with ``--dry-run``, or with a launcher that is a harmless stand-in, so a
check that failed to stop it would still start nothing real.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from probes.core import ERROR, OK, Cli, Ctx, Custom, Outcome, Probe, finish, start
from probes.helpers import eval_argv, good_rows, jsonl_bytes, score_record
from probes.servers import closed_port

AREA = "state"
RUN = "run"
STATE = f"{RUN}/train_state.json"
SAFE_LAUNCHER = f"{sys.executable} -c 'import sys; sys.exit(3)'"
"""Stands in for veRL in the probes that run ``train`` without ``--dry-run``: exits 3 at once."""


def _train(*extra: str, dry_run: bool = True, recipe: str = "cpu_smoke") -> tuple[str, ...]:
    return ("train", recipe, "--output-dir", RUN, *(["--dry-run"] if dry_run else []), *extra)


def _dry_run_no_data(ctx: Ctx) -> tuple[str, ...]:
    """A dry run that builds no data (the phases name their files): the launcher is the first thing it needs."""
    return _train(recipe="smoke_1gpu")


@dataclass(frozen=True)
class StateKind:
    """A ``train_state.json`` as bytes (None: a folder in its place)."""

    name: str
    what: str
    content: bytes | None
    names: tuple[str, ...] = ("train_state.json",)


def _state(phases: object, version: int = 1) -> bytes:
    return json.dumps({"version": version, "phases": phases, "prepared": None}).encode()


STATE_KINDS = (
    StateKind("not-json", "train_state.json is not JSON", b"{not json"),
    StateKind("empty", "train_state.json is empty", b""),
    StateKind("non-utf8", "train_state.json holds a latin-1 byte", b'{"version": 1, "phases": {"ph\xe9": {}}}'),
    StateKind("a-list", "train_state.json is a JSON list", b"[1, 2]"),
    StateKind("phases-a-string", "phases is a string", _state("phase1")),
    StateKind("phase-entry-a-number", "phases.phase1 is 5", _state({"phase1": 5})),
    StateKind(
        "unknown-status", "phases.phase1.status is 'halfway'", _state({"phase1": {"status": "halfway"}}), ("halfway",)
    ),
    StateKind(
        "wrong-type",
        "phases.phase1.launches is 'two'",
        _state({"phase1": {"status": "training", "launches": "two"}}),
        ("launches",),
    ),
    StateKind("other-version", "a state of version 99", _state({}, version=99), ("version", "99")),
    StateKind(
        "done-without-outputs",
        "phase1 marked done, its model missing",
        _state({"phase1": {"status": "done", "model_out": "run/phase1/actor_hf"}}),
        ("phase1", "--from-phase"),
    ),
    StateKind(
        "done-without-model-key",
        "phase1 marked done with no model_out",
        _state({"phase1": {"status": "done"}}),
        ("phase1", "model_out"),
    ),
    StateKind("a-folder", "train_state.json is a folder", None),
)


def _state_probe(kind: StateKind) -> Probe:
    def build(ctx: Ctx) -> Cli:
        if kind.content is None:
            ctx.path(STATE).mkdir(parents=True)
        else:
            ctx.write(STATE, kind.content)
        ctx.error_names(*kind.names)
        return Cli(_train())

    return Probe(f"train/state/{kind.name}", AREA, f"train --dry-run: {kind.what}", ERROR, build, timeout_s=120)


# ----------------------------------------------------------------------------- locks


def _hold_lock(ctx: Ctx) -> subprocess.Popen:
    """A live process holding the run folder's lock until the probe ends."""
    code = (
        "import sys, time; from pathlib import Path; from qwenlong_verl.driver.run.state import OutputLock\n"
        f"with OutputLock(Path({RUN!r})):\n    print('locked', flush=True); time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ctx.root, stdout=subprocess.PIPE, text=True)
    ctx.on_exit(lambda: (holder.kill(), holder.wait()))
    if holder.stdout.readline().strip() != "locked":
        raise RuntimeError("the lock holder did not start")
    return holder


def _locked_train(ctx: Ctx) -> Custom:
    def run(ctx: Ctx) -> Outcome:
        holder = _hold_lock(ctx)
        ctx.error_names(str(holder.pid), RUN)
        return finish(start(_train(dry_run=False), ctx.cwd, {"QWENLONG_VERL_LAUNCHER": SAFE_LAUNCHER}), 60)

    return Custom("qwenlong-verl train cpu_smoke --output-dir run   (while another process holds run/.train.lock)", run)


def _lock_probe() -> Probe:
    def build(ctx: Ctx) -> Custom:
        ctx.within(20)
        return _locked_train(ctx)

    return Probe(
        "train/state/locked-by-a-live-process",
        AREA,
        "train while a live process holds the run's lock",
        ERROR,
        build,
        timeout_s=90,
    )


# ----------------------------------------------------------------------------- environment


@dataclass(frozen=True)
class EnvKind:
    name: str
    what: str
    env: dict[str, str | None]
    argv: Callable[[Ctx], tuple[str, ...]]
    expect: str
    names: tuple[str, ...]


def _responses(ctx: Ctx) -> tuple[str, ...]:
    rows = [{**r, "response": "Therefore, the answer is the capital."} for r in good_rows(score_record)]
    ctx.write("resp.jsonl", jsonl_bytes(rows))
    return ("score", "--input", "resp.jsonl")


ENV_KINDS = (
    EnvKind(
        "launcher-empty",
        'QWENLONG_VERL_LAUNCHER=""',
        {"QWENLONG_VERL_LAUNCHER": ""},
        _dry_run_no_data,
        ERROR,
        ("QWENLONG_VERL_LAUNCHER",),
    ),
    EnvKind(
        "launcher-unclosed-quote",
        "QWENLONG_VERL_LAUNCHER with an unclosed quote",
        {"QWENLONG_VERL_LAUNCHER": "python -m 'verl.trainer.main_ppo"},
        _dry_run_no_data,
        ERROR,
        ("QWENLONG_VERL_LAUNCHER",),
    ),
    EnvKind(
        "launcher-no-such-program",
        "QWENLONG_VERL_LAUNCHER names a program that does not exist (not dry-run)",
        {"QWENLONG_VERL_LAUNCHER": "/nonexistent/verl-launcher"},
        lambda ctx: _train(dry_run=False),
        ERROR,
        ("/nonexistent/verl-launcher",),
    ),
    EnvKind(
        "launcher-fails",
        "the launched phase exits 3 (not dry-run)",
        {"QWENLONG_VERL_LAUNCHER": SAFE_LAUNCHER},
        lambda ctx: _train(dry_run=False),
        ERROR,
        ("phase 1", "phase1"),
    ),
    EnvKind(
        "from-phase-2-first",
        "--from-phase 2 before phase 1 ran (not dry-run)",
        {"QWENLONG_VERL_LAUNCHER": SAFE_LAUNCHER},
        lambda ctx: _train("--from-phase", "2", dry_run=False),
        ERROR,
        ("phase1", "--from-phase"),
    ),
    EnvKind(
        "judge-urls-not-a-url",
        "QWENLONG_JUDGE_URLS=judge-host:8000 (no scheme)",
        {"QWENLONG_JUDGE_URLS": "judge-host:8000"},
        _responses,
        ERROR,
        ("QWENLONG_JUDGE_URLS", "judge-host"),
    ),
    EnvKind("judge-urls-unreachable", "QWENLONG_JUDGE_URLS at a closed port", {}, _responses, ERROR, ("judge",)),
    EnvKind(
        "eval-data-a-file",
        "QWENLONG_EVAL_DATA names a file",
        {},
        lambda ctx: _eval_data_file(ctx),
        ERROR,
        ("hotpotqa",),
    ),
)


def _eval_data_file(ctx: Ctx) -> tuple[str, ...]:
    ctx.write("data.txt", "not a folder\n")
    return tuple(eval_argv(f"http://127.0.0.1:{closed_port()}/v1", bench="hotpotqa"))


def _env_probe(kind: EnvKind) -> Probe:
    def build(ctx: Ctx) -> Cli:
        env = dict(kind.env)
        if kind.name == "judge-urls-unreachable":
            env["QWENLONG_JUDGE_URLS"] = f"http://127.0.0.1:{closed_port()}/v1"
        if kind.name == "eval-data-a-file":
            env["QWENLONG_EVAL_DATA"] = str(ctx.path("data.txt"))
        ctx.error_names(*kind.names)
        return Cli(kind.argv(ctx), env=env, subprocess=True)

    return Probe(f"env/{kind.name}", AREA, kind.what, kind.expect, build, timeout_s=150)


def probes() -> list[Probe]:
    return [
        *(_state_probe(k) for k in STATE_KINDS),
        _lock_probe(),
        *(_env_probe(k) for k in ENV_KINDS),
        Probe(
            "train/state/control-dry-run",
            AREA,
            "train --dry-run on a fresh folder (control)",
            OK,
            lambda ctx: Cli(_train()),
            timeout_s=120,
        ),
    ]
