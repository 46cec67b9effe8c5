"""The v1 trainer mode ``qwenlong`` (``trainer.v1.trainer_mode=qwenlong``): veRL's synchronous trainer plus our stages.

Composition, nothing else::

    QwenLongTrainer = LongContextAlgoStages   task-norm advantage, negative-gradient clipping / AEPO (algos/)
                    + CurriculumStages        difficulty ledger, qwenlong/* metrics, task balance (curriculum/)
                    + MemoryAgentStages       qwenlong/memory_* metrics of memory-agent trajectories (agent/)
                    + PPOTrainerSync          veRL's colocated synchronous trainer

Synchronous under another name. veRL's ``PPOTrainer`` keys async behaviour on ``self.trainer_mode != "sync"``:
exact single-prompt refills (``gen_batch_size`` forced to 1), ``ReplayBufferAsync``, TransferQueue checkpoints
and re-issuing in-flight prompts on resume. This mode *is* synchronous, so :attr:`QwenLongTrainer.trainer_mode`
reads ``"sync"`` to veRL's branches; the registered name stays in :attr:`QwenLongTrainer.registered_mode` and in
``config.trainer.v1.trainer_mode``.

Registered by the plugin when veRL imports ``verl.trainer.ppo.v1``, i.e. only in the processes that run a v1
trainer (the driver's TaskRunner), never in Ray workers.
"""

from __future__ import annotations

from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from qwenlong_verl.common.names import TRAINER_MODE
from qwenlong_verl.worker.agent.trainer_stages import MemoryAgentStages
from qwenlong_verl.worker.algos.trainer_stages import LongContextAlgoStages
from qwenlong_verl.worker.curriculum.trainer_stages import CurriculumStages
from qwenlong_verl.worker.verl_contract import check_contract


@register_trainer(TRAINER_MODE)
class QwenLongTrainer(LongContextAlgoStages, CurriculumStages, MemoryAgentStages, PPOTrainerSync):
    """veRL's ``PPOTrainerSync`` with the QwenLong algorithm and curriculum stages."""

    registered_mode: str = TRAINER_MODE
    """The name this trainer was selected by (``trainer.v1.trainer_mode``)."""

    def __init__(self, *args, **kwargs):
        check_contract()  # before veRL starts any worker: a renamed private method fails here, by name
        super().__init__(*args, **kwargs)

    @property
    def trainer_mode(self) -> str:
        """What veRL's base class branches on: this trainer runs veRL's synchronous code paths."""
        return "sync"

    @trainer_mode.setter
    def trainer_mode(self, name: str) -> None:
        self.registered_mode = name
