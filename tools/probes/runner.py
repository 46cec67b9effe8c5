"""Run probes in worker processes, each probe under its own time limit, and write the report.

A worker imports the CLI once and runs probes one after the other in-process (the subprocess probes start their
own children). The parent hands out probe names and waits; a worker past its probe's limit is killed with its
children, the probe is recorded as a hang, and a fresh worker takes the next one.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path

from probes.core import LOST, POOR, WELL, Probe, Result

SLACK_S = 30.0
"""Added to a probe's own limit before its worker is killed (the probe's subprocess limits fire first)."""

MAX_RSS_BYTES = 3 * 2**30
"""A worker past this much memory is killed and its probe is poor (a runaway must not take the machine down)."""

POLL_S = 0.5


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _worker(conn: Connection, workdir: str) -> None:
    os.setpgrp()  # its children die with it when the parent kills the group
    import probes
    from probes.core import execute, prepare_process, warm

    prepare_process()
    warm()
    catalogue = {p.name: p for p in probes.catalogue()}
    conn.send(("ready", None))
    while True:
        name = conn.recv()
        if name is None:
            return
        result = execute(catalogue[name], Path(workdir), on_start=lambda command: conn.send(("started", command)))
        conn.send(("result", result.to_dict()))


class _Worker:
    def __init__(self, ctx, workdir: Path):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, str(workdir)), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.probe: Probe | None = None
        self.deadline = 0.0
        self.given = 0.0
        self.command = "?"

    def give(self, probe: Probe) -> None:
        self.probe = probe
        self.command = "?"
        self.given = time.monotonic()
        self.deadline = self.given + probe.timeout_s + SLACK_S
        self.conn.send(probe.name)

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            self.process.kill()
        self.process.join(5)

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.kill()


def run_probes(
    selected: Sequence[Probe], jobs: int = 1, on_result: Callable[[Result], None] | None = None
) -> list[Result]:
    """Every probe of ``selected`` through ``jobs`` workers; results in catalogue order."""
    ctx = multiprocessing.get_context("spawn")
    queue = list(selected)
    results: dict[str, Result] = {}
    workdir = Path(tempfile.mkdtemp(prefix="qwenlong-probes-"))  # a killed worker's folders go with it
    workers = [_Worker(ctx, workdir) for _ in range(max(1, min(jobs, len(queue))))]
    try:
        while queue or any(w.probe for w in workers):
            for w in workers:
                if w.ready and w.probe is None and queue:
                    w.give(queue.pop(0))
            busy = [w for w in workers if w.probe is not None or not w.ready]
            now = time.monotonic()
            timeout = min((w.deadline - now for w in busy if w.probe is not None), default=60.0)
            ready = wait([w.conn for w in busy], timeout=min(POLL_S, max(0.0, timeout)))
            for i, w in enumerate(workers):
                if w.conn in ready:
                    try:
                        kind, payload = w.conn.recv()
                    except (EOFError, OSError):
                        kind, payload = "died", None
                    if kind == "ready":
                        w.ready = True
                        continue
                    if kind == "started":
                        w.command = payload
                        continue
                    if kind == "result":
                        result = Result(**payload)
                        results[result.name] = result
                        w.probe = None
                        if on_result:
                            on_result(result)
                        continue
                    if not w.ready:
                        raise RuntimeError("a probe worker died while starting (see its stderr above)")
                elif w.probe is not None and rss_bytes(w.process.pid) > MAX_RSS_BYTES:
                    kind = "memory"
                elif w.probe is None or time.monotonic() < w.deadline:
                    continue
                else:
                    kind = "timeout"
                # past its deadline, or died: the probe hung (or crashed the worker); a fresh worker replaces it
                probe = w.probe
                w.kill()
                workers[i] = _Worker(ctx, workdir)
                if probe is not None:
                    why = {
                        "died": "the probing process died",
                        "memory": f"memory runaway: over {MAX_RSS_BYTES / 2**30:.0f} GiB resident",
                    }.get(kind, "hang: no answer within the probe's limit")
                    took = round(time.monotonic() - w.given, 2)
                    result = Result(probe.name, probe.area, probe.what, probe.expect, w.command, None, POOR, why, took)
                    results[probe.name] = result
                    if on_result:
                        on_result(result)
    finally:
        for w in workers:
            w.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return [results[p.name] for p in selected if p.name in results]


# ----------------------------------------------------------------------------- the report


def summary_line(results: Sequence[Result]) -> str:
    well = sum(r.verdict == WELL for r in results)
    poor = sum(r.verdict == POOR for r in results)
    lost = sum(r.verdict == LOST for r in results)
    return f"{len(results)} probes: {well} handled well, {poor} poorly, {lost} data loss"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip() or " "


def report_markdown(results: Sequence[Result], seconds: float | None = None) -> str:
    """One row per probe, the poor and lossy ones first; a count per area."""
    order = {LOST: 0, POOR: 1, WELL: 2}
    ranked = sorted(results, key=lambda r: (order[r.verdict], r.area, r.name))
    areas: dict[str, list[Result]] = {}
    for r in results:
        areas.setdefault(r.area, []).append(r)
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    lines = [
        "# Hostile-input probes of `qwenlong-verl`",
        "",
        f"{summary_line(results)}{took}. Regenerate: `python tools/probe.py --report probe_report.md`.",
        "",
        "| area | probes | well | poor | data loss |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for area, rs in sorted(areas.items()):
        lines.append(
            f"| {area} | {len(rs)} | {sum(r.verdict == WELL for r in rs)} | {sum(r.verdict == POOR for r in rs)} "
            f"| {sum(r.verdict == LOST for r in rs)} |"
        )
    lines += [
        "",
        "| id | area | command | exit | expected | verdict | reason | s |",
        "| --- | --- | --- | ---: | --- | --- | --- | ---: |",
    ]
    for r in ranked:
        command = r.command if len(r.command) <= 160 else r.command[:157] + "..."
        lines.append(
            f"| {_cell(r.name)} | {r.area} | `{_cell(command)}` | {'-' if r.rc is None else r.rc} | {r.expect} "
            f"| **{r.verdict}** | {_cell(r.reason)} | {r.seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def write_report(path: str | Path, results: Sequence[Result], seconds: float | None = None) -> None:
    from qwenlong_verl.common.files import atomic_write

    atomic_write(path, report_markdown(results, seconds))
