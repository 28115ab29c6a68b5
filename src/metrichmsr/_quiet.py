"""Silence native libraries' start-up chatter (mediapipe's C++ logs, Warp's CUDA probe)."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_output_silenced():
    """Point file descriptors 1 and 2 at /dev/null for the duration of the block.

    mediapipe and Warp write from C/C++ straight to the process's descriptors at load time,
    bypassing Python's ``sys.stdout``/``sys.stderr``, so only a descriptor swap keeps the CLI's
    output to its own lines. Exceptions still propagate; they are printed after restoring.
    Set METRICHMSR_DEBUG=1 to see the native logs.
    """
    if os.environ.get("METRICHMSR_DEBUG"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
