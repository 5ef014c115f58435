"""A job's log (facexai/logutil.py) catches what Python, native code and child processes write to stderr."""

import logging
import os
import subprocess
import sys

import pytest

from facexai.logutil import log_to


def test_python_native_and_child_stderr_reach_the_log_and_fd_2_is_restored(tmp_path):
    log = tmp_path / "job.log"
    before = os.fstat(2)
    with pytest.raises(RuntimeError):
        with log_to(log):
            logging.getLogger("facexai.test").info("from logging")
            print("from sys.stderr", file=sys.stderr)
            os.write(2, b"from file descriptor 2 (as dlib or OpenMP write)\n")
            subprocess.run(["sh", "-c", "echo from a child process >&2"], check=True)
            raise RuntimeError("the job failed")
    text = log.read_text()
    for line in ("from logging", "from sys.stderr", "from file descriptor 2", "from a child process",
                 "RuntimeError: the job failed"):
        assert line in text, line
    after = os.fstat(2)
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)  # the terminal (or pytest's) is back
