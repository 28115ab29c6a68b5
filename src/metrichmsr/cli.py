"""`metrichmsr` command line: a thin layer over ``metrichmsr.pipeline.Recoverer``."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from metrichmsr.defaults import (
    DEFAULT_RIG_FORMATS,
    DETECT_EVERY,
    FULL_SCAN_EVERY,
    MAX_PEOPLE,
    MIN_PERSON_PX,
    MIN_SCORE,
    POPULATION,
    POPULATIONS,
    RIG_FORMATS,
)
from metrichmsr.errors import InputError

EXIT_INPUT_ERROR = 2
EXIT_SOME_FAILED = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise InputError(message)


def _number(name: str, valid, requirement: str):
    """argparse type: a finite float for which ``valid(value)`` holds."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (math.isfinite(value) and valid(value)):
            raise argparse.ArgumentTypeError(f"{name} must be {requirement}, got {text!r}")
        return value

    return parse


def _whole_number(name: str, minimum: int = 1):
    """argparse type: a whole number >= ``minimum`` (as a float: callers take ``int``)."""
    return _number(name, lambda value: value >= minimum and value == int(value), f"a whole number >= {minimum}")


def _positive_float(name: str):
    return _number(name, lambda value: value > 0, "positive")


def _formats(allowed: tuple[str, ...]):
    """argparse type: a comma-separated list of ``allowed`` names, as a tuple."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(","))
        unknown = [name for name in names if name not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"--format must be {' or '.join(allowed)} (comma-separated), got {unknown[0]!r}")
        return tuple(dict.fromkeys(names))

    return parse


def _camera_height(text: str) -> float:
    from metrichmsr.inputs import check_camera_height

    try:
        return check_camera_height(float(text), "the height")
    except ValueError as error:  # InputError is one
        raise argparse.ArgumentTypeError(
            str(error) if isinstance(error, InputError) else f"--camera-height must be a number, got {text!r}"
        ) from None


EXIT_CODES = f"""exit status:
  0  done (also when nobody is in the photo)
  {EXIT_INPUT_ERROR}  bad input: one line on stderr, nothing written, nothing touched (checked before any model loads)
  {EXIT_SOME_FAILED}  a folder run where some images could not be read, or a clip with broken frames (the others are done)
  1  internal error (METRICHMSR_DEBUG=1 shows the traceback)"""

RECOVER_FILES = """files written, per image (OUT, or OUT/<image stem>/ for a folder; OUT/<file name>/ where stems collide):
  result.json   people (camera frame, metres), camera, scene (schema metrichmsr.result/1)
  scene.glb     people, camera and scene in one glTF file (Blender, three.js)
  overlay.png   the bodies drawn over the photo
  view.html     the 3D viewer: open it in a browser (works offline), or `metrichmsr view OUT`
  people_rigged.glb   the people on Anny's skeleton (104 bones), posed, to pose again (--format glb, the default)
  person_<id>.bvh     each person's skeleton and pose as BVH motion (--format bvh)
  depth.npy     scene depth in metres (float32, NaN unknown), and depth.png to look at (with scene depth)
  .metrichmsr-output.json   the list of these files: how a later --overwrite knows the folder is ours

An existing output folder is replaced only with --overwrite, and only when it holds nothing
but the files metrichmsr wrote there; a folder with anything else in it is never touched."""

TRACK_FILES = """files written (OUT; docs/tracks.md):
  tracks.json        every frame's people with their track ids, camera frame, metres (schema metrichmsr.tracks/1)
  tracks.csv         one row per person per frame: where they stand on the floor, height, camera-frame position
  trajectories.png   the floor from above, one line per track
  overlay.mp4        the bodies drawn over each recovered frame, H.264 (--overlay-video)
  view.html          the 3D viewer with a timeline: open it in a browser, or `metrichmsr view OUT`
  scene.glb          the people moving on Anny's skeleton (glTF animation "clip": Blender, three.js),
                     camera and floor (--format glb, the default)
  track_<id>.bvh     each track's skeleton and poses as BVH motion, at the clip's frame rate (--format bvh)
  .metrichmsr-output.json   the list of these files (see recover --help)

A fixed camera (the default) sees one floor: every frame's people place it, the pooled floor
puts everyone on it. With --moving-camera each frame keeps its own."""


ANNOTATE_FILES = """files written (OUT):
  <relative path without suffix>/result.json   each image's people, as recover's (schema metrichmsr.result/1)
  <relative path without suffix>/scene.glb, overlay.png   with --with-glb, --with-overlay
  manifest.jsonl   one row per image: status (ok / skipped and why), people, camera source, timings,
                   sha256, the code version and the HumanMoE weights' md5
  annotate.json    marks OUT as an annotate run's (the first run's input and options)

Run the same command again to resume: images done under the same options (same content) are
skipped, skipped ones are tried once more, and the manifest keeps one row per image."""


def build_parser() -> argparse.ArgumentParser:
    from metrichmsr import __version__
    from metrichmsr.video_io import DEFAULT_FPS, VIDEO_SUFFIXES

    parser = _Parser(
        prog="metrichmsr",
        description="Metric human mesh recovery from photos.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"metrichmsr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    recover = commands.add_parser(
        "recover",
        help="people as metric 3D bodies from an image or a folder of images",
        epilog=f"{RECOVER_FILES}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    recover.add_argument("input", type=Path, help="image file, or folder of images")
    recover.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    recover.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in the output folder")
    recover.add_argument(
        "--dry-run",
        action="store_true",
        help="check every input and say where each image's results would go; load no model, write nothing",
    )
    _add_camera_arguments(recover)
    recover.add_argument(
        "--same-camera",
        action="store_true",
        help="the folder's images come from one camera (one lens, one zoom, one size): without "
        "--intrinsics/--focal/--fov or EXIF, the focal length is estimated once from all of their lines",
    )
    recover.add_argument("--boxes", type=Path, help="JSON person boxes [[x0,y0,x1,y1], ...] (folder: {file name: boxes})")
    recover.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="refine HumanMoE's one-pass prediction with the metric fit (slower; on the benchmark it is "
        "not better, see BENCHMARKS.md)",
    )
    recover.add_argument(
        "--depth",
        default="planar",
        metavar="SPEC",
        help="scene depth: planar (default: floor and backdrop from the people, offline), none, "
        "file:DEPTH.npy|.png|.exr (your own map: metres, 16-bit millimetres, metres), "
        "hf:MODEL (a Hugging Face metric depth model, e.g. "
        "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf; needs `pip install transformers`)",
    )
    recover.add_argument(
        "--format",
        type=_formats(RIG_FORMATS),
        default=DEFAULT_RIG_FORMATS,
        metavar="FORMATS",
        help="the rigged people's files, comma-separated: glb (people_rigged.glb, the default), "
        "bvh (person_<id>.bvh), or glb,bvh",
    )
    _add_people_arguments(recover)

    track = commands.add_parser(
        "track",
        help="people in metres over time from a video or a folder of frames: tracks on one floor",
        epilog=f"{TRACK_FILES}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    track.add_argument("input", type=Path, help=f"video file ({', '.join(VIDEO_SUFFIXES)}) or folder of frames (name order)")
    track.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    track.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in the output folder")
    _add_camera_arguments(track)
    track.add_argument(
        "--every",
        type=_whole_number("--every"),
        default=1,
        metavar="N",
        help="recover every N-th frame only (default 1: every frame)",
    )
    track.add_argument(
        "--fps",
        type=_positive_float("--fps"),
        help=f"the clip's frame rate (default: the video's own; {DEFAULT_FPS:g} for a folder of frames)",
    )
    track.add_argument(
        "--detect-every",
        type=_whole_number("--detect-every"),
        default=DETECT_EVERY,
        metavar="N",
        help=f"scan for people on every N-th recovered frame (default {DETECT_EVERY}); in between, follow the people "
        "found from where they were, ~10x cheaper (1: scan every frame). A fixed camera's scans look only where the "
        f"picture moves, every {FULL_SCAN_EVERY}-th scan everywhere",
    )
    track.add_argument(
        "--overlay-video",
        action="store_true",
        help="also write overlay.mp4: the people drawn over each recovered frame (H.264; about 0.3 s more a frame)",
    )
    track.add_argument(
        "--moving-camera",
        action="store_true",
        help="the camera moves (a phone following someone): each frame keeps its own floor, "
        "and positions are relative to the camera in that frame",
    )
    track.add_argument(
        "--format",
        type=_formats(RIG_FORMATS),
        default=DEFAULT_RIG_FORMATS,
        metavar="FORMATS",
        help="the people moving on Anny's skeleton, comma-separated: glb (the animated scene.glb, the default), "
        "bvh (track_<id>.bvh), or glb,bvh",
    )
    _add_people_arguments(track, align=False)

    annotate = commands.add_parser(
        "annotate",
        help="metric people for a whole dataset: result.json per image, a manifest, resumable, on Ray",
        epilog=f"{ANNOTATE_FILES}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    annotate.add_argument("input", help="folder (searched recursively), text file of image paths (one a line), or a glob")
    annotate.add_argument(
        "-o", "--output", type=Path, required=True, help="output folder (new, empty, or an earlier annotate run's)"
    )
    annotate.add_argument(
        "--workers",
        type=_whole_number("--workers", minimum=0),
        default=None,
        metavar="N",
        help="Ray workers, each loading the models once (default: this machine's cores; 0: no Ray, in this process)",
    )
    annotate.add_argument(
        "--address",
        metavar="ADDR",
        help="a running Ray cluster: auto (this node's) or ray://HEAD:10001 (default: a local Ray on this machine)",
    )
    annotate.add_argument(
        "--batch",
        type=_whole_number("--batch"),
        default=4,
        metavar="B",
        help="images per call to a worker (default 4; a killed run loses at most two batches per worker)",
    )
    annotate.add_argument(
        "--threads",
        type=_whole_number("--threads"),
        metavar="T",
        help="torch threads per worker (default: the local cores shared among the workers; 1 on a cluster)",
    )
    annotate.add_argument(
        "--intrinsics-file",
        type=Path,
        metavar="FILE",
        help="per-image intrinsics: CSV path,fx,fy,cx,cy or JSON {path: [fx, fy, cx, cy]} (paths relative to INPUT)",
    )
    annotate.add_argument("--with-glb", action="store_true", help="also write each image's scene.glb")
    annotate.add_argument("--with-overlay", action="store_true", help="also write each image's overlay.png")
    annotate.add_argument("--depth", default="planar", metavar="SPEC", help="scene depth: planar (default), none, hf:MODEL")
    annotate.add_argument("--refine", action=argparse.BooleanOptionalAction, default=False, help="also run the metric fit")
    _add_camera_arguments(annotate)
    _add_people_arguments(annotate)

    view = commands.add_parser(
        "view",
        help="serve a result folder's 3D viewer (view.html) on this machine and open it in a browser",
        description="Serve a recover or track output folder (or a folder of them) at http://127.0.0.1:PORT/ "
        "until Ctrl-C. view.html also opens straight from the file system; the server is for a browser "
        "on another machine (forward the port) or a folder written before view.html existed.",
    )
    view.add_argument("folder", type=Path, help="a recover or track output folder, or a folder of recover's per-image folders")
    view.add_argument(
        "--port",
        type=_number("--port", lambda v: 0 <= v <= 65535 and v == int(v), "a whole number from 0 to 65535"),
        default=8765,
        help="port to listen on, on 127.0.0.1 only (default 8765; 0: any free port)",
    )
    view.add_argument("--no-browser", action="store_true", help="print the address, open no browser")

    synth = commands.add_parser("synth", help="render synthetic people with metric ground truth (for benchmarks and training)")
    synth.add_argument(
        "--n",
        type=_whole_number("--n"),
        required=True,
        help="number of images (with --video: of clips)",
    )
    synth.add_argument(
        "--seed",
        type=_whole_number("--seed", minimum=0),
        default=0,
        help="first seed; image (or clip) i uses seed + i (seeds >= 1000000 are the held-out benchmark split)",
    )
    synth.add_argument(
        "--video",
        action="store_true",
        help="clips of people walking before a fixed camera, with their true trajectories "
        "(OUT/<seed>/frames/*.png and truth.npz; for python -m metrichmsr.bench.track_synth)",
    )
    synth.add_argument("--frames", type=_whole_number("--frames"), help="with --video: frames per clip (default 48)")
    synth.add_argument("--fps", type=_positive_float("--fps"), help="with --video: frame rate of the clips (default 12)")
    synth.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    synth.add_argument("--overwrite", action="store_true", help="replace a set an earlier run wrote there")
    synth.add_argument(
        "--long-side",
        type=_number("--long-side", lambda v: 64 <= v <= 4096 and v == int(v), "a whole number in 64..4096"),
        default=640,
        help="longer image side in pixels (default 640)",
    )

    bench = commands.add_parser("bench", help="score methods side by side on a synth folder")
    bench.add_argument("input", type=Path, help="folder written by `metrichmsr synth`")
    bench.add_argument("-o", "--output", type=Path, help="report folder (default: <input>-bench)")
    bench.add_argument("--overwrite", action="store_true", help="replace a report an earlier run wrote there")
    bench.add_argument(
        "--methods",
        help="comma-separated, from full, fixed-fov, box-only, box-true-focal, fit-only, humanmoe+fit, default-fov, "
        "estimated (default: the first three; with --unknown-camera: full, default-fov, estimated)",
    )
    bench.add_argument(
        "--limit",
        type=_whole_number("--limit"),
        help="score only the first N images",
    )
    bench.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    bench.add_argument(
        "--unknown-camera",
        action="store_true",
        help="hide K from the methods: run full (true K), default-fov and estimated (what recover does without K)",
    )
    bench.add_argument(
        "--camera-height-known",
        action="store_true",
        help="give the floor step each scene's true camera height (as `recover --camera-height` does)",
    )
    bench.add_argument(
        "--population",
        choices=POPULATIONS,
        default=POPULATION,
        help="who the methods take the people to be (as `recover --population`; the renders are of all ages)",
    )
    bench.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="HumanMoE network the methods use: a `metrichmsr train` run's humanmoe.pt (default: the shipped one)",
    )

    train = commands.add_parser("train", help="train the HumanMoE network on synthetic people")
    train.add_argument("-o", "--output", type=Path, required=True, help="run folder (checkpoints, log, curves, weights)")
    train.add_argument(
        "--config",
        type=Path,
        help="TOML recipe (default: the CPU recipe, train/humanmoe.toml; the shipped weights' are train/humanmoe_gpu.toml, "
        "humanmoe_gpu_renders.toml, then humanmoe_clothes.toml)",
    )
    train.add_argument(
        "--steps",
        type=_whole_number("--steps"),
        help="override the recipe's number of steps",
    )
    train.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt")
    train.add_argument("--overwrite", action="store_true", help="start over in a run folder an earlier run wrote")
    train.add_argument("--max-minutes", type=_positive_float("--max-minutes"), help="stop (and export) after this many minutes")
    train.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    return parser


def _add_camera_arguments(parser: argparse.ArgumentParser) -> None:
    """--intrinsics | --focal | --fov, and --camera-height."""
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument("--intrinsics", help="fx,fy,cx,cy in pixels")
    camera.add_argument("--focal", type=_positive_float("--focal"), help="focal length in pixels")
    camera.add_argument(
        "--fov",
        type=_number("--fov", lambda value: 0 < value < 180, "between 0 and 180 degrees"),
        help="horizontal field of view in degrees",
    )
    parser.add_argument(
        "--camera-height",
        type=_camera_height,
        metavar="M",
        help="the camera's height above the floor in metres, if known (a mounted or tripod camera): "
        "the people standing on the floor are placed by it",
    )


def _add_people_arguments(parser: argparse.ArgumentParser, align: bool = True) -> None:
    """Which network finds the people, where it runs and how hard it looks; ``align``: the
    default of ``--align`` (``track`` leaves it off: it costs ~0.3 s a frame)."""
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="HumanMoE network to use: a `metrichmsr train` run's humanmoe.pt (default: the shipped one)",
    )
    parser.add_argument(
        "--min-person-px",
        type=_positive_float("--min-person-px"),
        default=MIN_PERSON_PX,
        help=f"smallest person height in pixels to look for (default {MIN_PERSON_PX:g})",
    )
    parser.add_argument(
        "--max-people",
        type=_whole_number("--max-people"),
        default=MAX_PEOPLE,
        help=f"most people to recover from one image, the most confident first (default {MAX_PEOPLE})",
    )
    parser.add_argument(
        "--min-score",
        type=_number("--min-score", lambda value: 0 < value < 1, "between 0 and 1"),
        default=MIN_SCORE,
        help=f"detection confidence a person needs, 0-1 (default {MIN_SCORE:g}; raise it if "
        "things that are not people are found, lower it to find more people)",
    )
    parser.add_argument(
        "--align",
        action=argparse.BooleanOptionalAction,
        default=align,
        help="pose each body onto BlazePose's landmarks, its build and distance kept, so the overlay lines up "
        f"with the image (default {'on' if align else 'off'}; about 0.3 s an image on a 2-core CPU)",
    )
    parser.add_argument(
        "--population",
        choices=POPULATIONS,
        default=POPULATION,
        help="who the people are: auto (default: adults where at least three stand on the floor and "
        "all are adult-sized against each other, else all), all (anyone, each one's age and height as "
        "read) or adults (everyone 18 or older, their heights pulled toward the adults' median: a "
        "street, a platform, a team; nobody is made a child)",
    )


def _view(args) -> int:
    import signal
    import webbrowser

    from metrichmsr.viewer import make_server, pages

    found = pages(args.folder)
    server = make_server(args.folder, int(args.port))
    host, port = server.server_address[:2]
    urls = [f"http://{host}:{port}/{page}" for page in found]
    print(f"serving {args.folder} (Ctrl-C to stop):")
    for url in urls[:10]:
        print(f"  {url}")
    if len(urls) > 10:
        print(f"  ... and {len(urls) - 10} more: http://{host}:{port}/ lists the folders")
    sys.stdout.flush()
    if not args.no_browser:
        webbrowser.open(urls[0])
    # Ctrl-C stops the server even when its parent started it with SIGINT ignored (Python then
    # keeps it ignored), as a background job or a process that ran Ray may.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # how a server is stopped: not an error
    finally:
        server.server_close()
    return 0


def _train(args) -> int:
    from dataclasses import replace
    from importlib import resources

    from metrichmsr.train.trainer import TrainConfig

    config_path = args.config or Path(str(resources.files("metrichmsr.train") / "humanmoe.toml"))
    if not config_path.is_file():
        raise InputError(f"--config {config_path}: no such file")
    try:
        config = TrainConfig.from_toml(config_path)
    except (ValueError, TypeError) as error:
        raise InputError(f"--config {config_path}: {error}") from None
    if args.steps:
        config = replace(config, steps=int(args.steps))
    if args.resume and not (args.output / "last.pt").is_file():
        raise InputError(f"--resume: no checkpoint {args.output / 'last.pt'}")
    if not args.resume:
        from metrichmsr._outputs import check_output

        check_output(args.output, args.overwrite)

    from metrichmsr.devices import resolve_device
    from metrichmsr.train.trainer import train

    device = resolve_device(args.device)
    started = time.perf_counter()
    weights = train(config, args.output, device=str(device), resume=args.resume, max_minutes=args.max_minutes)
    seconds = time.perf_counter() - started
    print(f"done: up to {config.steps} steps in {seconds:.0f} s -> {weights} (curves: {args.output / 'loss.png'})")
    return 0


def _synth(args) -> int:
    from metrichmsr._outputs import check_output

    check_output(args.output, args.overwrite)
    from dataclasses import replace

    from metrichmsr.synth import HELD_OUT_SEED_START, SceneConfig
    from metrichmsr.synth.dataset import write_dataset

    n, seed = int(args.n), int(args.seed)
    if seed < HELD_OUT_SEED_START < seed + n:
        raise InputError(f"--seed {seed} --n {n}: straddles the held-out split, which starts at seed {HELD_OUT_SEED_START}")
    if not args.video and (args.frames is not None or args.fps is not None):
        raise InputError("--frames and --fps are for --video")
    split = "held-out (benchmark)" if seed >= HELD_OUT_SEED_START else "training"
    started = time.perf_counter()
    if args.video:
        from metrichmsr.synth.video import VideoConfig, write_clips

        config = VideoConfig(long_side_px=int(args.long_side))
        config = replace(config, frames=int(args.frames or config.frames), fps=float(args.fps or config.fps))
        write_clips(args.output, n, seed, config, overwrite=args.overwrite)
        seconds = time.perf_counter() - started
        print(
            f"done: {n} clip(s) of {config.frames} frames at {config.fps:g} fps, seeds {seed}..{seed + n - 1} ({split} split) "
            f"in {seconds:.1f} s ({seconds / (n * config.frames):.2f} s/frame) -> {args.output}"
        )
        return 0
    write_dataset(args.output, n, seed, replace(SceneConfig(), long_side_px=int(args.long_side)), overwrite=args.overwrite)
    seconds = time.perf_counter() - started
    print(f"done: {n} image(s), seeds {seed}..{seed + n - 1} ({split} split) in {seconds:.1f} s -> {args.output}")
    return 0


def _bench(args) -> int:
    from metrichmsr._outputs import check_apart, check_output
    from metrichmsr.bench.run import DEFAULT_METHODS, MARKER, METHODS, UNKNOWN_CAMERA_METHODS
    from metrichmsr.synth.dataset import list_samples

    if args.methods is None:
        methods = list(UNKNOWN_CAMERA_METHODS if args.unknown_camera else DEFAULT_METHODS)
    else:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InputError(f"--methods: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(METHODS)}")
    if not args.input.is_dir():
        raise InputError(f"{args.input}: no such folder")
    list_samples(args.input)
    output = args.output or args.input.with_name(args.input.name + "-bench")
    check_output(output, args.overwrite)
    check_apart(output, [args.input])

    from metrichmsr.bench.run import run
    from metrichmsr.devices import resolve_device

    resolve_device(args.device)
    print(
        run(
            args.input,
            output,
            methods,
            device=args.device,
            limit=int(args.limit) if args.limit else None,
            weights=args.weights,
            camera_height_known=args.camera_height_known,
            overwrite=args.overwrite,
            population=args.population,
        )
    )
    print(f"report: {output / MARKER}, {output / 'results.csv'}, plots in {output}")
    return 0


def _load_boxes(path: Path | None, sizes: dict[str, tuple[int, int]], single: str | None = None):
    """``--boxes``, every box checked against its image: for the one image named ``single``, its
    (N, 4) boxes; for a folder run, a file name -> (N, 4) mapping. ``sizes``: each readable
    image's file name -> (W, H)."""
    from metrichmsr.inputs import check_boxes

    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"--boxes {path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"--boxes {path}: not valid JSON ({str(error).splitlines()[0]})") from None
    if single is not None:
        if not isinstance(data, list):
            raise InputError(f"--boxes {path}: expected a list of [x0, y0, x1, y1]")
        return check_boxes(data, f"--boxes {path}", sizes[single])
    if not isinstance(data, dict):
        raise InputError(f"--boxes {path}: for a folder, expected an object mapping file names to box lists")
    unknown = sorted(name for name in data if name not in sizes)
    if unknown:
        raise InputError(f"--boxes {path}: {unknown[0]!r} is not a readable image of the folder ({len(unknown)} such name(s))")
    return {name: check_boxes(boxes, f"--boxes {path}[{name!r}]", sizes[name]) for name, boxes in data.items()}


def _camera_kwargs(args) -> dict:
    from metrichmsr.inputs import parse_intrinsics

    if args.intrinsics is not None:
        return {"intrinsics": parse_intrinsics(args.intrinsics)}
    if args.focal is not None:
        return {"focal_px": args.focal}
    if args.fov is not None:
        return {"fov_deg": args.fov}
    return {}


@dataclass
class _Job:
    """One image of a ``recover`` run, checked: where its results go and its boxes."""

    path: Path
    out_dir: Path
    boxes: object = None  # (N, 4) array, or None: detect the people


def _recover_jobs(args, depth) -> tuple[list[_Job], list[tuple[str, InputError]], object]:
    """Every check of a ``recover`` run that needs no model: the images, the output folders,
    ``--boxes`` and ``--depth`` against the images. Writes nothing.

    Returns (the jobs, (file name, why) of each folder image that cannot be used, the decoded
    single image or None)."""
    from metrichmsr._outputs import check_apart, check_output, folder_output_names
    from metrichmsr.image_io import image_size, list_images, load_image

    if not args.input.exists():
        raise InputError(f"{args.input}: no such file or folder")
    check_apart(args.output, [args.input])
    if not args.input.is_dir():
        check_output(args.output, args.overwrite)
        decoded = load_image(args.input)
        size = decoded[0].shape[1::-1]
        boxes = _load_boxes(args.boxes, {args.input.name: size}, single=args.input.name)
        depth.check_size(size)
        return [_Job(args.input, args.output, boxes)], [], decoded
    images = list_images(args.input)
    if not images:
        raise InputError(f"{args.input}: no image files (.jpg, .png, ...) in this folder")
    if args.output.exists() and not args.output.is_dir():
        raise InputError(f"-o {args.output}: exists and is not a folder")
    sizes, unreadable = {}, []
    for path in images:
        try:
            size = image_size(path)
            depth.check_size(size)
            sizes[path.name] = size
        except InputError as error:
            unreadable.append((path.name, error))
    if not sizes:
        raise InputError(f"{args.input}: none of its {len(images)} image file(s) can be used ({unreadable[0][1]})")
    if args.same_camera and len(set(sizes.values())) > 1:
        (first, a), (other, b) = next((x, y) for x, y in zip(sizes.items(), list(sizes.items())[1:]) if x[1] != y[1])
        raise InputError(f"--same-camera: {first} is {a[0]}x{a[1]} but {other} is {b[0]}x{b[1]}; one camera gives one image size")
    boxes = _load_boxes(args.boxes, sizes) or {}
    names = folder_output_names([path for path in images if path.name in sizes])
    jobs = [_Job(path, args.output / name, boxes.get(path.name)) for path, name in names.items()]
    for job in jobs:
        check_output(job.out_dir, args.overwrite)
    return jobs, unreadable, None


def _recover(args) -> int:
    from metrichmsr._outputs import probe_writable
    from metrichmsr.scene.depth import depth_backend

    # Every check on the user's input runs before the heavy imports and the model loads, so
    # bad input fails in well under a second with one line on stderr (no model log noise).
    camera = _camera_kwargs(args)
    depth = depth_backend(args.depth, args.device)  # a file: map is read and checked here
    jobs, unreadable, decoded = _recover_jobs(args, depth)
    _check_weights(args)
    depth.check_available()  # a hf: model neither cached nor reachable
    from metrichmsr.devices import resolve_device  # imports torch: the last check

    resolve_device(args.device)
    if not args.dry_run:
        probe_writable(args.output)
    for name, error in unreadable:
        print(f"metrichmsr: skipped {name}: {error}", file=sys.stderr)
    failures = len(unreadable)
    if args.dry_run:
        for job in jobs:
            print(f"{job.path.name} -> {job.out_dir}")
        print(f"checked: {len(jobs)} image(s) to recover, {failures} unreadable; nothing written")
        return EXIT_SOME_FAILED if failures else 0

    from tqdm import tqdm

    from metrichmsr.camera import resolve_intrinsics
    from metrichmsr.image_io import load_image

    folder = decoded is None
    started = time.perf_counter()
    with _recoverer(args, depth=depth, refine=args.refine) as recoverer:
        load_s = time.perf_counter() - started
        shared = _shared_camera(jobs) if args.same_camera and not camera and decoded is None else None
        progress = tqdm(jobs, desc="recover", unit="image", disable=not folder, file=sys.stderr)
        for job in progress:
            try:
                pixels, exif = decoded if decoded is not None else load_image(job.path)
                height, width = pixels.shape[:2]
                intrinsics = resolve_intrinsics(width, height, exif=exif, **camera)
                if shared is not None and intrinsics.source == "default":
                    intrinsics = shared
                result = recoverer.infer(pixels, K=intrinsics, boxes=job.boxes, camera_height_m=args.camera_height)
                result.image_path = str(job.path)
                recoverer.save(result, job.out_dir, overwrite=args.overwrite, formats=args.format)
            except Exception as error:  # in a folder, one bad image must not stop the rest
                if not folder:
                    raise
                failures += 1
                tqdm.write(f"metrichmsr: skipped {job.path.name}: {_one_line(error)}", file=sys.stderr)
                continue
            if result.intrinsics.source == "default":
                tqdm.write(_camera_line(job.path.name, result.intrinsics), file=sys.stderr)
            tqdm.write(_summary(job, result, args.camera_height), file=sys.stdout)
    total_s = time.perf_counter() - started
    done = len(jobs) + len(unreadable) - failures
    print(f"done: {done}/{len(jobs) + len(unreadable)} image(s) in {total_s:.1f} s (models loaded in {load_s:.1f} s)")
    return EXIT_SOME_FAILED if failures else 0


def _annotate(args) -> int:
    from metrichmsr.annotate import Manifest, Options, annotate, file_md5, options_digest, plan, prepare
    from metrichmsr.scene.depth import depth_backend

    # As for recover: every check before Ray starts or a model loads.
    camera = _camera_kwargs(args)
    if args.depth.startswith("file:"):
        raise InputError("--depth file: is one image's map; annotate takes planar, none or hf:MODEL")
    depth = depth_backend(args.depth, args.device)
    _check_weights(args)
    has_ray = importlib.util.find_spec("ray") is not None
    workers = int(args.workers) if args.workers is not None else (os.cpu_count() or 1) * has_ray
    if args.address is not None and workers == 0:
        raise InputError("--address needs workers: give --workers N (N >= 1)")
    if workers and not has_ray:
        raise InputError("--workers N needs Ray: pip install ray (or --workers 0: one process, no Ray)")
    if not has_ray:
        print("metrichmsr: ray is not installed: annotating in this process (pip install ray for workers)", file=sys.stderr)
    items = prepare(args.input, args.output, args.intrinsics_file)
    from metrichmsr.defaults import HUMANMOE_WEIGHTS

    weights = args.weights or HUMANMOE_WEIGHTS
    options = Options(
        camera=camera,
        camera_height_m=args.camera_height,
        min_person_px=float(args.min_person_px),
        max_people=int(args.max_people),
        min_score=float(args.min_score),
        depth=args.depth,
        refine=args.refine,
        align=args.align,
        population=args.population,
        weights=str(weights),
        weights_md5=file_md5(weights),
        device=args.device,
        with_glb=args.with_glb,
        with_overlay=args.with_overlay,
    )
    todo = plan(items, Manifest(args.output), options_digest(options), args.output)
    if todo.todo:  # a finished run resumes without torch: nothing to load
        depth.check_available()
        from metrichmsr.devices import resolve_device  # imports torch: the last check

        resolve_device(args.device)
    summary = annotate(
        items,
        args.output,
        options,
        input_spec=args.input,
        workers=workers,
        address=args.address,
        batch=int(args.batch),
        threads=int(args.threads) if args.threads else None,
        todo=todo,
    )
    print(summary.line(args.output))
    return EXIT_SOME_FAILED if summary.skipped or summary.given_up else 0


def _shared_camera(jobs: list[_Job]):
    """``--same-camera``: the intrinsics of the folder's one camera (``scene.focal.shared_camera``)."""
    from tqdm import tqdm

    from metrichmsr.image_io import load_image
    from metrichmsr.scene.focal import shared_camera

    def images():
        for job in tqdm(jobs, desc="camera from lines", unit="image", file=sys.stderr):
            try:
                yield load_image(job.path)[0]
            except InputError:
                continue  # reported, and skipped, by the run itself

    shared = shared_camera(images())
    if shared is not None and shared.source == "estimated":  # a default one is warned about per image
        print(_camera_line("--same-camera", shared), file=sys.stderr)
    return shared


def _camera_line(where: str, intrinsics) -> str:
    """The stderr line about intrinsics ``recover`` or ``track`` found themselves: the focal
    length estimated from the lines, or the warning that the default was taken, and why."""
    if intrinsics.source == "estimated":
        return f"metrichmsr: {where}: focal length {intrinsics.fx:.0f} px, {intrinsics.note}"
    return (
        f"metrichmsr: warning: {where}: focal length unknown ({intrinsics.note}); "
        "every distance scales with it: give --fov, --focal or --intrinsics if you know it"
    )


def _check_weights(args) -> None:
    if args.weights is not None and not args.weights.is_file():
        raise InputError(f"--weights {args.weights}: no such file")


def _recoverer(args, **options):
    """The ``Recoverer`` the people flags (``_add_people_arguments``) ask for, with ``options`` on top."""
    from metrichmsr.models.humanmoe import HUMANMOE_WEIGHTS
    from metrichmsr.pipeline import Recoverer

    return Recoverer(
        device=args.device,
        min_person_px=args.min_person_px,
        max_people=int(args.max_people),
        min_score=args.min_score,
        weights=args.weights or HUMANMOE_WEIGHTS,
        align=args.align,
        population=args.population,
        **options,
    )


#: Frames of a clip whose lines give its camera's focal length, when neither the user nor EXIF does.
CAMERA_FRAMES = 30


def _track(args) -> int:
    from metrichmsr._outputs import check_apart, check_output, probe_writable, staged_output
    from metrichmsr.video_io import probe

    # As for recover: every check before the heavy imports and the model loads.
    camera = _camera_kwargs(args)
    info = probe(args.input, fps=args.fps)  # decodes a video's first frame
    check_apart(args.output, [args.input])
    check_output(args.output, args.overwrite)
    _check_weights(args)
    from metrichmsr.devices import resolve_device  # imports torch: the last check

    resolve_device(args.device)
    probe_writable(args.output)

    from tqdm import tqdm

    from metrichmsr.camera import resolve_intrinsics
    from metrichmsr.image_io import load_image
    from metrichmsr.tracks import ClipTracks
    from metrichmsr.video_io import BrokenFrame, VideoWriter, read_frames

    every = int(args.every)
    exif = load_image(info.frames[0])[1] if info.is_folder else None  # a folder of photos may say its lens
    intrinsics = resolve_intrinsics(*info.size, exif=exif, **camera)
    if intrinsics.source == "default":  # one camera: one focal length from the lines of frames across the clip
        intrinsics = _clip_camera(info, intrinsics)
    static = not args.moving_camera
    broken: list[BrokenFrame] = []

    def frames():
        for frame in read_frames(info, every):
            if isinstance(frame, BrokenFrame):  # reported and skipped; the clip goes on
                broken.append(frame)
                tqdm.write(f"metrichmsr: skipped frame {frame.index}: {frame.reason}", file=sys.stderr)
            else:
                yield frame

    clip = ClipTracks(
        intrinsics,
        info.size,
        info.fps,
        every,
        static_camera=static,
        input_path=str(args.input),
        formats=args.format,
        population=args.population,
    )
    started = time.perf_counter()
    # Staged from the start: overlay.mp4 grows frame by frame inside it, and a run that fails
    # or is interrupted leaves nothing behind.
    with staged_output(args.output, args.overwrite) as staging:
        with _recoverer(args, depth="none") as recoverer, VideoWriter(staging / "overlay.mp4", info.fps / every) as video:
            load_s = time.perf_counter() - started
            tracked = recoverer.track(
                frames(),
                K=intrinsics,
                camera_height_m=args.camera_height,
                static_camera=static,
                detect_every=int(args.detect_every),
            )
            total = math.ceil(info.frame_count / every)
            with tqdm(tracked, desc="track", unit="frame", total=total, file=sys.stderr) as progress:
                started_tracks = 0
                for frame in progress:
                    if args.overlay_video:  # before add, which lets the frame's image and meshes go
                        video.write(recoverer.overlay(frame.result))
                    clip.add(frame)
                    started_tracks = max(started_tracks, frame.track_ids.max(initial=-1) + 1)  # ids count up from 0
                    progress.set_postfix(people=len(frame.result.people), tracks=started_tracks)
        run_s = time.perf_counter() - started - load_s
        clip.write(staging)
    print(_track_summary(clip, run_s, load_s, args.output))
    return EXIT_SOME_FAILED if broken else 0


def _clip_camera(info, default):
    """The clip's one camera (``scene.focal.shared_camera``) from up to CAMERA_FRAMES frames
    spread over it; ``default`` when no frame can be read."""
    from metrichmsr.scene.focal import shared_camera
    from metrichmsr.video_io import Frame, read_frames

    step = max(1, math.ceil(info.frame_count / CAMERA_FRAMES))
    shared = shared_camera(frame.image for frame in read_frames(info, step) if isinstance(frame, Frame))
    if shared is None:
        return default
    print(_camera_line(info.path.name, shared), file=sys.stderr)
    return shared


def _track_summary(clip, run_s: float, load_s: float, output: Path) -> str:
    """One line about a ``track`` run."""
    tracks = clip.tracks()
    lasting = sum(len(seen) >= 3 for seen in tracks.values())
    rate = len(clip.frames) / run_s if run_s > 0 else float("nan")
    message = (
        f"done: {len(clip.frames)} frame(s) in {run_s:.1f} s ({rate:.2f} frames/s; models loaded in {load_s:.1f} s), "
        f"{len(tracks)} track(s), {lasting} seen in 3 frames or more"
    )
    if clip.static_camera and clip.floor is not None:
        message += f"; camera {clip.floor.camera_height_m:.2f} m above the floor ({clip.floor.height_source})"
    elif clip.static_camera:
        message += "; no floor: nobody's feet were seen"
    return f"{message} -> {output}"


def _summary(job: _Job, result, camera_height_m: float | None) -> str:
    """One line about one image's result."""
    people = len(result.people)
    message = f"{job.path.name}: {people} {'person' if people == 1 else 'people'} -> {job.out_dir}"
    if people == 0:
        message += " (nobody found)"
    nearer = [str(p.id) for p in result.people if p.floor_scale < 1.0]
    farther = [str(p.id) for p in result.people if p.floor_scale > 1.0]
    for moved, how in ((nearer, "nearer onto the others' floor, as children"), (farther, "farther onto the floor")):
        if moved:
            message += f" (brought {how}: person {', '.join(moved)})"
    if people and camera_height_m is not None and result.floor is None:
        message += " (--camera-height unused: no floor could be placed under these people)"
    camera = result.intrinsics
    if camera.source == "estimated":
        message += f" (focal length estimated: {camera.fov_text(result.width)})"
    if result.boxes_without_person:
        message += f" (no person found in box {', '.join(map(str, result.boxes_without_person))} of --boxes)"
    return message


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    for stream in (sys.stdout, sys.stderr):  # file names that are not valid UTF-8 still print
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        if argv is not None and any("\x00" in arg for arg in argv):  # a shell cannot pass one; Python can
            raise InputError("an argument holds a NUL byte")
        args = build_parser().parse_args(argv)
        commands = {
            "recover": _recover,
            "annotate": _annotate,
            "track": _track,
            "view": _view,
            "synth": _synth,
            "bench": _bench,
            "train": _train,
        }
        return commands[args.command](args)
    except InputError as error:
        print(f"metrichmsr: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("metrichmsr: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("METRICHMSR_DEBUG"):
            raise
        print(f"metrichmsr: internal error: {_one_line(error)} (METRICHMSR_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    return 0


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    if not isinstance(error, InputError):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text.splitlines()[0] if text else "bad input"


if __name__ == "__main__":
    sys.exit(main())
