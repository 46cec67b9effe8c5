"""Which rows of a v1 training batch belong to which trajectory, read from veRL's TransferQueue keys.

veRL 0.9.1 stores every output of an agent loop as its own row, keyed ``{uid}_{session_id}_{index}``
(``AgentLoopWorkerTQ._agent_loop_postprocess``): ``uid`` is the prompt, ``session_id`` one of its ``rollout.n``
trajectories, ``index`` the position of the output in the trajectory. A single-turn loop writes index 0 only; the
memory agent writes ``K`` memory updates and the answer (index ``K``). veRL gives every row of a trajectory the
final output's reward, and for ``grpo`` computes the advantage on final rows and broadcasts it
(``compute_advantage_for_multi_trajectories``). Everything else that counts *samples* — the task-norm advantage,
the difficulty ledger, reward metrics — must count trajectories, i.e. final rows, and hand their result to the
other rows of the same trajectory: :class:`Turns` says which row is which. veRL's padding rows
(``pad<hex>_<i>_0``) are each a trajectory of one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Turns:
    """Trajectory structure of a batch, aligned with its keys."""

    trajectory: np.ndarray
    """``{uid}_{session_id}`` of each row (object array)."""

    index: np.ndarray
    """Position of each row in its trajectory (int array)."""

    final_row: np.ndarray
    """Row number of the final output of each row's trajectory (int array)."""

    @property
    def final(self) -> np.ndarray:
        """Bool per row: it is its trajectory's final output (what the reward scored)."""
        return self.final_row == np.arange(len(self.final_row))

    @property
    def generations(self) -> np.ndarray:
        """Per row: how many outputs its trajectory has in the batch."""
        _, inverse, counts = np.unique(self.trajectory.astype(str), return_inverse=True, return_counts=True)
        return counts[inverse]

    @property
    def multi(self) -> bool:
        """Some trajectory has more than one row."""
        return bool((~self.final).any())

    def on_final(self, values: Sequence[Any]) -> np.ndarray:
        """``values`` on final rows, ``None`` on the others (object array): for statistics over trajectories."""
        out = np.asarray(list(values), dtype=object).copy()
        out[~self.final] = None
        return out

    def __len__(self) -> int:
        return len(self.final_row)


def trajectory_turns(keys: Sequence[str]) -> Turns:
    """:class:`Turns` of a batch from its TransferQueue keys (veRL's key rule: ``key.rsplit("_", 2)``)."""
    trajectory = np.empty(len(keys), dtype=object)
    index = np.empty(len(keys), dtype=np.int64)
    last: dict[str, tuple[int, int]] = {}
    for row, key in enumerate(keys):
        parts = str(key).rsplit("_", 2)
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"TransferQueue key {key!r} is not veRL's {{uid}}_{{session_id}}_{{index}}")
        trajectory[row] = f"{parts[0]}_{parts[1]}"
        index[row] = int(parts[2])
        seen = last.get(trajectory[row])
        if seen is None or seen[0] < index[row]:
            last[trajectory[row]] = (int(index[row]), row)
    final_row = np.array([last[t][1] for t in trajectory], dtype=np.int64)
    return Turns(trajectory=trajectory, index=index, final_row=final_row)
