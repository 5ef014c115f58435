"""Send a job's logging, stderr and any exception traceback to its Snakemake `log:` file.

Both Python's sys.stderr and the process's file descriptor 2 are redirected, so that messages from
native code (dlib, OpenMP, a TorchScript interpreter) and from child processes reach the log too."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from pathlib import Path


@contextlib.contextmanager
def log_to(path):
    """Within the block, logging and stderr (tqdm bars included) go to `path`; errors are logged, re-raised."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh:
        old_stderr = sys.stderr
        with contextlib.suppress(Exception):
            old_stderr.flush()
        saved_fd = os.dup(2)
        os.dup2(fh.fileno(), 2)  # native writes to stderr land in the log, after what Python wrote
        sys.stderr = fh
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield
        except BaseException:
            fh.write(traceback.format_exc())
            raise
        finally:
            root.removeHandler(handler)
            fh.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            sys.stderr = old_stderr
