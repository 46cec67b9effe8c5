"""`qwenlong-verl train` as the run tests drive it: veRL replaced by the stand-in curriculum launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support import ROOT

LAUNCHER = f"{sys.executable} {ROOT / 'tests' / 'support' / 'curriculum_launcher.py'}"
"""QWENLONG_VERL_LAUNCHER: each phase's veRL run replaced by the stand-in."""


def run_train(recipe: Path, *args: str, timeout: float = 900, **env: str | None) -> subprocess.CompletedProcess:
    """``qwenlong-verl train`` in its own session, so a stand-in's killpg takes it and nothing else. ``env``: added
    variables, ``None`` unsets one; the merge step is the real one unless a test names a stand-in."""
    full_env = {**os.environ, "COLUMNS": "200", "QWENLONG_VERL_LAUNCHER": LAUNCHER, "QWENLONG_VERL_MERGE_STEP": None}
    full_env = {key: value for key, value in {**full_env, **env}.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-m", "qwenlong_verl.driver.cli", "train", str(recipe), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        start_new_session=True,
        cwd=recipe.parent,
    )


def launches(log: Path) -> list[dict]:
    """The stand-in's record of each launch, in order."""
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
