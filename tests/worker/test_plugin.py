"""The plugin registers our names into veRL's registries through veRL's own entry-point loading."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from qwenlong_verl.worker import plugin

# The rows come in as JSON: importing qwenlong_verl.worker.plugin in the probe would install the hooks itself and
# hide whether veRL's entry-point loading did.
PROBE = r"""
import importlib, json, sys
import verl  # loads entry points of group verl.plugins, exactly as in a Ray worker
found = {}
for kind, trigger, registry_module, registry_attr, names in json.loads(sys.argv[1]):
    importlib.import_module(trigger)
    registry = getattr(importlib.import_module(registry_module), registry_attr)
    found[kind] = [n for n in names if n in registry]
json.dump(found, sys.stdout)
"""


def _probe(env_extra: dict) -> dict:
    env = {**os.environ, **env_extra}
    rows = [(r.kind, r.trigger_module, r.registry_module, r.registry_attr, list(r.names)) for r in plugin.REGISTRATIONS]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(rows)], capture_output=True, text=True, env=env, timeout=180
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_registrations_declared():
    assert plugin.REGISTRATIONS, "the plugin registers nothing"
    kinds = [r.kind for r in plugin.REGISTRATIONS]
    assert len(kinds) == len(set(kinds))


@pytest.mark.slow
def test_plain_import_verl_registers_every_name_in_a_fresh_process():
    found = _probe({})
    for reg in plugin.REGISTRATIONS:
        assert found[reg.kind] == list(reg.names), f"{reg.kind}: {found[reg.kind]} != {reg.names}"


@pytest.mark.slow
def test_names_come_from_the_entry_point_not_from_elsewhere():
    # With veRL's plugin discovery off, nothing of ours may appear: proves the test above can fail.
    found = _probe({"VERL_USE_EXTERNAL_PLUGINS": "none"})
    assert all(names == [] for names in found.values()), found


@pytest.mark.slow
def test_entry_point_does_not_import_heavy_veRL_modules():
    code = (
        "import sys, verl; heavy=[m for m in ('verl.trainer.ppo.core_algos','verl.trainer.ppo.v1.trainer_base',"
        "'verl.experimental.reward_loop.reward_manager','qwenlong_verl.worker.trainer') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_failing_provider_is_logged_once_and_never_raises(caplog):
    bad = plugin.Registration(
        kind="test-only",
        config_key="none",
        registry_module="json",
        registry_attr="__dict__",
        provider="qwenlong_verl._does_not_exist",
        names=("x",),
    )
    hook = plugin._make_hook(bad)
    plugin.FAILURES.pop(bad.provider, None)
    with caplog.at_level(logging.WARNING, logger="qwenlong_verl.worker.plugin"):
        hook(json)
        hook(json)
    warnings_ = [r for r in caplog.records if bad.provider in r.getMessage()]
    assert len(warnings_) == 1
    assert "ModuleNotFoundError" in plugin.FAILURES.pop(bad.provider)


def test_install_is_idempotent():
    before = dict(plugin.FAILURES)
    plugin.install()
    plugin.install()
    assert plugin.FAILURES == before
