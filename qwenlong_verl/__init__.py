"""qwenlong-verl: the QwenLong-L1/L1.5 long-context reasoning RL recipe as a plugin for stock veRL.

Importing this package is deliberately cheap (no veRL, no torch): veRL imports our entry point
(:mod:`qwenlong_verl.worker.plugin`) in every process, Ray workers included.
"""

__version__ = "0.1.0"

SUPPORTED_VERL = "==0.9.1"
"""The veRL the trainer mode's private hooks were checked on (:mod:`qwenlong_verl.worker.verl_contract`);
setup.cfg pins the same."""
