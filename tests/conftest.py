"""Shared fixtures: real veRL, real subprocesses, nothing mocked."""

from __future__ import annotations

import pytest
from support import run_cli


@pytest.fixture
def cli():
    return run_cli


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
