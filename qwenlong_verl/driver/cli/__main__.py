"""``python -m qwenlong_verl.driver.cli`` = ``qwenlong-verl``."""

import sys

from qwenlong_verl.driver.cli import main

sys.exit(main())
