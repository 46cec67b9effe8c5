"""Numeric value of a LaTeX expression through math-verify, with a hard timeout in any thread.

math-verify (sympy underneath) can take minutes or all memory on hostile input (``9^{9^{9^{9}}}``,
``10000000!``), and its own timeouts use ``SIGALRM``, which works only in the main thread — rewards run in
thread pools and in Ray actors' event loops. So the evaluation runs in one long-lived child interpreter that
talks JSON lines over pipes; a call that does not answer within the timeout kills the child, returns
``None`` (the rule then says "wrong" and the judge may still be asked), and the next call starts a fresh one.

This path is only for answers the fast parser of :mod:`qwenlong_verl.worker.rewards.numeric` cannot read (roots,
powers, ``\\pi``, nested fractions); plain numbers never get here. Results are cached.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import select
import subprocess
import sys
import threading
import time

from cachetools import LRUCache

logger = logging.getLogger(__name__)

TIMEOUT_S = 2.0
"""Longest wait for one evaluation once the child runs."""

STARTUP_TIMEOUT_S = 60.0
"""Longest wait for the child to import math-verify (sympy) the first time."""

RESTART_BACKOFF_S = 60.0
"""After the helper failed to start, LaTeX answers count as not numbers for this long before a new try."""

MAX_CHARS = 256
"""Longer expressions are not evaluated: no numeric answer needs more."""

_CACHE_SIZE = 4096

# The child: reads one JSON string per line, answers one JSON number or null per line. Its own stdout is
# moved to stderr first, so nothing a library prints can corrupt the protocol.
_CHILD_PROGRAM = r"""
import json, math, os, sys
out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse
import sympy
out.write("ready\n")
for line in sys.stdin:
    value = None
    try:
        text = json.loads(line)
        for expr in parse("$" + text + "$", extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()],
                          fallback_mode="no_fallback", parsing_timeout=None):
            if isinstance(expr, sympy.Basic) and expr.is_number:
                number = complex(expr.evalf(20))
                if abs(number.imag) <= 1e-12 * max(1.0, abs(number.real)) and math.isfinite(number.real):
                    value = number.real
                    break
    except Exception:
        value = None
    out.write(json.dumps(value) + "\n")
"""


class SymbolicEvaluator:
    """One child interpreter evaluating LaTeX to a float; thread-safe, one evaluation at a time."""

    def __init__(self, timeout_s: float = TIMEOUT_S, startup_timeout_s: float = STARTUP_TIMEOUT_S):
        self.timeout_s = timeout_s
        self.startup_timeout_s = startup_timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._buffer = b""
        self._cache: LRUCache[str, float | None] = LRUCache(maxsize=_CACHE_SIZE)
        self._no_start_until = 0.0  # after a failed start, do not try again for a while
        self.timeouts = 0
        """Evaluations that hit the timeout (the child was killed each time)."""

    def value(self, text: str) -> float | None:
        """Value of ``text`` as a real number, or ``None`` (not a number, not parseable, too slow, too long)."""
        text = text.strip()
        if not text or len(text) > MAX_CHARS:
            return None
        with self._lock:
            if text in self._cache:
                return self._cache[text]
            value, definitive = self._evaluate(text)
            if definitive:
                self._cache[text] = value
            return value

    def close(self) -> None:
        with self._lock:
            self._kill()

    # -- child process -------------------------------------------------------------------------------

    def _evaluate(self, text: str) -> tuple[float | None, bool]:
        if self._proc is None or self._proc.poll() is not None:
            if not self._start():
                return None, False
        try:
            assert self._proc is not None and self._proc.stdin is not None
            self._proc.stdin.write((json.dumps(text) + "\n").encode())
            self._proc.stdin.flush()
            line = self._read_line(self.timeout_s)
        except (OSError, ValueError):
            line = None
        if line is None:
            self.timeouts += 1
            logger.warning("math-verify took longer than %.1f s on %r; counted as not a number", self.timeout_s, text)
            self._kill()
            return None, True
        try:
            value = json.loads(line)
        except ValueError:
            self._kill()
            return None, False
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value), True
        return None, True

    def _start(self) -> bool:
        self._kill()
        if time.monotonic() < self._no_start_until:
            return False
        self._no_start_until = time.monotonic() + RESTART_BACKOFF_S  # cleared once the helper is up
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD_PROGRAM],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
        except OSError as exc:
            logger.warning("could not start the math-verify helper (%s); LaTeX answers count as not numbers", exc)
            self._proc = None
            return False
        self._buffer = b""
        if self._read_line(self.startup_timeout_s) != "ready":
            logger.warning("the math-verify helper did not start; LaTeX answers count as not numbers")
            self._kill()
            return False
        self._no_start_until = 0.0
        return True

    def _read_line(self, timeout_s: float) -> str | None:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace").strip()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        self._buffer = b""
        if proc is None:
            return
        try:
            proc.kill()
            proc.wait(timeout=5)
        except Exception:  # already gone
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass


_EVALUATOR: SymbolicEvaluator | None = None
_EVALUATOR_LOCK = threading.Lock()


def evaluator() -> SymbolicEvaluator:
    """The process-wide evaluator (its child starts on first use)."""
    global _EVALUATOR
    if _EVALUATOR is None:
        with _EVALUATOR_LOCK:
            if _EVALUATOR is None:
                _EVALUATOR = SymbolicEvaluator()
                atexit.register(_EVALUATOR.close)
    return _EVALUATOR


def latex_value(text: str) -> float | None:
    """Value of a LaTeX expression, via the process-wide :class:`SymbolicEvaluator`."""
    return evaluator().value(text)
