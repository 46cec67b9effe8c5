"""One exception base for everything the package reports to a user, with the exit code in one place.

The CLI catches :class:`QwenLongError` once and prints its message as one line; anything else is a bug and keeps
its traceback. Subclasses say what went wrong by their base: bad input the user can fix (:class:`InputError`,
exit 2), or a run that failed on the way (:class:`RunFailed`, exit 1). Both keep the builtin base their callers
already catch (``ValueError`` / ``RuntimeError``).
"""

from __future__ import annotations


class QwenLongError(Exception):
    """A failure with a message for the user; :attr:`exit_code` is what the CLI exits with."""

    exit_code: int = 1


class InputError(QwenLongError, ValueError):
    """Bad input (a file, a row, a key, an argument): the message names it and the fix."""

    exit_code = 2


class RunFailed(QwenLongError, RuntimeError):
    """A step that started and could not finish (a child process, a server, a checkpoint)."""

    exit_code = 1


class Interrupted(QwenLongError):
    """Stopped by the user (Ctrl-C); what was written so far is kept and a rerun resumes."""

    exit_code = 130
