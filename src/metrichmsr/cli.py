"""`metrichmsr` command line: a thin layer over ``metrichmsr.pipeline.Recoverer``."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from metrichmsr.defaults import MAX_PEOPLE, MIN_PERSON_PX, MIN_SCORE
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


def _positive_float(name: str):
    return _number(name, lambda value: value > 0, "positive")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="metrichmsr", description="Metric human mesh recovery from photos.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    recover = commands.add_parser("recover", help="people as metric 3D bodies from an image or a folder of images")
    recover.add_argument("input", type=Path, help="image file, or folder of images")
    recover.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    camera = recover.add_mutually_exclusive_group()
    camera.add_argument("--intrinsics", help="fx,fy,cx,cy in pixels")
    camera.add_argument("--focal", type=_positive_float("--focal"), help="focal length in pixels")
    camera.add_argument("--fov", type=_number("--fov", lambda value: 0 < value < 180, "between 0 and 180 degrees"),
                        help="horizontal field of view in degrees")  # fmt: skip
    recover.add_argument("--camera-height", type=_positive_float("--camera-height"), metavar="M",
                         help="the camera's height above the floor in metres, if known (a mounted or tripod camera): "
                              "the people standing on the floor are placed by it")  # fmt: skip
    recover.add_argument("--boxes", type=Path, help="JSON person boxes [[x0,y0,x1,y1], ...] (folder: {file name: boxes})")
    recover.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    recover.add_argument("--refine", action=argparse.BooleanOptionalAction, default=False,
                         help="refine HumanMoE's one-pass prediction with the metric fit (slower; on the benchmark it is "
                              "not better, see BENCHMARKS.md)")  # fmt: skip
    recover.add_argument("--weights", type=Path, metavar="FILE",
                         help="HumanMoE network to use: a `metrichmsr train` run's humanmoe.pt (default: the shipped one)")
    recover.add_argument("--depth", default="planar", metavar="SPEC",
                         help="scene depth: planar (default: floor and backdrop from the people, offline), none, "
                              "file:DEPTH.npy|.png|.exr (your own map: metres, 16-bit millimetres, metres), "
                              "hf:MODEL (a Hugging Face metric depth model, e.g. "
                              "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf; needs `pip install transformers`)")  # fmt: skip
    recover.add_argument("--min-person-px", type=_positive_float("--min-person-px"), default=MIN_PERSON_PX,
                         help=f"smallest person height in pixels to look for (default {MIN_PERSON_PX:g})")  # fmt: skip
    recover.add_argument("--max-people", type=_number("--max-people", lambda v: v >= 1 and v == int(v), "a whole number >= 1"),
                         default=MAX_PEOPLE, help=f"most people to recover from one image, the most confident first (default {MAX_PEOPLE})")  # fmt: skip
    recover.add_argument("--min-score", type=_number("--min-score", lambda value: 0 < value < 1, "between 0 and 1"), default=MIN_SCORE,
                         help=f"detection confidence a person needs, 0-1 (default {MIN_SCORE:g}; raise it if "
                              "things that are not people are found, lower it to find more people)")  # fmt: skip

    synth = commands.add_parser("synth", help="render synthetic people with metric ground truth (for benchmarks and training)")
    synth.add_argument("--n", type=_number("--n", lambda v: v >= 1 and v == int(v), "a whole number >= 1"), required=True,
                       help="number of images")  # fmt: skip
    synth.add_argument("--seed", type=_number("--seed", lambda v: v >= 0 and v == int(v), "a whole number >= 0"), default=0,
                       help="first seed; image i uses seed + i (seeds >= 1000000 are the held-out benchmark split)")  # fmt: skip
    synth.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    synth.add_argument("--long-side", type=_number("--long-side", lambda v: 64 <= v <= 4096 and v == int(v), "a whole number in 64..4096"),
                       default=640, help="longer image side in pixels (default 640)")  # fmt: skip

    bench = commands.add_parser("bench", help="score methods side by side on a synth folder")
    bench.add_argument("input", type=Path, help="folder written by `metrichmsr synth`")
    bench.add_argument("-o", "--output", type=Path, help="report folder (default: <input>-bench)")
    bench.add_argument("--methods", default="full,fixed-fov,box-only",
                       help="comma-separated, from full, fixed-fov, box-only, box-true-focal, fit-only, humanmoe+fit (default: the first three)")  # fmt: skip
    bench.add_argument("--limit", type=_number("--limit", lambda v: v >= 1 and v == int(v), "a whole number >= 1"),
                       help="score only the first N images")  # fmt: skip
    bench.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    bench.add_argument("--camera-height-known", action="store_true",
                       help="give the floor step each scene's true camera height (as `recover --camera-height` does)")
    bench.add_argument("--weights", type=Path, metavar="FILE",
                       help="HumanMoE network the methods use: a `metrichmsr train` run's humanmoe.pt (default: the shipped one)")

    train = commands.add_parser("train", help="train the HumanMoE network on synthetic people")
    train.add_argument("-o", "--output", type=Path, required=True, help="run folder (checkpoints, log, curves, weights)")
    train.add_argument("--config", type=Path, help="TOML recipe (default: the CPU recipe, train/humanmoe.toml; the shipped weights' are train/humanmoe_gpu*.toml)")
    train.add_argument("--steps", type=_number("--steps", lambda v: v >= 1 and v == int(v), "a whole number >= 1"),
                       help="override the recipe's number of steps")  # fmt: skip
    train.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt")
    train.add_argument("--max-minutes", type=_positive_float("--max-minutes"), help="stop (and export) after this many minutes")
    train.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    return parser


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
    if args.output.exists() and not args.output.is_dir():
        raise InputError(f"-o {args.output}: exists and is not a folder")
    if args.resume and not (args.output / "last.pt").is_file():
        raise InputError(f"--resume: no checkpoint {args.output / 'last.pt'}")

    from metrichmsr.devices import resolve_device
    from metrichmsr.train.trainer import train

    device = resolve_device(args.device)
    started = time.perf_counter()
    weights = train(config, args.output, device=str(device), resume=args.resume, max_minutes=args.max_minutes)
    print(f"done: up to {config.steps} steps in {time.perf_counter() - started:.0f} s -> {weights} (curves: {args.output / 'loss.png'})")
    return 0


def _synth(args) -> int:
    from metrichmsr._outputs import check_replaceable
    from metrichmsr.synth.dataset import INDEX_FILE

    check_replaceable(args.output, marker=INDEX_FILE)
    from dataclasses import replace

    from metrichmsr.synth import HELD_OUT_SEED_START, SceneConfig
    from metrichmsr.synth.dataset import write_dataset

    n, seed = int(args.n), int(args.seed)
    if seed < HELD_OUT_SEED_START < seed + n:
        raise InputError(f"--seed {seed} --n {n}: straddles the held-out split, which starts at seed {HELD_OUT_SEED_START}")
    started = time.perf_counter()
    write_dataset(args.output, n, seed, replace(SceneConfig(), long_side_px=int(args.long_side)))
    split = "held-out (benchmark)" if seed >= HELD_OUT_SEED_START else "training"
    print(f"done: {n} image(s), seeds {seed}..{seed + n - 1} ({split} split) in {time.perf_counter() - started:.1f} s -> {args.output}")
    return 0


def _bench(args) -> int:
    from metrichmsr._outputs import check_replaceable
    from metrichmsr.bench.run import MARKER, METHODS
    from metrichmsr.synth.dataset import list_samples

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InputError(f"--methods: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(METHODS)}")
    if not args.input.is_dir():
        raise InputError(f"{args.input}: no such folder")
    list_samples(args.input)
    output = args.output or args.input.with_name(args.input.name + "-bench")
    check_replaceable(output, marker=MARKER)

    from metrichmsr.bench.run import run
    from metrichmsr.pipeline import resolve_device

    resolve_device(args.device)
    print(run(args.input, output, methods, device=args.device, limit=int(args.limit) if args.limit else None, weights=args.weights, camera_height_known=args.camera_height_known))
    print(f"report: {output / MARKER}, {output / 'results.csv'}, plots in {output}")
    return 0


def _load_boxes(path: Path | None, folder: bool):
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"--boxes {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"--boxes {path}: not valid JSON ({str(error).splitlines()[0]})") from None

    def check(boxes, where: str):
        import numpy as np

        try:
            array = np.asarray(boxes, dtype=np.float64)
        except (TypeError, ValueError):  # ragged or not numbers
            array = None
        if array is not None and array.shape in ((0,), (4,)):
            array = array.reshape(-1, 4)  # [] is no box, a flat [x0, y0, x1, y1] is one
        # Only (N, 4): a reshape would silently turn [[x0, y0], [x1, y1]] into a box.
        if array is None or array.ndim != 2 or array.shape[1] != 4:
            raise InputError(f"--boxes {where}: expected a list of [x0, y0, x1, y1]")
        if not np.isfinite(array).all() or (array[:, 2] <= array[:, 0]).any() or (array[:, 3] <= array[:, 1]).any():
            raise InputError(f"--boxes {where}: each box needs finite x0 < x1 and y0 < y1")
        return array

    if folder:
        if not isinstance(data, dict):
            raise InputError(f"--boxes {path}: for a folder, expected an object mapping file names to box lists")
        return {name: check(b, f"{path}[{name!r}]") for name, b in data.items()}
    if not isinstance(data, list):
        raise InputError(f"--boxes {path}: expected a list of [x0, y0, x1, y1]")
    return check(data, str(path))


def _camera_kwargs(args) -> dict:
    from metrichmsr.camera import parse_intrinsics

    if args.intrinsics is not None:
        return {"intrinsics": parse_intrinsics(args.intrinsics)}
    if args.focal is not None:
        return {"focal_px": args.focal}
    if args.fov is not None:
        return {"fov_deg": args.fov}
    return {}


def _recover(args) -> int:
    from metrichmsr._outputs import check_replaceable
    from metrichmsr.image_io import list_images, load_image

    # Every check on the user's input runs before the heavy imports and the model loads, so
    # bad input fails in well under a second with one line on stderr (no model log noise).
    if not args.input.exists():
        raise InputError(f"{args.input}: no such file or folder")
    folder = args.input.is_dir()
    images = list_images(args.input) if folder else [args.input]
    if folder and not images:
        raise InputError(f"{args.input}: no image files (.jpg, .png, ...) in this folder")
    if args.output.resolve() == args.input.resolve() or (not folder and args.output.resolve() == args.input.resolve().parent):
        raise InputError(f"-o {args.output}: choose an output folder apart from the input")
    if not folder:
        check_replaceable(args.output)
    elif args.output.exists() and not args.output.is_dir():  # OUT/<stem> are each checked when saved
        raise InputError(f"-o {args.output}: exists and is not a folder")
    decoded = None if folder else load_image(args.input)
    boxes = _load_boxes(args.boxes, folder)
    camera = _camera_kwargs(args)
    from metrichmsr.scene.depth import depth_backend

    depth_backend(args.depth)  # a bad spec or a missing file fails here, before any model loads

    from tqdm import tqdm

    from metrichmsr.camera import resolve_intrinsics
    from metrichmsr.pipeline import HUMANMOE_WEIGHTS, Recoverer, resolve_device

    resolve_device(args.device)

    started = time.perf_counter()
    with Recoverer(device=args.device, min_person_px=args.min_person_px, max_people=int(args.max_people), min_score=args.min_score, depth=args.depth, refine=args.refine, weights=args.weights or HUMANMOE_WEIGHTS) as recoverer:
        load_s = time.perf_counter() - started
        failures = 0
        progress = tqdm(images, desc="recover", unit="image", disable=not folder, file=sys.stderr)
        for path in progress:
            out_dir = args.output / path.stem if folder else args.output
            try:
                pixels, exif = decoded if decoded is not None else load_image(path)
                height, width = pixels.shape[:2]
                intrinsics = resolve_intrinsics(width, height, exif=exif, **camera)
                image_boxes = boxes.get(path.name) if folder and boxes is not None else boxes
                result = recoverer.infer(pixels, K=intrinsics, boxes=image_boxes, camera_height_m=args.camera_height)
                result.image_path = str(path)
                recoverer.save(result, out_dir)
            except Exception as error:  # in a folder, one bad image must not stop the rest
                if not folder:
                    raise
                failures += 1
                tqdm.write(f"metrichmsr: skipped {path.name}: {_one_line(error)}", file=sys.stderr)
                continue
            people = len(result.people)
            message = f"{path.name}: {people} {'person' if people == 1 else 'people'} -> {out_dir}"
            if people == 0:
                message += " (nobody found)"
            moved = [str(p.id) for p in result.people if p.floor_scale < 1.0]
            if moved:
                message += f" (brought nearer onto the others' floor, as children: person {', '.join(moved)})"
            if people and args.camera_height is not None and result.floor is None:
                message += " (--camera-height unused: no floor could be placed under these people)"
            if result.boxes_without_person:
                message += f" (no person found in box {', '.join(map(str, result.boxes_without_person))} of --boxes)"
            tqdm.write(message, file=sys.stdout)
    total_s = time.perf_counter() - started
    print(f"done: {len(images) - failures}/{len(images)} image(s) in {total_s:.1f} s (models loaded in {load_s:.1f} s)")
    return EXIT_SOME_FAILED if failures else 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    try:
        args = build_parser().parse_args(argv)
        return {"recover": _recover, "synth": _synth, "bench": _bench, "train": _train}[args.command](args)
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
