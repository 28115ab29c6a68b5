"""Result folders: what may be replaced, and replacing one atomically (no heavy imports)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from metrichmsr.errors import InputError


def check_replaceable(target: Path) -> None:
    """Raise InputError unless ``target`` is absent, an empty folder or a result folder."""
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a folder")
    if target.is_dir() and not (target / "result.json").exists() and any(target.iterdir()):
        raise InputError(f"{target}: exists and is not a metrichmsr result folder; refusing to replace it")


def replace_dir(source: Path, target: Path) -> None:
    """Move the complete folder ``source`` to ``target``, replacing a result folder there."""
    check_replaceable(target)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)
