"""The folder lock shared by ``train`` and ``eval``: exclusive across processes, gone when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from qwenlong_verl.common.errors import InputError, RunFailed
from qwenlong_verl.common.lock import FolderLock, FolderLocked

HOLD = (
    "import sys, time\n"
    "from qwenlong_verl.common.lock import FolderLock\n"
    "with FolderLock(sys.argv[1], '.x.lock', 'holder'):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(60)\n"
)


def test_another_process_is_refused_at_once_naming_folder_and_pid_until_it_dies(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(FolderLocked) as caught:
            with FolderLock(tmp_path, ".x.lock", "qwenlong-verl eval"):
                pass
        assert time.monotonic() - start < 1.0  # at once, no waiting
        message = str(caught.value)
        assert isinstance(caught.value, RunFailed) and "\n" not in message
        assert f"another `qwenlong-verl eval` is running on {tmp_path} (pid {holder.pid} " in message
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with FolderLock(tmp_path, ".x.lock", "qwenlong-verl eval") as lock:  # the kernel dropped it
            assert (tmp_path / ".x.lock").read_text() == f"{os.getpid()}\n" and lock.fd is not None
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_the_error_class_is_the_callers(tmp_path):
    class Mine(RunFailed):
        pass

    with FolderLock(tmp_path / "new", ".l", "a"):
        with pytest.raises(Mine, match="another `b` is running"):
            with FolderLock(tmp_path / "new", ".l", "b", error=Mine):
                pass


@pytest.mark.parametrize("folder", ["a_file", "a_file/below"])
def test_a_file_where_the_folder_goes_is_an_input_error(tmp_path, folder):
    from qwenlong_verl.common.errors import InputError

    (tmp_path / "a_file").write_text("the user's file\n")
    with pytest.raises(InputError, match="cannot use .*a_file.* as a folder"):
        with FolderLock(tmp_path / folder, ".x.lock", "x"):
            pass
    assert (tmp_path / "a_file").read_text() == "the user's file\n"


def test_a_lock_file_that_cannot_be_created_is_an_input_error(tmp_path):
    """A folder of the lock file's name (or no write permission): one line naming the lock file, no traceback."""
    (tmp_path / ".x.lock").mkdir()
    with pytest.raises(InputError, match=r"cannot create the lock file .*\.x\.lock \(Is a directory\)"):
        with FolderLock(tmp_path, ".x.lock", "x"):
            pass
    assert (tmp_path / ".x.lock").is_dir()


def test_atomic_folder_names_a_lock_it_cannot_create(tmp_path):
    from qwenlong_verl.common.files import atomic_folder

    (tmp_path / ".out.lock").mkdir()
    with pytest.raises(InputError, match=r"cannot create the lock file .*\.out\.lock"):
        with atomic_folder(tmp_path / "out"):
            pass
    assert not (tmp_path / "out").exists()
