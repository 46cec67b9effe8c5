"""``train_state.json`` and the output folder's lock: what ``train`` remembers between runs, and who runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qwenlong_verl.common.errors import RunFailed
from qwenlong_verl.common.files import atomic_write
from qwenlong_verl.common.lock import FolderLock

LOCK_FILE = ".train.lock"
STATE_VERSION = 1

PENDING, DATA_READY, TRAINING, TRAINED, DONE = "pending", "data_ready", "training", "trained", "done"
MERGING = "merging"
"""A merge step whose merge was started (a rerun merges again unless its folder is complete)."""
STATUSES = (PENDING, DATA_READY, TRAINING, TRAINED, MERGING, DONE)

_FIX = "fix or delete it (deleting restarts unfinished bookkeeping)"

PHASE_KEYS: dict[str, tuple[type, ...]] = {
    "status": (str,),
    "launches": (int,),
    "final_step": (int,),
    "model_out": (str,),
    "model_in": (str,),
    "rows": (int, type(None)),
    "carried": (int,),
    "carry": (str,),
    "fingerprint": (str, type(None)),
    "train_files": (list,),
    "val_files": (list,),
    "inputs": (list,),
}
"""The keys ``train`` writes into a phase's entry and their JSON types (others are kept, unchecked)."""

REQUIRED_BY_STATUS = {TRAINED: ("final_step",), DONE: ("model_out",)}
"""What ``train`` reads of a phase it resumes in that status (it records them on the way there)."""


class TrainError(RunFailed):
    """A phase could not be built, launched or finished; the message says which and what to do."""


def _type_names(types: tuple[type, ...]) -> str:
    names = {int: "an integer", str: "a string", list: "a list", dict: "an object", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


class RunState:
    """``train_state.json``: per phase its status and what it produced; every save is atomic."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None):
        self.path = path
        self.data = data or {"version": STATE_VERSION, "phases": {}, "prepared": None}

    @classmethod
    def load(cls, path: Path, relied_on: Sequence[str] = ()) -> RunState:
        """The state at ``path`` (a fresh one when absent), its shape checked.

        ``relied_on``: the recipe's phase names, in order, whose finished outputs this run uses; each marked
        done must still have its output model, else the error names the phase and ``--from-phase N``."""
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TrainError(
                f"{path} is not valid JSON ({exc}); it is only ever replaced atomically, so it was "
                f"edited by hand: {_FIX}"
            ) from None
        except OSError as exc:  # a folder in its place, no permission
            raise TrainError(f"{path} cannot be read ({exc.strerror}); {_FIX}") from None
        cls._check_shape(path, data)
        state = cls(path, data)
        state._check_outputs(relied_on)
        return state

    @staticmethod
    def _check_shape(path: Path, data: Any) -> None:
        """One-line errors naming the key, for a state of valid JSON but not the shape ``train`` writes."""
        if not isinstance(data, dict):
            raise TrainError(f"{path}: expected a JSON object, got {type(data).__name__}; {_FIX}")
        if data.get("version") != STATE_VERSION:
            raise TrainError(
                f"{path} has state version {data.get('version')!r}, this qwenlong-verl writes {STATE_VERSION}"
            )
        phases = data.setdefault("phases", {})
        if not isinstance(phases, dict):
            raise TrainError(
                f"{path}: 'phases' must be an object of phase name -> entry, got {type(phases).__name__}; {_FIX}"
            )
        if not isinstance(data.get("prepared"), dict | type(None)):
            raise TrainError(f"{path}: 'prepared' must be an object or null; {_FIX}")
        bad = {}
        for name, phase in phases.items():
            if not isinstance(phase, dict):
                raise TrainError(f"{path}: phases.{name} must be an object, got {type(phase).__name__}; {_FIX}")
            if phase.get("status") not in STATUSES:
                bad[name] = phase.get("status")
                continue
            for key, types in PHASE_KEYS.items():
                value = phase.get(key)
                if key in phase and (isinstance(value, bool) or not isinstance(value, types)):
                    raise TrainError(f"{path}: phases.{name}.{key} must be {_type_names(types)}, got {value!r}; {_FIX}")
        if bad:
            raise TrainError(f"{path}: unknown phase status {bad}; statuses are {', '.join(STATUSES)}")

    def _check_outputs(self, relied_on: Sequence[str]) -> None:
        for number, name in enumerate(relied_on, start=1):
            phase = self.data["phases"].get(name, {})
            status = phase.get("status")
            missing = [k for k in REQUIRED_BY_STATUS.get(status, ()) if k not in phase]
            if missing:
                problem = f"has no {' or '.join(missing)}"
            elif status == DONE and not Path(phase["model_out"]).exists():
                problem = f"has no output model: {phase['model_out']} does not exist"
            else:
                continue
            raise TrainError(
                f"{self.path}: phase {number} ({name}) is marked {status} but {problem}; "
                f"rerun with `--from-phase {number}` to redo it"
            )

    def phase(self, name: str) -> dict[str, Any]:
        return self.data["phases"].setdefault(name, {"status": PENDING})

    def status(self, name: str) -> str:
        return self.data["phases"].get(name, {}).get("status", PENDING)

    def update(self, name: str, **values: Any) -> None:
        self.phase(name).update(values)
        self.save()

    def save(self) -> None:
        atomic_write(self.path, json.dumps(self.data, indent=2, sort_keys=True))


class OutputLock(FolderLock):
    """An exclusive ``flock`` on ``<output_dir>/.train.lock``; the kernel drops it when the process dies."""

    def __init__(self, output_dir: Path):
        super().__init__(output_dir, LOCK_FILE, "qwenlong-verl train", error=TrainError)
