"""What a probe is, how one runs, and how its outcome is judged.

A :class:`Probe` is a table entry: a name, its area, a sentence saying what it does, the outcome a careful tool
gives (``"error"``: refuse with one clear line; ``"ok"``: accept, bad rows counted and left out) and a ``build``
function that writes its files into a fresh folder (through :class:`Ctx`, which records what is input and what
is output) and returns the :class:`Call` to make. :func:`execute` runs one probe; :func:`classify` turns what
happened into a verdict: ``well``, ``poor`` or ``lost`` (data loss).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("qwenlong-verl")

WELL, POOR, LOST = "well", "poor", "lost"
ERROR, OK = "error", "ok"

DEFAULT_TIMEOUT_S = 60.0
"""A probe that has not finished by then hangs (poor); a probe may set its own."""

TRACEBACK = "Traceback (most recent call last)"
_LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")
_ARGPARSE_ERROR = re.compile(r"^qwenlong-verl(?: [\w-]+)?: error: (.+)$")
_USAGE_CONTINUATION = re.compile(r"^\s+\S")
_PROGRESS_BAR = re.compile(r"\d+%\|.*\|.*(it/s|s/it)\]")
"""A progress bar a library draws on stderr (tqdm): output, not a line of the error."""


# ----------------------------------------------------------------------------- what a probe is


@dataclass(frozen=True)
class Cli:
    """Run ``qwenlong-verl ARGV`` in the probe's folder: in this process (fast), or as a real subprocess where the
    probe needs one (environment variables, signals, two at once)."""

    argv: tuple[str, ...]
    env: dict[str, str | None] = field(default_factory=dict)
    """Variables set (None: removed) for this call only."""
    subprocess: bool = False

    @property
    def command(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" if v is not None else f"-u {k}" for k, v in self.env.items())
        return " ".join(filter(None, [env, "qwenlong-verl", shlex.join(self.argv)]))


@dataclass(frozen=True)
class Custom:
    """A probe that drives the command itself (kill it mid-write, start two at once): ``run(ctx) -> Outcome``."""

    command: str
    run: Callable[[Ctx], Outcome]


Call = Cli | Custom


@dataclass(frozen=True)
class Probe:
    """One hostile probe."""

    name: str
    area: str
    what: str
    expect: str
    """``"error"``: a non-zero exit with one ``error:`` line naming the culprit; ``"ok"``: exit 0."""
    build: Callable[[Ctx], Call]
    """Writes the probe's files through ``ctx`` and returns the call to make."""
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self):
        if self.expect not in (ERROR, OK):
            raise ValueError(f"{self.name}: expect must be {ERROR!r} or {OK!r}, got {self.expect!r}")


@dataclass(frozen=True)
class Scene:
    """A hostile thing one command is pointed at (a recipe file, a folder to report on): ``make(ctx)`` sets it up
    and returns the argument naming it; a refusal must name one of ``names``."""

    name: str
    what: str
    make: Callable[[Ctx], str]
    names: tuple[str, ...] = ()
    expect: str = ERROR
    within_s: float | None = None
    """The command must answer this fast (a hostile input is refused quickly, not chewed on)."""

    def set_up(self, ctx: Ctx) -> str:
        target = self.make(ctx)
        ctx.error_names(*self.names)
        if self.within_s:
            ctx.within(self.within_s)
        return target


@dataclass
class Outcome:
    """What one call did."""

    rc: int | None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    timed_out: bool = False
    exception: str | None = None
    """The traceback of an exception that escaped ``main`` (in-process calls)."""


@dataclass
class Result:
    """A probe's outcome and its verdict (what the report shows)."""

    name: str
    area: str
    what: str
    expect: str
    command: str
    rc: int | None
    verdict: str
    reason: str
    seconds: float
    stderr_tail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- the probe's folder


Check = Callable[["Ctx", Outcome], "str | None"]
"""A probe's own check after the run: None when it holds, else what is wrong (a poor verdict)."""

Validate = Callable[[Path], "str | None"]
"""Says why a rewritten output is not complete (None: it is); used for outputs that existed before the run."""


class Ctx:
    """The probe's own temporary folder and what the probe declared about it.

    Every file present when the call starts is an input: it must be byte-identical afterwards, unless declared an
    output (:meth:`output`), which must then be its old bytes or a complete new output.
    """

    def __init__(self, root: Path):
        self.root = root
        self.cwd = root
        self.names: tuple[str, ...] = ()
        self.checks: list[Check] = []
        self.outputs: dict[Path, Validate | None] = {}
        self.secrets: list[str] = []
        self.max_seconds: float | None = None
        self.cleanups: list[Callable[[], None]] = []
        self.losses: list[str] = []

    def path(self, name: str) -> Path:
        return self.root / name

    def write(self, name: str, data: bytes | str) -> Path:
        """An input file (bytes as given; text as UTF-8)."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
        return path

    def lines(self, name: str, rows: Iterable[bytes | str | Any]) -> Path:
        """A jsonl input: bytes and str rows as they are, anything else as JSON."""
        out = bytearray()
        for row in rows:
            if isinstance(row, bytes):
                out += row
            elif isinstance(row, str):
                out += row.encode("utf-8", "surrogatepass")
            else:
                out += json.dumps(row).encode()
            out += b"\n"
        return self.write(name, bytes(out))

    def error_names(self, *names: str) -> None:
        """The error line must contain one of these (the file, row, field, key or flag at fault)."""
        self.names = names

    def check(self, check: Check) -> None:
        self.checks.append(check)

    def output(self, name: str | Path, validate: Validate | None = None) -> Path:
        """``name`` (a file or a folder) may be rewritten, as a whole: old bytes or what ``validate`` accepts
        (default: :func:`complete_file` for each file, by its suffix)."""
        path = self.root / name
        self.outputs[path] = validate
        return path

    def secret(self, text: str) -> None:
        """Must appear in no output stream and no file written by the call."""
        self.secrets.append(text)

    def within(self, seconds: float) -> None:
        """The call must finish this fast (a hostile input is refused or dropped quickly, not chewed on)."""
        self.max_seconds = seconds

    def on_exit(self, cleanup: Callable[[], None]) -> None:
        self.cleanups.append(cleanup)

    def lost(self, reason: str) -> None:
        """Data loss seen during the call (say the state right after a kill), which the end state cannot show."""
        self.losses.append(reason)


# ----------------------------------------------------------------------------- running


class _CurrentStderr(logging.StreamHandler):
    """A log handler writing to whatever ``sys.stderr`` is at the time (each probe's own capture)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def prepare_process() -> None:
    """Once per process that runs probes in-process: logging as the CLI sets it up, bound to the current stderr."""
    root = logging.getLogger()
    if not any(isinstance(h, _CurrentStderr) for h in root.handlers):
        root.addHandler(_CurrentStderr())
    root.setLevel(logging.WARNING)
    os.environ.setdefault("COLUMNS", "160")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


WARM_MODULES = (
    "pyarrow.parquet",
    "qwenlong_verl.driver.cli",
    "qwenlong_verl.driver.data.prepare",
    "qwenlong_verl.driver.data.sft",
    "qwenlong_verl.driver.score",
    "qwenlong_verl.worker.rewards.hybrid",
    "qwenlong_verl.driver.eval.runner",
)
"""What the commands import on first use, paid once per worker before any probe is timed."""


def warm() -> None:
    """Pay the heavy imports once per worker (a probe's time bound is about its input, not about imports)."""
    import importlib

    for name in WARM_MODULES:
        importlib.import_module(name)
    from qwenlong_verl.driver.data.tokenizer import load_tokenizer

    load_tokenizer("builtin")


def _apply_env(env: MutableMapping[str, str], changes: Mapping[str, str | None]) -> None:
    """Set each variable of ``changes`` in ``env``; a None value removes it."""
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value


@contextlib.contextmanager
def _environment(changes: dict[str, str | None]):
    saved = {k: os.environ.get(k) for k in changes}
    try:
        _apply_env(os.environ, changes)
        yield
    finally:
        _apply_env(os.environ, saved)


def run_in_process(argv: Sequence[str], cwd: Path, env: dict[str, str | None] | None = None) -> Outcome:
    """``qwenlong_verl.driver.cli.main(argv)`` with its output captured; an exception that escapes it is kept (a
    traceback the user would see)."""
    from qwenlong_verl.driver.cli import main

    out, err = io.StringIO(), io.StringIO()
    exception = None
    old = os.getcwd()
    start = time.perf_counter()
    os.chdir(cwd)
    try:
        with _environment(env or {}), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(list(argv))
            except SystemExit as exc:  # argparse (its message is already on stderr) or sys.exit
                if isinstance(exc.code, str):
                    err.write(exc.code + "\n")
                    rc = 1
                else:
                    rc = 0 if exc.code is None else int(exc.code)
            except BaseException:
                exception = traceback.format_exc()
                rc = 1
    finally:
        os.chdir(old)
    return Outcome(rc, out.getvalue(), err.getvalue(), time.perf_counter() - start, exception=exception)


def subprocess_env(changes: dict[str, str | None] | None = None) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "160", "HF_HUB_OFFLINE": "1"}
    _apply_env(env, changes or {})
    return env


def start(argv: Sequence[str], cwd: Path, env: dict[str, str | None] | None = None) -> subprocess.Popen:
    """The real console script as a child in its own process group (so a kill reaches its children too)."""
    return subprocess.Popen(
        [str(SCRIPT), *argv],
        cwd=cwd,
        env=subprocess_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(child: subprocess.Popen, timeout_s: float, started: float | None = None) -> Outcome:
    """Wait for ``child``; past ``timeout_s`` it is killed (with its group) and the outcome says it hung."""
    started = time.perf_counter() if started is None else started
    try:
        stdout, stderr = child.communicate(timeout=max(0.1, timeout_s - (time.perf_counter() - started)))
        timed_out = False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        stdout, stderr = child.communicate()
        timed_out = True
    return Outcome(child.returncode, stdout, stderr, time.perf_counter() - started, timed_out=timed_out)


def run_subprocess(
    argv: Sequence[str], cwd: Path, env: dict[str, str | None] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Outcome:
    started = time.perf_counter()
    return finish(start(argv, cwd, env), timeout_s, started)


# ----------------------------------------------------------------------------- snapshots


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``root``: ``relpath -> (kind, content hash / link target)``."""
    found: dict[str, tuple[str, str]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_file():
                found[rel] = ("file", _digest(path))
            elif path.is_dir():
                found[rel] = ("dir", "")
        dirs[:] = [d for d in dirs if not Path(folder, d).is_symlink()]
    return found


def complete_file(path: Path) -> str | None:
    """Why ``path`` is not a whole file of its kind (by suffix), or None: parquet readable, jsonl every line JSON
    and a final newline, json parseable."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_table(path)
        elif suffix == ".jsonl":
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                return f"{path.name} ends in a torn line"
            for line in data.splitlines():
                if line.strip():
                    json.loads(line)
        elif suffix == ".json":
            json.loads(path.read_bytes())
    except Exception as exc:  # any reader failure means the file is not whole
        return f"{path.name} is not a whole {suffix} file ({type(exc).__name__}: {str(exc)[:80]})"
    return None


def _owner(rel: str, outputs: Iterable[str]) -> str | None:
    for out in outputs:
        if rel == out or rel.startswith(out + os.sep):
            return out
    return None


def data_loss(ctx: Ctx, before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str]]) -> str | None:
    """What the call destroyed: an input changed or gone, or a declared output that is neither its old bytes nor a
    complete new output; None when nothing was lost."""
    if ctx.losses:
        return ctx.losses[0]
    outputs = {str(p.relative_to(ctx.root)): v for p, v in ctx.outputs.items()}
    touched: dict[str, list[str]] = {}
    for rel, entry in before.items():
        now = after.get(rel)
        if now == entry:
            continue
        owner = _owner(rel, outputs)
        if owner is None:
            if entry[0] == "dir" and now is not None:
                continue
            return f"input {rel} {'was deleted' if now is None else 'changed'}"
        touched.setdefault(owner, []).append(rel)
    for owner in touched:
        path = ctx.root / owner
        if not path.exists():
            return f"existing output {owner} was deleted and nothing complete replaced it"
        validate = outputs[owner]
        if validate is not None:
            problem = validate(path)
        else:
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            problem = next(filter(None, map(complete_file, files)), None)
        if problem:
            return f"existing output {owner} was overwritten with an incomplete one: {problem}"
    return None


def leaked_secret(ctx: Ctx, outcome: Outcome) -> str | None:
    """Where a declared secret shows up: an output stream or a file the call wrote or changed."""
    if not ctx.secrets:
        return None
    for secret in ctx.secrets:
        for stream, text in (("stdout", outcome.stdout), ("stderr", outcome.stderr), ("traceback", outcome.exception)):
            if text and secret in text:
                return f"the secret {secret!r} appears in {stream}"
    return None


def leaked_into_files(ctx: Ctx, before: dict[str, tuple[str, str]]) -> str | None:
    needles = [s.encode() for s in ctx.secrets]
    if not needles:
        return None
    for path in ctx.root.rglob("*"):
        rel = str(path.relative_to(ctx.root))
        if path.is_symlink() or not path.is_file():
            continue
        if before.get(rel) == ("file", _digest(path)):
            continue  # an input the probe wrote itself may hold the secret
        data = path.read_bytes()
        for needle in needles:
            if needle in data:
                return f"the secret {needle.decode()!r} was written to {rel}"
    return None


# ----------------------------------------------------------------------------- judging


def error_lines(stderr: str) -> tuple[list[str], list[str]]:
    """``(error lines, other lines)`` of stderr, log records and blank lines left out; argparse's usage block
    counts as part of its error."""
    errors, others = [], []
    usage = False
    for line in stderr.splitlines():
        if not line.strip() or _LOG_LINE.match(line) or _PROGRESS_BAR.search(line):
            usage = False
            continue
        if line.startswith("usage: "):
            usage = True
            continue
        if usage and _USAGE_CONTINUATION.match(line):
            continue
        usage = False
        if line.startswith("error: "):
            errors.append(line[len("error: ") :])
        elif m := _ARGPARSE_ERROR.match(line):
            errors.append(m.group(1))
        else:
            others.append(line)
    return errors, others


def classify(
    probe: Probe,
    outcome: Outcome,
    *,
    names: Sequence[str] = (),
    loss: str | None = None,
    leak: str | None = None,
    failed_checks: Sequence[str] = (),
    max_seconds: float | None = None,
) -> tuple[str, str]:
    """``(verdict, reason)`` of one run: ``lost`` when anything was destroyed, ``poor`` for a hang, a traceback, a
    leaked secret, the wrong outcome or an unclear error, else ``well``."""
    if loss:
        return LOST, loss
    if outcome.timed_out:
        return POOR, f"hang: no answer within {outcome.seconds:.0f} s"
    if outcome.exception or TRACEBACK in outcome.stdout or TRACEBACK in outcome.stderr:
        text = outcome.exception or (outcome.stderr if TRACEBACK in outcome.stderr else outcome.stdout)
        last = [line for line in text.strip().splitlines() if line.strip()]
        return POOR, f"traceback: {last[-1].strip()[:160] if last else '?'}"
    if leak:
        return POOR, leak
    errors, others = error_lines(outcome.stderr)
    if probe.expect == OK:
        if outcome.rc != 0:
            said = errors[0] if errors else (others[0] if others else "no message")
            return POOR, f"refused a legitimate input (exit {outcome.rc}): {said[:160]}"
    else:
        if outcome.rc == 0:
            return POOR, "silent exit 0 on a malformed input"
        if outcome.rc is None or outcome.rc < 0:
            return POOR, f"killed by signal {-(outcome.rc or 0)}"
        if not errors:
            said = others[0] if others else "nothing on stderr"
            return POOR, f"exit {outcome.rc} without an `error:` line ({said[:120]})"
        if len(errors) > 1 or others:
            extra = others[0] if others else errors[1]
            return POOR, f"multi-line error: {errors[0][:80]} / {extra[:80]}"
        if names and not any(n in errors[0] for n in names):
            return POOR, f"error names none of {', '.join(map(repr, names))}: {errors[0][:160]}"
    if failed_checks:
        return POOR, "; ".join(failed_checks)
    if max_seconds is not None and outcome.seconds > max_seconds:
        return POOR, f"took {outcome.seconds:.1f} s (bound {max_seconds:.0f} s)"
    if probe.expect == ERROR:
        return WELL, f"exit {outcome.rc}: {errors[0][:200]}"
    return WELL, "exit 0"


def execute(probe: Probe, workdir: Path | None = None, on_start: Callable[[str], None] | None = None) -> Result:
    """Run one probe in a fresh temporary folder and judge it; ``on_start(command)`` once it is set up."""
    with tempfile.TemporaryDirectory(prefix="probe-", dir=workdir) as tmp:
        ctx = Ctx(Path(tmp))
        try:
            call = probe.build(ctx)
        except Exception:
            return Result(
                probe.name,
                probe.area,
                probe.what,
                probe.expect,
                "?",
                None,
                POOR,
                "probe set-up failed: " + traceback.format_exc().strip().splitlines()[-1],
                0.0,
            )
        before = snapshot(ctx.root)
        if on_start is not None:
            on_start(call.command)
        try:
            if isinstance(call, Cli):
                if call.subprocess:
                    outcome = run_subprocess(call.argv, ctx.cwd, call.env, probe.timeout_s)
                else:
                    outcome = run_in_process(call.argv, ctx.cwd, call.env)
            else:
                outcome = call.run(ctx)
        finally:
            for cleanup in reversed(ctx.cleanups):
                with contextlib.suppress(Exception):
                    cleanup()
        after = snapshot(ctx.root)
        failed = [m for m in (check(ctx, outcome) for check in ctx.checks) if m]
        verdict, reason = classify(
            probe,
            outcome,
            names=ctx.names,
            loss=data_loss(ctx, before, after),
            leak=leaked_secret(ctx, outcome) or leaked_into_files(ctx, before),
            failed_checks=failed,
            max_seconds=ctx.max_seconds,
        )
        tail = "\n".join(outcome.stderr.strip().splitlines()[-3:])
        return Result(
            probe.name,
            probe.area,
            probe.what,
            probe.expect,
            call.command,
            outcome.rc,
            verdict,
            reason,
            round(outcome.seconds, 2),
            tail[-600:],
        )
