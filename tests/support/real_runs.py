"""Real ``qwenlong-verl train`` runs (stock veRL on the CPU) for the end-to-end tests.

Each run's processes carry a tag in their environment, which veRL's Ray processes inherit (the raylet, the GCS and
every worker start from the driver's environment). Stopping a run kills exactly the processes with its tag, so two
real runs on two test workers never stop each other, as a machine-wide ``ray stop --force`` would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from support import ROOT

TAG = "QWENLONG_TEST_RUN"


class RealRun:
    """``qwenlong-verl train RECIPE --output-dir OUT``, its output appended to ``log``; ``start`` may be called again
    after ``stop`` (a resume)."""

    def __init__(self, recipe: Path, out: Path, log: Path, env: dict[str, str] | None = None):
        self.recipe, self.out, self.log = recipe, out, log
        self.tag = uuid.uuid4().hex
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {}), TAG: self.tag}
        self.proc: subprocess.Popen | None = None

    def start(self) -> subprocess.Popen:
        with open(self.log, "ab") as handle:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "qwenlong_verl.driver.cli",
                    "train",
                    str(self.recipe),
                    "--output-dir",
                    str(self.out),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.proc

    def wait(self, timeout: float) -> int | None:
        """The exit code, or ``None`` when it ran past ``timeout`` (then it is stopped)."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            self.stop()

    def stop(self) -> None:
        """SIGKILL every process of this run, wherever Ray put it, and reap the driver."""
        marker = f"{TAG}={self.tag}".encode() + b"\0"
        for _ in range(20):
            tagged = [pid for pid in _pids() if pid != os.getpid() and marker in _environ(pid)]
            if not tagged:
                break
            for pid in tagged:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        if self.proc is not None:
            self.proc.wait(timeout=60)

    def tail(self, chars: int = 5000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes() + b"\0"
    except OSError:  # gone, or not ours to read
        return b""
