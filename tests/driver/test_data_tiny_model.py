"""The tiny model writer refuses a seed torch cannot take, before writing anything."""

from __future__ import annotations

import pytest

from qwenlong_verl.common.errors import InputError
from qwenlong_verl.driver.data.tiny_model import SEED_RANGE, write_tiny_model


@pytest.mark.parametrize("seed", [10**30, SEED_RANGE[1] + 1, SEED_RANGE[0] - 1, 2.5, True])
def test_a_seed_outside_torchs_range_is_an_input_error(tmp_path, seed):
    with pytest.raises(InputError, match="--seed must be"):
        write_tiny_model(tmp_path / "model", seed=seed)
    assert not (tmp_path / "model").exists()
