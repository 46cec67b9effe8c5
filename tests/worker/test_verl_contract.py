"""The private veRL attributes we override are checked against the installed veRL, and the install pins it."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwenlong_verl import SUPPORTED_VERL
from qwenlong_verl.worker.verl_contract import HOOKS, Hook, VerlContractError, check_contract, contract_problems

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_verl_offers_every_hook():
    assert contract_problems() == []


def test_a_missing_or_re_signed_hook_is_named():
    missing = Hook("verl.trainer.ppo.v1.trainer_base", "PPOTrainer._not_there", None, "a test")
    resigned = Hook("verl.trainer.ppo.v1.trainer_base", "PPOTrainer._update_actor", ("self", "data"), "a test")
    problems = contract_problems((missing, resigned))
    assert "PPOTrainer._not_there is missing" in problems[0]
    assert "takes (self, batch, metrics), expected (self, data, ...)" in problems[1]


def test_check_contract_raises_naming_the_method(monkeypatch):
    import verl.trainer.ppo.v1.trainer_base as base

    monkeypatch.delattr(base.PPOTrainer, "_compute_advantage")
    with pytest.raises(
        VerlContractError, match=r"PPOTrainer\._compute_advantage is missing.*pip install 'verl==0\.9\.1'"
    ):
        check_contract()


def test_every_overridden_private_method_is_in_the_table():
    from qwenlong_verl.worker.trainer import QwenLongTrainer

    listed = {h.attribute.split(".")[-1] for h in HOOKS if h.attribute.startswith("PPOTrainer.")}
    ours = {
        name
        for klass in QwenLongTrainer.__mro__
        if klass.__module__.startswith("qwenlong_verl")
        for name in vars(klass)
        if name.startswith("_") and not name.startswith("__") and callable(vars(klass)[name])
    }
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    overridden = {name for name in ours if hasattr(PPOTrainer, name)}
    assert overridden <= listed


def test_install_pins_the_checked_verl():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    requires = [r.strip() for r in cfg["options"]["install_requires"].splitlines() if r.strip().startswith("verl")]
    assert requires == [f"verl{SUPPORTED_VERL}"]


@pytest.mark.slow
def test_doctor_fails_loudly_when_a_hooked_method_is_missing(tmp_path):
    code = (
        "import sys, verl.trainer.ppo.v1.trainer_base as b\n"
        "del b.PPOTrainer._compute_advantage\n"
        "from qwenlong_verl.driver.cli import main\n"
        "sys.exit(main(['doctor', '--fresh']))\n"
    )
    env = {**os.environ, "COLUMNS": "400", "XDG_CACHE_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env
    )
    assert result.returncode != 0
    assert "PPOTrainer._compute_advantage is missing" in result.stdout + result.stderr
