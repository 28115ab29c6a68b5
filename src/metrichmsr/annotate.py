"""Metric pseudo-ground-truth for whole datasets: ``metrichmsr annotate``, resumable, on Ray.

The job, from the inputs to the manifest:

1. :func:`list_inputs`: the images of a folder tree, of a text file of paths (one a line) or
   of a glob, each named by its path relative to the input's root (``rel``); its results go to
   ``OUT/<rel without suffix>/`` (:func:`output_names`).
2. :func:`plan`: the last manifest row of each image under these options (:func:`options_digest`)
   says whether it is done (``ok``, same content: size and mtime as recorded, else its sha256),
   to retry (``skipped`` once: ``attempt`` 1 of :data:`MAX_ATTEMPTS`) or given up on.
3. :class:`Annotator` (one per worker: a Ray actor, or in this process for ``workers=0``)
   loads the ``Recoverer`` once and runs batches of images: it writes each image's
   ``result.json`` (and ``scene.glb``, ``overlay.png`` when asked) atomically and returns one
   manifest row per image.
4. :class:`Manifest`: ``OUT/manifest.jsonl``, append-only, one JSON row per image, flushed per
   row, so a killed run loses only the images in flight; compacted to the last row per image
   at the end of a run.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from metrichmsr._outputs import write_atomic
from metrichmsr.defaults import MAX_PEOPLE, MIN_PERSON_PX, MIN_SCORE, POPULATION
from metrichmsr.errors import InputError
from metrichmsr.image_io import IMAGE_SUFFIXES

#: ``OUT/annotate.json``'s schema: the file that marks a folder as an annotate run's.
SCHEMA = "metrichmsr.annotate/1"
RUN_FILE = "annotate.json"
MANIFEST_FILE = "manifest.jsonl"
#: A skipped image is tried this many times in all, over reruns (the first try and one retry).
MAX_ATTEMPTS = 2
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Item:
    """One input image: ``path`` on disk, ``rel`` its name under the input root (POSIX),
    ``out`` its output folder under OUT, ``intrinsics`` (fx, fy, cx, cy) pixels from the side file."""

    path: Path
    rel: str
    out: str
    intrinsics: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Options:
    """Everything that changes an image's outputs (hashed into :func:`options_digest`)."""

    camera: dict = field(default_factory=dict)  # resolve_intrinsics kwargs: intrinsics | focal_px | fov_deg
    camera_height_m: float | None = None
    min_person_px: float = float(MIN_PERSON_PX)
    max_people: int = MAX_PEOPLE
    min_score: float = float(MIN_SCORE)
    depth: str = "planar"
    refine: bool = False
    align: bool = True
    population: str = POPULATION
    weights: str = ""
    weights_md5: str = ""
    device: str = "auto"
    with_glb: bool = False
    with_overlay: bool = False


def options_digest(options: Options) -> str:
    """sha256 (16 hex digits) of the options that change results; the weights by their md5, not their path."""
    fields = {k: v for k, v in asdict(options).items() if k not in ("weights", "device")}
    if fields["population"] == "all":  # as before --population existed: a run started then resumes
        del fields["population"]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def code_version() -> str:
    """The installed package's version (``metrichmsr.__version__``, read from its metadata here:
    the package's front door is a layer above), with the source tree's git commit when there is one (``+g<sha>``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("metrichmsr")
    except PackageNotFoundError:
        __version__ = "0.0.0+unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+g{commit}" if commit else __version__


def file_md5(path: str | Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


# --- inputs -------------------------------------------------------------------------------------


def list_inputs(spec: str | Path) -> tuple[Path, list[Path]]:
    """(root, image paths sorted) of an ``annotate`` INPUT: a folder (searched recursively, hidden
    files and folders left out), a text file of image paths (one a line, ``#`` comments; relative
    to the file's folder), a glob (``'photos/**/*.jpg'``) or one image. Files are picked by suffix
    only; they are decoded by the workers. InputError when none is found."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        root = path
        images = [
            p
            for p in path.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(path).parts)
        ]
        images = [p for p in images if p.is_file()]
    elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return path.parent, [path]
    elif path.is_file():
        images = [p.resolve() for p in _listed_paths(path)]  # listed but missing: a skipped row, not an error
        root = _common_root(images) if images else path.parent
    elif any(c in text for c in GLOB_CHARS):
        images = [Path(p) for p in glob.glob(text, recursive=True)]
        images = [p.resolve() for p in images if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        root = _common_root(images) if images else Path(".")
    else:
        raise InputError(f"{spec}: no such file, folder or glob match")
    if not images:
        raise InputError(f"{spec}: no image files ({', '.join(IMAGE_SUFFIXES[:3])}, ...) found")
    return root, sorted(images, key=lambda p: p.relative_to(root).as_posix())


def _listed_paths(list_file: Path) -> list[Path]:
    """The image paths a text file lists (one a line), relative ones from the file's folder."""
    try:
        lines = list_file.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{list_file}: cannot read the list of images ({getattr(error, 'strerror', None) or error})") from None
    paths = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        entry = Path(line)
        paths.append(entry if entry.is_absolute() else list_file.parent / entry)
    return list(dict.fromkeys(paths))


def _common_root(paths: list[Path]) -> Path:
    return Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))


def output_names(rels: Iterable[str]) -> dict[str, str]:
    """Each image's output folder under OUT: its relative path without the suffix
    (``a/b.jpg`` -> ``a/b``), or with it where two would collide ignoring case (``a/b.jpg``,
    ``a/b.png`` -> ``a/b.jpg``, ``a/b.png``)."""
    rels = list(rels)
    stems = Counter(str(Path(rel).with_suffix("")).casefold() for rel in rels)
    return {rel: rel if stems[str(Path(rel).with_suffix("")).casefold()] > 1 else str(Path(rel).with_suffix("")) for rel in rels}


def read_intrinsics_file(path: Path, rels: list[str]) -> dict[str, tuple[float, float, float, float]]:
    """Per-image intrinsics from a side file: CSV with columns ``path,fx,fy,cx,cy`` or JSON
    ``{path: [fx, fy, cx, cy]}``; a path is the image's name relative to the input root, or its
    file name when that is unique. Returns rel -> (fx, fy, cx, cy) pixels."""
    from metrichmsr.inputs import parse_intrinsics

    where = f"--intrinsics-file {path}"
    try:
        text = path.read_text()
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise InputError(f"{where}: expected an object mapping image paths to [fx, fy, cx, cy]")
            entries = {str(k): v for k, v in data.items()}
        else:
            rows = list(csv.DictReader(text.splitlines()))
            if rows and not {"path", "fx", "fy", "cx", "cy"} <= set(rows[0]):
                raise InputError(f"{where}: expected the CSV columns path,fx,fy,cx,cy")
            entries = {row["path"]: [row["fx"], row["fy"], row["cx"], row["cy"]] for row in rows}
    except (OSError, UnicodeDecodeError, ValueError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"{where}: cannot be read ({str(error).splitlines()[0]})") from None
    names = Counter(Path(rel).name for rel in rels)
    by_name = {Path(rel).name: rel for rel in rels if names[Path(rel).name] == 1}
    found = {}
    for key, value in entries.items():
        rel = key if key in set(rels) else by_name.get(key)
        if rel is None:
            raise InputError(f"{where}: {key!r} is not one of the input images")
        if not isinstance(value, list) or len(value) != 4:
            raise InputError(f"{where}: {key!r}: expected [fx, fy, cx, cy]")
        found[rel] = parse_intrinsics(",".join(str(v) for v in value))
    return found


def check_output_folder(out: Path) -> bool:
    """Raise InputError unless ``out`` may hold an annotate run: absent, an empty folder, or an
    earlier annotate run's (``OUT/annotate.json``). Returns True for an earlier run. Touches nothing."""
    from metrichmsr._outputs import check_output

    if out.is_dir() and not out.is_symlink() and any(out.iterdir()):
        try:
            earlier = json.loads((out / RUN_FILE).read_text()).get("schema") == SCHEMA
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            earlier = False
        if not earlier:
            raise InputError(
                f"-o {out}: holds files that are not an annotate run's (no {RUN_FILE}); refusing to touch it "
                "(choose a new or empty folder)"
            )
        if not os.access(out, os.W_OK | os.X_OK):
            raise InputError(f"-o {out}: cannot be written")
        return True
    check_output(out)
    return False


# --- the manifest -------------------------------------------------------------------------------


class Manifest:
    """``OUT/manifest.jsonl``: one JSON row per image and try, appended and flushed per row."""

    def __init__(self, out: Path):
        self.path = Path(out) / MANIFEST_FILE
        self._file = None

    def rows(self) -> list[dict]:
        """Every whole row written so far (a line cut short by a kill is left out)."""
        if not self.path.is_file():
            return []
        rows = []
        with self.path.open("rb") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and "path" in row and "options" in row:
                    rows.append(row)
        return rows

    def last_rows(self) -> dict[tuple[str, str], dict]:
        """The last row of each (image path, options digest)."""
        return {(row["path"], row["options"]): row for row in self.rows()}

    def append(self, row: dict) -> None:
        if self._file is None:
            if self.path.is_file() and self.path.stat().st_size:
                with self.path.open("rb") as f:  # a row cut short by a kill: start on a line of its own
                    f.seek(-1, os.SEEK_END)
                    torn = f.read(1) != b"\n"
            else:
                torn = False
            self._file = self.path.open("a")
            if torn:
                self._file.write("\n")
        self._file.write(json.dumps(row, sort_keys=True) + "\n")
        self._file.flush()

    def compact(self) -> int:
        """Rewrite the file atomically with the last row of each image and options, in first-seen
        order; returns the number of rows."""
        self.close()
        rows = list(self.last_rows().values())
        write_atomic(self.path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode())
        return len(rows)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class Plan:
    """What a run has to do: ``todo`` (item, attempt) and the counts of the rest."""

    todo: list[tuple[Item, int]]
    done: int = 0  # ok under these options, unchanged
    given_up: int = 0  # skipped MAX_ATTEMPTS times


def plan(items: list[Item], manifest: Manifest, digest: str, out: Path) -> Plan:
    """Which images to run: those without an ``ok`` row for this content and these options (and
    their result.json), a skipped one once more. Content is compared by size and mtime as
    recorded, by sha256 when those differ."""
    last = manifest.last_rows()
    result = Plan([])
    for item in items:
        row = last.get((item.rel, digest))
        if row is not None and not _same_content(item.path, row):
            row = None
        if row is None:
            result.todo.append((item, 1))
        elif row["status"] == "ok" and (out / row["output"] / "result.json").is_file():
            result.done += 1
        elif row["status"] == "ok" or row.get("attempt", 1) < MAX_ATTEMPTS:
            result.todo.append((item, row.get("attempt", 1) + (row["status"] != "ok")))
        else:
            result.given_up += 1
    return result


def _same_content(path: Path, row: dict) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return row.get("size") is None  # still missing: the row said so
    if (stat.st_size, stat.st_mtime_ns) == (row.get("size"), row.get("mtime_ns")):
        return True
    return stat.st_size == row.get("size") and _sha256(path) == row.get("sha256")


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


# --- the worker ---------------------------------------------------------------------------------


class Annotator:
    """One worker: loads the ``Recoverer`` once, then annotates batches of images.

    Ray runs it as an actor (``ray.remote(Annotator)``); ``workers=0`` runs it in this process.
    ``threads``: torch's intra-op threads and BlazePose's graphs at once (None: their defaults):
    a worker given 1 keeps to one core, so N workers use N cores.
    """

    def __init__(self, options: Options, out: str, threads: int | None = None, version: str = ""):
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        import torch

        if threads:
            torch.set_num_threads(threads)
        from metrichmsr.pipeline import Recoverer

        self.options, self.out, self.version = options, Path(out), version
        self.digest = options_digest(options)
        self.worker = f"{platform.node()}:{os.getpid()}"
        started = time.perf_counter()
        self.recoverer = Recoverer(
            device=options.device,
            min_person_px=options.min_person_px,
            max_people=options.max_people,
            min_score=options.min_score,
            depth=options.depth,
            refine=options.refine,
            align=options.align,
            population=options.population,
            weights=options.weights,
            detector_threads=threads,
        )
        self.load_s = time.perf_counter() - started
        self._cpu_at_start = self._cpu_s()

    def ready(self) -> float:
        """Seconds the models took to load (a call that returns once the worker is up)."""
        return self.load_s

    @staticmethod
    def _cpu_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def stats(self) -> dict:
        """This worker process's peak resident memory (``peak_rss_mb``, MiB) and the CPU seconds
        it spent on images (``cpu_s``, all its threads: what another job on the cores cannot inflate)."""
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"peak_rss_mb": peak, "cpu_s": self._cpu_s() - self._cpu_at_start}

    def run(self, batch: list[tuple[Item, int]]) -> list[dict]:
        """Annotate ``batch`` ((item, attempt) pairs); one manifest row per image."""
        return [self.one(item, attempt) for item, attempt in batch]

    def one(self, item: Item, attempt: int = 1) -> dict:
        """Annotate one image and return its manifest row; a file that cannot be used is a
        ``skipped`` row with the reason, never an exception."""
        from metrichmsr.camera import resolve_intrinsics
        from metrichmsr.image_io import load_image

        row = {
            "path": item.rel,
            "output": item.out,
            "options": self.digest,
            "attempt": attempt,
            "worker": self.worker,
            "version": self.version,
            "weights_md5": self.options.weights_md5,
        }
        timings = {}
        started = time.perf_counter()
        try:
            stat = item.path.stat()
            row.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns, sha256=_sha256(item.path))
            pixels, exif = load_image(item.path)
            height, width = pixels.shape[:2]
            camera = {"intrinsics": item.intrinsics} if item.intrinsics else self.options.camera
            intrinsics = resolve_intrinsics(width, height, exif=exif, **camera)
            timings["read_s"] = time.perf_counter() - started
            result = self.recoverer.infer(pixels, K=intrinsics, camera_height_m=self.options.camera_height_m)
            result.image_path = item.rel
            timings["infer_s"] = time.perf_counter() - started - timings["read_s"]
            self._write(result, self.out / item.out)
            timings["write_s"] = time.perf_counter() - started - timings["read_s"] - timings["infer_s"]
            row.update(
                status="ok",
                reason=None,
                people=len(result.people),
                camera_source=result.intrinsics.source,
                width=width,
                height=height,
            )
        except Exception as error:  # one bad image must not stop the worker
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            if not isinstance(error, InputError):
                reason = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
            row.update(status="skipped", reason=reason, people=None, camera_source=None)
            row.setdefault("size", None)
        timings["total_s"] = time.perf_counter() - started
        row["timings"] = {k: round(v, 4) for k, v in timings.items()}
        row["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        return row

    def _write(self, result, folder: Path) -> None:
        """result.json (and scene.glb, overlay.png when asked), each atomically."""
        from PIL import Image

        from metrichmsr.scene.export import write_scene_glb

        folder.mkdir(parents=True, exist_ok=True)
        people = [(p.vertices, result.faces) for p in result.people]
        K = result.intrinsics.K
        if self.options.with_glb:
            depth = result.scene.depth_m if result.scene is not None else None
            floor = result.floor if result.scene is not None else None
            with tempfile.TemporaryDirectory(dir=folder, prefix=".glb-") as tmp:
                size = (result.width, result.height)
                write_scene_glb(Path(tmp) / "scene.glb", people, K, size, image=result.image, scene_depth_m=depth, floor=floor)
                os.replace(Path(tmp) / "scene.glb", folder / "scene.glb")
        if self.options.with_overlay:
            overlay = self.recoverer.renderer.overlay(result.image, K, people) if people else result.image
            with tempfile.TemporaryDirectory(dir=folder, prefix=".overlay-") as tmp:
                Image.fromarray(overlay).save(Path(tmp) / "overlay.png", optimize=False)
                os.replace(Path(tmp) / "overlay.png", folder / "overlay.png")
        write_atomic(folder / "result.json", json.dumps(result.to_json(), indent=1).encode())


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Summary:
    """What a run did: counts, seconds, and each worker's :meth:`Annotator.stats`."""

    images: int
    done_before: int
    ok: int = 0
    skipped: int = 0
    given_up: int = 0
    seconds: float = 0.0
    load_s: float = 0.0
    workers: int = 0
    worker_stats: list[dict] = field(default_factory=list)
    rows: int = 0

    @property
    def rate(self) -> float:
        """Images per second over the run's work (after the models loaded)."""
        work = self.seconds - self.load_s
        return (self.ok + self.skipped) / work if work > 0 else float("nan")

    def line(self, out: Path) -> str:
        ran = self.ok + self.skipped
        where = f"{self.workers} worker(s)" if self.workers else "in this process"
        message = f"done: {ran} image(s) annotated ({self.ok} ok, {self.skipped} skipped)"
        if ran:
            message += f" in {self.seconds:.1f} s, {self.rate:.2f} images/s {where} (workers started in {self.load_s:.1f} s)"
        message += f"; {self.done_before} already done"
        if self.given_up:
            message += f", {self.given_up} skipped for good (tried {MAX_ATTEMPTS} times)"
        return f"{message}; {self.rows} manifest row(s) -> {out / MANIFEST_FILE}"


def prepare(input_spec: str | Path, out: Path, intrinsics_file: Path | None = None) -> list[Item]:
    """Every check of an annotate run that needs no model: the inputs, the side file, the
    output folder. Touches nothing."""
    from metrichmsr._outputs import check_apart

    root, paths = list_inputs(input_spec)
    check_output_folder(out)
    check_apart(out, [root])
    rels = [p.relative_to(root).as_posix() for p in paths]
    names = output_names(rels)
    intrinsics = read_intrinsics_file(intrinsics_file, rels) if intrinsics_file is not None else {}
    return [Item(p, rel, names[rel], intrinsics.get(rel)) for p, rel in zip(paths, rels)]


def claim(out: Path, input_spec: str | Path, options: Options) -> None:
    """Make ``out`` an annotate run's folder (``annotate.json``), or keep an earlier run's."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / RUN_FILE).is_file():
        info = {"schema": SCHEMA, "input": str(input_spec), "options": asdict(options), "manifest": MANIFEST_FILE}
        write_atomic(out / RUN_FILE, json.dumps(info, indent=1).encode())


def batches(todo: list[tuple[Item, int]], size: int) -> Iterator[list[tuple[Item, int]]]:
    for start in range(0, len(todo), size):
        yield todo[start : start + size]


def annotate(
    items: list[Item],
    out: Path,
    options: Options,
    input_spec: str | Path = "",
    workers: int = 0,
    address: str | None = None,
    batch: int = 4,
    threads: int | None = None,
    on_row: Callable[[dict], None] | None = None,
    progress: bool = True,
    todo: Plan | None = None,
) -> Summary:
    """Annotate ``items`` (from :func:`prepare`) into ``out``, skipping what an earlier run did.

    ``workers``: 0 runs in this process; N > 0 starts N Ray actors (``address``: a Ray cluster,
    ``"auto"`` or ``ray://host:10001``; None: a local Ray on this machine). ``batch``: images per
    call to a worker. ``threads``: torch threads per worker (default: this machine's cores
    shared among the local workers). ``on_row`` sees each manifest row as it is written.
    ``todo``: the run's :func:`plan`, when the caller has made it.
    """
    from tqdm import tqdm

    manifest = Manifest(out)
    digest = options_digest(options)
    todo = plan(items, manifest, digest, out) if todo is None else todo
    workers = min(workers, len(todo.todo))  # no worker without an image
    summary = Summary(images=len(items), done_before=todo.done, given_up=todo.given_up, workers=workers)
    started = time.perf_counter()
    if todo.todo:
        claim(out, input_spec, options)
        bar = tqdm(total=len(todo.todo), desc="annotate", unit="image", file=sys.stderr, disable=not progress)

        def record(row: dict) -> None:
            manifest.append(row)
            if row["status"] == "ok":
                summary.ok += 1
            else:
                summary.skipped += 1
                bar.write(f"metrichmsr: skipped {row['path']}: {row['reason']}", file=sys.stderr)
            bar.update(1)
            bar.set_postfix(ok=summary.ok, skipped=summary.skipped)
            if on_row is not None:
                on_row(row)

        try:
            run = _run_local if workers == 0 else _run_ray
            summary.load_s, summary.worker_stats = run(
                todo.todo, out, options, workers, address, batch, threads, record, bar.reset, code_version()
            )
        finally:
            bar.close()
            manifest.close()
    summary.seconds = time.perf_counter() - started
    summary.rows = manifest.compact() if todo.todo else len(manifest.last_rows())
    return summary


def _run_local(todo, out, options, workers, address, batch, threads, record, ready, version) -> tuple[float, list[float]]:
    """The batches in this process, one after the other; returns (start-up seconds, [its stats])."""
    worker = Annotator(options, str(out), threads, version)
    ready()
    for part in batches(todo, batch):
        for item, attempt in part:
            record(worker.one(item, attempt))
    return worker.load_s, [worker.stats()]


def _run_ray(todo, out, options, workers, address, batch, threads, record, ready, version) -> tuple[float, list[float]]:
    """The batches over ``workers`` Ray actors, two batches queued per actor so none waits;
    returns (start-up seconds: Ray and the models, each actor's stats)."""
    import ray

    started = time.perf_counter()

    env = {"env_vars": {"PYOPENGL_PLATFORM": os.environ.get("PYOPENGL_PLATFORM", "egl")}}
    if address:
        ray.init(address=address, log_to_driver=False, runtime_env=env, logging_level=logging.WARNING)
        threads = threads or 1
    else:
        threads = threads or max(1, (os.cpu_count() or 1) // workers)
        ray.init(
            num_cpus=workers * threads,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env=env,
            logging_level=logging.WARNING,
        )
    try:
        # A worker that dies (killed, out of memory, a lost node) is restarted once and its
        # batch run again there; one that dies twice (an image that crashes it) is left, its
        # batch recorded as skipped, and the others carry on.
        actor = ray.remote(Annotator).options(num_cpus=threads, max_restarts=1, max_task_retries=1)
        actors = [actor.remote(options, str(out), threads, version) for _ in range(workers)]
        ray.get([a.ready.remote() for a in actors])
        load_s = time.perf_counter() - started
        ready()
        queue = batches(todo, batch)
        alive = list(range(workers))
        pending = {}
        for i in alive:
            for part in [next(queue, None), next(queue, None)]:
                if part:
                    pending[actors[i].run.remote(part)] = (i, part)
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            i, part = pending.pop(ref)
            try:
                rows = ray.get(ref)
            except ray.exceptions.RayError as error:  # the worker died under it: skipped this time
                rows = [_died(item, attempt, options, version, f"worker died: {type(error).__name__}") for item, attempt in part]
                if isinstance(error, ray.exceptions.ActorDiedError) and i in alive:
                    alive.remove(i)
            for row in rows:
                record(row)
            nxt = next(queue, None)
            if nxt and alive:
                i = i if i in alive else alive[0]
                pending[actors[i].run.remote(nxt)] = (i, nxt)
            elif nxt:  # no worker left: the rest waits for the next run
                for item, attempt in [task for part in [nxt, *queue] for task in part]:
                    record(_died(item, attempt, options, version, "no worker left: they died"))
        return load_s, [_stats(actors[i]) for i in alive]
    finally:
        ray.shutdown()


def _stats(actor) -> dict:
    """An actor's :meth:`Annotator.stats`; NaNs where it cannot answer (restarting)."""
    import ray

    try:
        return ray.get(actor.stats.remote(), timeout=60)
    except ray.exceptions.RayError:
        return {"peak_rss_mb": float("nan"), "cpu_s": float("nan")}


def _died(item: Item, attempt: int, options: Options, version: str, reason: str) -> dict:
    """The skipped row of an image whose worker died under it (it counts as a try)."""
    try:
        stat = item.path.stat()
        size, mtime_ns = stat.st_size, stat.st_mtime_ns
    except OSError:
        size = mtime_ns = None
    return {
        "path": item.rel,
        "output": item.out,
        "options": options_digest(options),
        "attempt": attempt,
        "status": "skipped",
        "reason": reason,
        "people": None,
        "camera_source": None,
        "size": size,
        "mtime_ns": mtime_ns,
        "sha256": None,
        "version": version,
        "weights_md5": options.weights_md5,
    }
