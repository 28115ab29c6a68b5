"""Result folders: what may be replaced, and replacing one atomically (no heavy imports)."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from metrichmsr.errors import InputError


def check_replaceable(target: Path, marker: str = "result.json") -> None:
    """Raise InputError unless ``target`` is absent, an empty folder or an output folder of ours,
    recognised by its ``marker`` file."""
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a folder")
    if target.is_dir() and not (target / marker).exists() and any(target.iterdir()):
        raise InputError(f"{target}: exists and is not a metrichmsr output folder (no {marker}); refusing to replace it")


def replace_dir(source: Path, target: Path, marker: str = "result.json") -> None:
    """Move the complete folder ``source`` to ``target``, replacing an output folder of ours there."""
    check_replaceable(target, marker)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


@contextmanager
def staged_output(target: Path, marker: str = "result.json") -> Iterator[Path]:
    """Yield a hidden sibling folder of ``target`` to write into; once the block completes it
    replaces ``target`` (see ``replace_dir``), and if the block fails it is removed, so an
    interrupted run never leaves a half-written output folder."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; outputs should be readable as usual
    try:
        yield staging
        replace_dir(staging, target, marker)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
