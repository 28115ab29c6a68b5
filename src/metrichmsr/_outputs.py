"""Output folders: which ones may be replaced, and replacing one (or one file) atomically (no heavy imports).

Every folder a command writes (``recover``'s result folder, ``synth``'s set, ``bench``'s report)
is staged in a hidden sibling folder and moved into place once complete, with a manifest,
:data:`MANIFEST`, listing every file in it. A folder is ours, and may be replaced (with
``overwrite``), only when its manifest lists everything it holds: a file the user added, or a
folder the user made and put our files in, makes it theirs, and then nothing in it is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from metrichmsr.errors import InputError

#: The hidden file naming every file of an output folder metrichmsr wrote.
MANIFEST = ".metrichmsr-output.json"
MANIFEST_SCHEMA = "metrichmsr.output/1"


def _listed(folder: Path) -> set[str] | None:
    """The files ``folder``'s manifest lists (POSIX paths relative to it), None without a valid one."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    files = manifest.get("files") if isinstance(manifest, dict) and manifest.get("schema") == MANIFEST_SCHEMA else None
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        return None
    return set(files)


def is_ours(folder: Path) -> bool:
    """True when ``folder`` holds nothing but the files its manifest lists (and their folders)."""
    listed = _listed(folder)
    if listed is None:
        return False
    folders = {str(Path(name).parent.as_posix()) for name in listed}
    for path in folder.rglob("*"):
        name = path.relative_to(folder).as_posix()
        if name == MANIFEST:
            continue
        if path.is_symlink() or not (name in listed if path.is_file() else path.is_dir() and _holds_listed(name, folders)):
            return False
    return True


def _holds_listed(name: str, folders: set[str]) -> bool:
    return any(parent == name or parent.startswith(name + "/") for parent in folders)


def check_output(target: Path, overwrite: bool = False, flag: str = "-o") -> None:
    """Raise InputError unless ``target`` can be written: absent (and creatable), an empty
    folder, or, with ``overwrite``, a folder metrichmsr wrote holding nothing else.

    Touches nothing; meant to run before any model loads.
    """
    target = Path(target)
    if target.is_symlink():  # replacing it would move the link, not the folder it names
        raise InputError(f"{flag} {target}: is a link; give the folder it points to")
    if target.exists() and not target.is_dir():
        raise InputError(f"{flag} {target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        if not is_ours(target):
            raise InputError(
                f"{flag} {target}: holds files metrichmsr did not write; refusing to touch it (choose a new or empty folder)"
            )
        if not overwrite:
            raise InputError(f"{flag} {target}: holds an earlier run's results; pass --overwrite to replace them")
    existing = _nearest_existing(target, flag)
    if not existing.is_dir():
        raise InputError(f"{flag} {target}: cannot be created ({existing} is a file, not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {target}: cannot be written ({existing} is not writable)")


def _nearest_existing(target: Path, flag: str) -> Path:
    """``target`` or its nearest ancestor that exists: where it would be created."""
    existing = target
    while not existing.exists():
        if existing.is_symlink() or existing.parent == existing:
            raise InputError(f"{flag} {target}: cannot be created ({existing} is a broken link)")
        existing = existing.parent
    return existing


def probe_writable(target: Path, flag: str = "-o") -> None:
    """InputError unless a folder can be made where ``target`` goes: one is made in its nearest
    existing folder and removed at once. Permissions do not tell (root, read-only mounts,
    /proc); trying does. Run it last, just before the models load."""
    existing = _nearest_existing(Path(target), flag)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".metrichmsr-probe-", dir=existing))
    except OSError as error:
        raise InputError(f"{flag} {target}: cannot be written in {existing} ({error.strerror or error})") from None


def check_apart(output: Path, inputs: Iterable[Path], flag: str = "-o") -> None:
    """Raise InputError when the output folder is an input, holds one, or lies inside an input folder."""
    out = Path(output).resolve()
    for path in inputs:
        inp = Path(path).resolve()
        if out == inp or out in inp.parents:
            raise InputError(f"{flag} {output}: holds the input {path}; choose an output folder apart from the input")
        if inp.is_dir() and inp in out.parents:
            raise InputError(f"{flag} {output}: lies inside the input folder {path}; choose an output folder apart from it")


def folder_output_names(paths: list[Path]) -> dict[Path, str]:
    """The output folder name of each image of a folder run: its stem (``a.jpg`` -> ``a``), or
    its whole file name for images whose stems collide (``a.jpg``, ``A.png`` -> ``a.jpg``,
    ``A.png``; compared ignoring case, as some file systems do). InputError if names still collide."""
    stems = Counter(path.stem.casefold() for path in paths)
    names = {path: path.stem if stems[path.stem.casefold()] == 1 else path.name for path in paths}
    seen: dict[str, Path] = {}
    for path, name in names.items():
        other = seen.setdefault(name.casefold(), path)
        if other != path:
            raise InputError(f"{other.name} and {path.name} would both write the output folder {name!r}; rename one")
    return names


def write_manifest(folder: Path, files: Iterable[str] | None = None) -> None:
    """Claim ``folder``'s ``files`` (POSIX paths relative to it; default: every file in it now)
    as written by metrichmsr (:func:`is_ours`). A command that writes into its folder as it goes
    (``train``) claims the files it will write before it starts."""
    if files is None:
        files = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    (folder / MANIFEST).write_text(json.dumps({"schema": MANIFEST_SCHEMA, "files": sorted(files)}, indent=0))


def replace_dir(source: Path, target: Path, overwrite: bool = False) -> None:
    """Move the complete folder ``source`` to ``target``, replacing a folder of ours there (see :func:`check_output`)."""
    check_output(target, overwrite)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


@contextmanager
def staged_output(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a hidden sibling folder of ``target`` to write into; once the block completes its
    manifest is written and it replaces ``target`` (:func:`replace_dir`); if the block fails it
    is removed, so an interrupted run never leaves a half-written output folder."""
    target = Path(target)
    check_output(target, overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    except OSError as error:
        raise InputError(f"{target}: cannot be written ({error.strerror or error})") from None
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; outputs should be readable as usual
    try:
        yield staging
        write_manifest(staging)
        replace_dir(staging, target, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file in ``path``'s folder and move it into place, so
    ``path`` is either the complete new file or untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp creates the file private (0600); a written file is an ordinary output.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
