"""``common.files`` against real files and real ``kill -9``: a reader sees the old output or the new one, whole.

Children write through the helper in a loop and are killed with SIGKILL at random moments; the parent then
reads what is on disk. Nothing is mocked: real processes, real renames, real file modes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.common.files import (
    atomic_folder,
    atomic_write,
    atomic_writer,
    recover_folder,
    refuse_overwriting,
    write_with,
)

ROOT = Path(__file__).resolve().parents[2]
SIZE = 1 << 18
"""Bytes per generation: large enough that a write takes several syscalls (a torn one would show)."""

FILE_WRITER = textwrap.dedent(
    """
    import sys
    from qwenlong_verl.common.files import atomic_write, atomic_writer, write_with

    path, size = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        body = f"{n:08d}" * (size // 8)
        if n % 3 == 0:
            atomic_write(path, body)
        elif n % 3 == 1:
            with atomic_writer(path, "wb") as handle:
                for i in range(0, len(body), 4096):
                    handle.write(body[i : i + 4096].encode())
                    handle.flush()
        else:
            def chunks(tmp):
                with open(tmp, "w") as handle:
                    for i in range(0, len(body), 4096):
                        handle.write(body[i : i + 4096])
                        handle.flush()
            write_with(path, chunks)
    """
)

FOLDER_WRITER = textwrap.dedent(
    """
    import sys
    from qwenlong_verl.common.files import atomic_folder

    path, size = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        with atomic_folder(path) as new:
            for name in ("a.txt", "b.txt", "sub/c.txt"):
                (new / name).parent.mkdir(exist_ok=True)
                with open(new / name, "w") as handle:
                    for _ in range(size // 4096):
                        handle.write(f"{n:08d}" * 512)
                        handle.flush()
    """
)


def start(script: str, *args: str) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=dict(os.environ)
    )
    assert child.stdout.readline().strip() == "ready"
    return child


def kill(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL


def generation(text: str, size: int = SIZE) -> int:
    """The generation a whole file holds; fails on a torn or mixed one."""
    assert len(text) == size, f"torn file: {len(text)} of {size} bytes"
    head = text[:8]
    assert text == head * (size // 8), "a file mixing two writes"
    return int(head)


def kill_loop(rounds: int, script: str, target: Path, check, max_delay: float = 0.05) -> None:
    """Start a writer, kill it at a random moment, ``check`` the target; ``rounds`` times (a count, not a time:
    a loaded machine gets as many kills as an idle one)."""
    rng = random.Random(0)
    for _ in range(rounds):
        child = start(script, str(target), str(SIZE))
        time.sleep(rng.uniform(0, max_delay))
        kill(child)
        check()


@pytest.mark.slow
def test_a_file_is_old_or_new_whole_after_sigkill_at_random_moments(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("initial")
    seen, torn_writes = set(), []

    def check():
        text = target.read_text()
        seen.add("initial" if text == "initial" else generation(text))
        leftovers = [p for p in tmp_path.iterdir() if p != target]  # a write the kill cut short
        assert all(p.name.startswith(".out.txt.") and p.name.endswith(".tmp.txt") for p in leftovers), leftovers
        torn_writes.append(len(leftovers))
        for p in leftovers:
            p.unlink()

    kill_loop(12, FILE_WRITER, target, check)
    assert any(torn_writes) and len(seen) > 2, (torn_writes, seen)  # kills landed inside writes and between them


@pytest.mark.slow
def test_a_folder_is_swapped_whole_after_sigkill_and_recovered(tmp_path):
    target = tmp_path / "report"
    target.mkdir()
    (target / "old.txt").write_text("previous report")
    states, cut_short = set(), []

    def check():
        if target.exists():  # what a reader sees, before any recovery: a whole folder
            states.add(whole_folder(target))
        cut_short.append((tmp_path / "report.partial").exists())
        recover_folder(target)  # what the next writer does first
        whole_folder(target)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]

    kill_loop(12, FOLDER_WRITER, target, check, max_delay=0.1)
    assert any(cut_short) and len(states) > 1, (cut_short, states)


def whole_folder(folder: Path) -> str | int:
    """The previous report, or one generation in all three files; fails on anything mixed or missing."""
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if names == ["old.txt"]:
        return "old"
    assert names == ["a.txt", "b.txt", "sub/c.txt"], names
    generations = {generation((folder / name).read_text(), SIZE // 4096 * 4096) for name in names}
    assert len(generations) == 1, generations
    return generations.pop()


def test_recover_folder_finishes_each_state_a_kill_can_leave(tmp_path):
    target, old, partial = tmp_path / "out", tmp_path / "out.old", tmp_path / "out.partial"
    # killed between the two renames: the old folder goes back, the unpublished new one goes
    old.mkdir()
    (old / "f").write_text("old")
    partial.mkdir()
    (partial / "f").write_text("new")
    recover_folder(target)
    assert (target / "f").read_text() == "old" and not old.exists() and not partial.exists()
    # killed while deleting the old folder after the swap: the new one stays, the stale old one goes
    old.mkdir()
    (old / "g").write_text("stale")
    recover_folder(target)
    assert (target / "f").read_text() == "old" and not old.exists()
    # killed while writing: the half-written folder goes, the target is untouched
    partial.mkdir()
    (partial / "half").write_text("x")
    recover_folder(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (target / "f").read_text() == "old"
    recover_folder(tmp_path / "absent")  # nothing to do
    assert not (tmp_path / "absent").exists()


def test_an_error_keeps_the_old_file_and_folder_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "f.json"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("half")
        raise RuntimeError("writer failed")

    def failing(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("library writer failed")

    with pytest.raises(RuntimeError):
        write_with(target, failing)
    folder = tmp_path / "d"
    with atomic_folder(folder) as new:
        (new / "x").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(folder) as new:
        (new / "x").write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old" and (folder / "x").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f.json"]
    with pytest.raises(ValueError, match="mode w or wb"), atomic_writer(target, "a"):
        pass


def test_files_get_the_mode_open_gives(tmp_path):
    plain = tmp_path / "plain.txt"
    with open(plain, "w") as handle:
        handle.write("x")
    expected = stat.S_IMODE(plain.stat().st_mode)
    atomic_write(tmp_path / "a.txt", "x")
    write_with(tmp_path / "b.parquet", lambda tmp: Path(tmp).write_text("x"))
    with atomic_writer(tmp_path / "c.bin", "wb") as handle:
        handle.write(b"x")
    for name in ("a.txt", "b.parquet", "c.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name
    # open() keeps the mode of a file it overwrites; so does a replacement
    os.chmod(plain, 0o600)
    atomic_write(plain, "y")
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600 and plain.read_text() == "y"
    os.chmod(plain, 0o640)
    write_with(plain, lambda tmp: Path(tmp).write_text("z"))
    assert stat.S_IMODE(plain.stat().st_mode) == 0o640
    # a new folder gets the mode mkdir gives
    (tmp_path / "made").mkdir()
    with atomic_folder(tmp_path / "swapped") as new:
        (new / "f").write_text("x")
    assert stat.S_IMODE((tmp_path / "swapped").stat().st_mode) == stat.S_IMODE((tmp_path / "made").stat().st_mode)


def test_writing_through_a_symlink_replaces_its_target_like_open(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    atomic_write(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_write_with_keeps_the_suffix_for_writers_that_pick_the_format_by_it(tmp_path):
    names = []
    out = write_with(tmp_path / "plot.png", lambda tmp: names.append(Path(tmp).suffix) or "done")
    assert names == [".png"] and out == "done"


def test_atomic_folder_keeps_entries_that_are_not_the_writers(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "input.jsonl").write_text("mine")
    (folder / "phase1.parquet").write_text("old bin")
    (folder / "phase3.parquet").write_text("stale bin")
    (folder / "notes").mkdir()
    (folder / "notes" / "n.txt").write_text("kept")
    with atomic_folder(folder, keep=lambda name: not name.startswith("phase")) as new:
        (new / "phase1.parquet").write_text("new bin")
    assert sorted(p.name for p in folder.iterdir()) == ["input.jsonl", "notes", "phase1.parquet"]
    assert (folder / "phase1.parquet").read_text() == "new bin" and (folder / "input.jsonl").read_text() == "mine"
    assert (folder / "notes" / "n.txt").read_text() == "kept"


def test_refuse_overwriting_an_input_by_path_link_or_folder(tmp_path):
    src = tmp_path / "in.parquet"
    src.write_text("data")
    refuse_overwriting(tmp_path / "out.parquet", [src])  # another file: fine
    refuse_overwriting(tmp_path / "new" / "out.parquet", [src])  # an output that does not exist yet: fine
    with pytest.raises(InputError, match="--output .* is also an input"):
        refuse_overwriting(src, [src])
    with pytest.raises(InputError):
        refuse_overwriting(tmp_path / "." / "sub" / ".." / "in.parquet", [src])  # the same path spelt otherwise
    link = tmp_path / "link.parquet"
    link.symlink_to(src)
    with pytest.raises(InputError):
        refuse_overwriting(link, [src])
    hard = tmp_path / "hard.parquet"
    os.link(src, hard)
    with pytest.raises(InputError, match="--sft-out"):
        refuse_overwriting(hard, [src], flag="--sft-out")
    with pytest.raises(InputError):  # replacing a folder would take the input inside it along
        refuse_overwriting(tmp_path, [src])
    assert src.read_text() == "data"


# ----------------------------------------------------------------------------- writers built on it

PREPARE = textwrap.dedent(
    """
    import sys
    from qwenlong_verl.driver.data.prepare import prepare
    from qwenlong_verl.driver.data.tokenizer import load_tokenizer

    source, out = sys.argv[1], sys.argv[2]
    load_tokenizer("builtin")  # the slow imports first: the kill is meant for the writing
    print("ready", flush=True)
    while True:
        prepare([source], out, "builtin", phases=[600, 4000], workers=1)
    """
)


def _prepare_inputs(folder: Path) -> Path:
    sentence = "The harbour office recorded 1,204 arrivals and 37 delays in the spring season. "
    rows = [
        {
            "id": f"r{i}",
            "documents": [{"title": f"Log {i}", "text": sentence * (3 + 9 * i)}],
            "question": f"How many arrivals were recorded in log {i}?",
            "answer": "1204",
            "task": "numeric",
        }
        for i in range(12)
    ]
    source = folder / "raw.jsonl"  # inside the output folder: prepare must keep it
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return source


def _prepared_whole(out: Path) -> tuple[int, ...]:
    """stats.json and exactly the bins it names, each readable with the rows it counts; returns the windows."""
    import pyarrow.parquet as pq

    stats = json.loads((out / "stats.json").read_text())
    bins = sorted(p.name for p in out.glob("phase*.parquet"))
    assert bins == sorted(p["file"] for p in stats["phase_stats"])
    for p in stats["phase_stats"]:
        assert pq.read_metadata(out / p["file"]).num_rows == p["rows"]
    assert (out / "lengths.png").read_bytes().startswith(b"\x89PNG")
    return tuple(stats["phases"])


@pytest.mark.slow
def test_prepare_killed_mid_write_leaves_the_previous_output_or_the_new_one(tmp_path):
    from qwenlong_verl.driver.data.prepare import prepare

    out = tmp_path / "data"
    out.mkdir()
    source = _prepare_inputs(out)
    raw = source.read_bytes()
    prepare([str(source)], str(out), "builtin", phases=[400, 1000, 4000], workers=1)
    # killed at a random moment after its first new bin is on disk: inside the write, or just after the swap
    child = start(PREPARE, str(source), str(out))
    deadline = time.monotonic() + 60
    while not (tmp_path / "data.partial" / "phase1.parquet").exists():
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.001)
    time.sleep(random.uniform(0, 0.3))
    kill(child)
    if not out.exists():  # between the two renames: the next writer puts the previous output back
        recover_folder(out)
    assert _prepared_whole(out) in {(400, 1000, 4000), (600, 4000)}  # the previous output or the new one
    assert (out / "raw.jsonl").read_bytes() == raw  # the input beside the output survives the swap
    # the next run cleans up and writes the new output whole; the input stays beside it
    prepare([str(source)], str(out), "builtin", phases=[600, 4000], workers=1)
    assert _prepared_whole(out) == (600, 4000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert sorted(p.name for p in out.iterdir()) == [
        "lengths.png",
        "phase1.parquet",
        "phase2.parquet",
        "raw.jsonl",
        "stats.json",
    ]
    assert (out / "raw.jsonl").read_bytes() == raw


def test_prepare_and_sft_data_refuse_to_overwrite_their_input(tmp_path):
    from qwenlong_verl.driver.data.prepare import PrepareError, prepare
    from qwenlong_verl.driver.data.sft import SftDataError, convert

    out = tmp_path / "data"
    out.mkdir()
    source = _prepare_inputs(out)
    prepare([str(source)], str(out), "builtin", phases=[600, 4000], workers=1, plot=False)
    bin1 = out / "phase1.parquet"
    before = bin1.read_bytes()
    with pytest.raises(PrepareError, match="is also an input"):
        prepare([str(bin1)], str(out), "builtin", phases=[600, 4000], workers=1, plot=False)
    with pytest.raises(PrepareError, match="is a file"):
        prepare([str(source)], str(source), "builtin", phases=[600, 4000], workers=1, plot=False)
    with pytest.raises(SftDataError, match="is also an input"):
        convert([str(bin1)], str(bin1))
    assert bin1.read_bytes() == before


def test_an_eval_report_is_replaced_as_a_whole(tmp_path):
    from qwenlong_verl.driver.eval.report import build_report
    from qwenlong_verl.driver.eval.scoring import response_sha
    from qwenlong_verl.driver.eval.store import write_json, write_jsonl

    write_json(tmp_path / "run.json", {"n": 1, "benchmarks": {"docqa": {}}})
    items = [{"id": f"q{i}", "benchmark": "docqa", "task": "choice", "input_tokens": 100 * i} for i in range(1, 4)]
    write_jsonl(tmp_path / "items.jsonl", items)
    gens = [{"id": it["id"], "k": 0, "status": "ok", "response": "A", "completion_tokens": 1} for it in items]
    write_jsonl(tmp_path / "generations.jsonl", gens)
    write_jsonl(
        tmp_path / "scores.jsonl",
        [
            {"id": it["id"], "k": 0, "status": "ok", "correct": True, "pred": "A", "response_sha": response_sha("A")}
            for it in items
        ],
    )
    report = tmp_path / "report"
    report.mkdir()
    (report / "from_an_older_version.png").write_bytes(b"stale")
    _, _, out = build_report(tmp_path)
    assert out == report
    assert sorted(p.name for p in report.iterdir()) == [
        "README.md",
        "accuracy_by_benchmark.png",
        "accuracy_by_length.png",
        "summary.json",
    ]
    assert json.loads((report / "summary.json").read_text())["benchmarks"][0]["name"] == "docqa"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "generations.jsonl",
        "items.jsonl",
        "report",
        "run.json",
        "scores.jsonl",
    ]


def test_an_output_that_cannot_be_written_is_a_one_line_input_error(tmp_path):
    from qwenlong_verl.common.errors import InputError
    from qwenlong_verl.common.files import OutputError, atomic_folder, atomic_write, write_with

    (tmp_path / "a_file").write_text("x")
    cases = [
        (lambda: atomic_write(tmp_path, "x"), "it is a folder"),
        (lambda: write_with(tmp_path, lambda p: None), "it is a folder"),
        (lambda: atomic_write(tmp_path / "a_file" / "inside.txt", "x"), "cannot write"),
        (lambda: atomic_folder(tmp_path / "a_file").__enter__(), "a file of that name is in the way"),
    ]
    for action, fragment in cases:
        with pytest.raises(OutputError, match=fragment) as err:
            action()
        assert isinstance(err.value, InputError) and "\n" not in str(err.value)
    assert (tmp_path / "a_file").read_text() == "x"


def test_an_input_that_is_a_folder_or_absent_is_named(tmp_path):
    from qwenlong_verl.common.files import input_problem

    (tmp_path / "f.jsonl").write_text("{}\n")
    assert input_problem([tmp_path / "f.jsonl"]) is None
    assert input_problem([tmp_path]) == f"{tmp_path} is a folder; name the file(s) in it"
    assert input_problem([tmp_path / "nope.jsonl"]) == f"input file(s) not found: {tmp_path / 'nope.jsonl'}"


def test_two_writers_of_one_folder_exclude_each_other_and_leave_no_lock_behind(tmp_path):
    from qwenlong_verl.common.lock import FolderLocked

    target = tmp_path / "report"
    with atomic_folder(target) as first:
        (first / "a.txt").write_text("first")
        with pytest.raises(FolderLocked, match=rf"pid {os.getpid()}.*report\.lock"):
            with atomic_folder(target):
                pass
        with pytest.raises(FolderLocked):  # nor may a recovery take the live writer's folder for a leftover
            recover_folder(target)
        assert (first / "a.txt").read_text() == "first"
    assert (target / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # the lock file went with its writer


def test_a_killed_writers_lock_file_is_reused_and_removed(tmp_path):
    target = tmp_path / "out"
    (tmp_path / ".out.lock").write_text("12345\n")  # what a writer killed by SIGKILL leaves: a file, no flock
    with atomic_folder(target) as new:
        (new / "f").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_killed_file_writers_temporary_file_is_removed_by_the_next_writer(tmp_path):
    target = tmp_path / "f.json"
    gone = tmp_path / ".f.json.99999999.abcd.tmp.json"  # a pid no process has
    fresh = tmp_path / ".f.json.99999998.efgh.tmp.json"  # same, but touched a moment ago: maybe another host
    live = tmp_path / f".f.json.{os.getpid()}.ijkl.tmp.json"  # a running writer's
    other = tmp_path / ".g.json.99999999.mnop.tmp.json"  # another target's
    for path in (gone, fresh, live, other):
        path.write_text("half")
    old = time.time() - 3600
    for path in (gone, live, other):
        os.utime(path, (old, old))
    atomic_write(target, "new")
    assert target.read_text() == "new"
    assert not gone.exists() and fresh.exists() and live.exists() and other.exists()
