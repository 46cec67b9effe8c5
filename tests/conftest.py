"""Shared fixtures: real veRL, real subprocesses, nothing mocked."""

from __future__ import annotations

import pytest
from support import run_cli, run_cli_in_process


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def cli_main():
    return run_cli_in_process


@pytest.fixture(scope="module")
def transfer_queue():
    """A local Ray + TransferQueue (veRL's v1 data plane) for one test module; torn down after it."""
    import ray
    import transfer_queue as tq
    from omegaconf import OmegaConf

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
    yield tq
    tq.close()
    if started:
        ray.shutdown()


def pytest_collection_modifyitems(config, items):
    """A test that runs the real CLI in a fresh interpreter pays veRL's import (seconds each): it is slow, and
    `make test-fast` leaves it out."""
    for item in items:
        if "cli" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


ONE_WORKER_MODULES = frozenset(
    {
        "tests/e2e/test_cpu_train.py",  # one real two-phase veRL run, killed and resumed (minutes)
        "tests/e2e/test_cpu_memory.py",  # one real rl -> memory -> merge -> rl run (minutes)
        "tests/worker/test_agent_memory_loop.py",  # a module-scoped veRL agent-loop setup
        "tests/worker/test_curriculum_trainer_stages.py",  # a module-scoped Ray + TransferQueue
        "tests/worker/test_algos_trainer_stages.py",  # the same
    }
)
"""Modules whose tests share an expensive module-scoped fixture: all their tests go to one worker, so the fixture
is built once, and they are handed out first, so the longest runs overlap the many short tests instead of
running alone at the end."""


def pytest_xdist_make_scheduler(config, log):
    """Under ``-n``: every test is its own unit of work, except the modules of :data:`ONE_WORKER_MODULES`, each
    one unit. (xdist's own ``loadgroup`` marks would say the same, but they rename node ids, which pytest 9.2
    no longer lets a plugin do.)"""
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return OneWorkerModules(config, log)
