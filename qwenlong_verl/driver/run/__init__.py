"""Phase execution behind ``qwenlong-verl train``: the state machine (:mod:`.train`), its state file and lock
(:mod:`.state`), the data it builds per phase (:mod:`.phase_data`) and the children it runs (:mod:`.process`)."""

from qwenlong_verl.driver.run.state import TrainError
from qwenlong_verl.driver.run.train import PhaseReport, train

__all__ = ["PhaseReport", "TrainError", "train"]
