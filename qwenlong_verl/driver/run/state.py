"""``train_state.json`` and the output folder's lock: what ``train`` remembers between runs, and who runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import RunFailed
from qwenlong_verl.common.files import atomic_write

LOCK_FILE = ".train.lock"
STATE_VERSION = 1

PENDING, DATA_READY, TRAINING, TRAINED, DONE = "pending", "data_ready", "training", "trained", "done"
STATUSES = (PENDING, DATA_READY, TRAINING, TRAINED, DONE)


class TrainError(RunFailed):
    """A phase could not be built, launched or finished; the message says which and what to do."""


class RunState:
    """``train_state.json``: per phase its status and what it produced; every save is atomic."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None):
        self.path = path
        self.data = data or {"version": STATE_VERSION, "phases": {}, "prepared": None}

    @classmethod
    def load(cls, path: Path) -> RunState:
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise TrainError(
                f"{path} is not valid JSON ({exc}); it is only ever replaced atomically, so it was "
                "edited by hand: fix or delete it (deleting restarts unfinished bookkeeping)"
            ) from None
        if data.get("version") != STATE_VERSION:
            raise TrainError(
                f"{path} has state version {data.get('version')!r}, this qwenlong-verl writes {STATE_VERSION}"
            )
        bad = {n: p.get("status") for n, p in data.get("phases", {}).items() if p.get("status") not in STATUSES}
        if bad:
            raise TrainError(f"{path}: unknown phase status {bad}; statuses are {', '.join(STATUSES)}")
        return cls(path, data)

    def phase(self, name: str) -> dict[str, Any]:
        return self.data["phases"].setdefault(name, {"status": PENDING})

    def status(self, name: str) -> str:
        return self.data["phases"].get(name, {}).get("status", PENDING)

    def update(self, name: str, **values: Any) -> None:
        self.phase(name).update(values)
        self.save()

    def save(self) -> None:
        atomic_write(self.path, json.dumps(self.data, indent=2, sort_keys=True))


class OutputLock:
    """An exclusive ``flock`` on ``<output_dir>/.train.lock``; the kernel drops it when the process dies."""

    def __init__(self, output_dir: Path):
        self.path = output_dir / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children (PEP 446)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise TrainError(
                f"another `qwenlong-verl train` is running on {self.path.parent} (it holds {self.path})"
            ) from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
