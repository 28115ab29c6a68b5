"""Real footage: `recover` on PETS 2009 S2.L1 View_001, a calibrated camera over a plaza.

    python -m metrichmsr.bench.pets -o out/bench-pets [--camera-height-known] [--adults] [--as-read] [--hide-K] [--overwrite]

What it measures. The 67 stills of the first half of the sequence (``make_dev.py`` in
``--pets-dir``: OpenCV's ``vtest.avi`` from Debian's ``opencv-doc``, undistorted so that the
pinhole K of its ``camera.json`` holds) show adults walking 15-35 m from a camera 7.07 m up.
There are no 3D annotations, but the calibrated ground plane says where a standing person
must be: ``score.py`` puts each person's ankle midpoint 0.08 m above the floor along its
camera ray and compares depths. Each mode runs ``Recoverer(depth="none").infer`` per still:

- ``true-K``: told the calibrated K (always run);
- ``camera-height`` (``--camera-height-known``): also told the camera's height above the floor;
- ``adults`` (``--adults``): told the true K and that everyone is an adult (``--population adults``);
- ``all`` (``--as-read``): told the true K, everyone taken as read (``--population all``);
- ``K-hidden`` (``--hide-K``): told nothing of the camera: each still's own estimate of the
  focal length (``scene.focal``), else the default FOV; and ``K-hidden-same-camera``: one
  focal length pooled over every still's lines, as ``recover --same-camera`` does.

Beside them ``rule-1.70``: every person the ``true-K`` run kept, placed by the oldest rule
there is, "everyone is 1.70 m tall": the ankle midpoint at depth z = fy * 1.70 / box height
along the ray through BlazePose's ankle-midpoint landmark. It shares the detections, so it
tells how much the network adds over the box's height alone.

Per mode the table gives ``score.py``'s numbers (people, median and p90 relative depth
error, signed bias, median ``height_m``, body tilt from the floor's up), PCK@0.05 (the 3D
joints projected through the mode's K onto BlazePose's landmarks of the same name seen with
visibility > 0.5, correct within 0.05 of the box's longer side; for the pipeline modes) and
the median seconds ``infer`` took per still (the first still also warms the models). Writes
``OUT/<mode>/<frame>/result.json`` (the layout ``score.py`` reads), ``OUT/scores.json``,
``OUT/table.md``, and ``OUT/dev`` when it built the frames there.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metrichmsr._outputs import check_output, staged_output
from metrichmsr.bench.report import exit_status
from metrichmsr.defaults import POPULATION
from metrichmsr.errors import InputError
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.perception.landmarks import BLAZEPOSE_LANDMARK_NAMES, landmarks_explained

#: The repository holding this file (src/metrichmsr/bench/pets.py); the PETS scripts sit beside it.
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PETS_DIR = REPO_ROOT.parent / "shared" / "realdata" / "pets_s2l1"
#: The rule's one assumption: everyone is this tall.
RULE_HEIGHT_M = 1.70
#: PCK: a joint is correct within this fraction of the box's longer side of its landmark.
PCK_FRACTION = 0.05
#: BlazePose landmarks seen less surely than this are not scored (they are guesses).
MIN_VISIBILITY = 0.5
MARKER = "table.md"
PROG = "metrichmsr.bench.pets"


@dataclass(frozen=True)
class Mode:
    """One way of running ``recover``: its output folder, table row and what it is told."""

    folder: str
    label: str
    true_K: bool
    camera_height: bool
    same_camera: bool = False
    population: str = POPULATION


TRUE_K = Mode("true-K", "recover (true K)", true_K=True, camera_height=False)
CAMERA_HEIGHT = Mode("camera-height", "recover --camera-height", true_K=True, camera_height=True)
K_HIDDEN = Mode("K-hidden", "recover (K hidden)", true_K=False, camera_height=False)
SAME_CAMERA = Mode(
    "K-hidden-same-camera", "recover --same-camera (K hidden)", true_K=False, camera_height=False, same_camera=True
)
ADULTS = Mode("adults", "recover --population adults (true K)", true_K=True, camera_height=False, population="adults")
AS_READ = Mode("all", "recover --population all (true K)", true_K=True, camera_height=False, population="all")
RULE_FOLDER, RULE_LABEL = "rule-1.70", "1.70-m rule, same detections"


def rule_ankle_point(K: np.ndarray, bbox: np.ndarray, ankle_px: np.ndarray, height_m: float = RULE_HEIGHT_M) -> np.ndarray:
    """(3,) camera-frame ankle midpoint, metres, of a person ``height_m`` tall whose box is ``bbox``.

    A person h metres tall at depth z spans fy * h / z pixels, so z = fy * h / (box height px);
    the point lies on the ray through ``ankle_px`` (2,) px, K (3, 3) in pixels, ``bbox`` (4,)
    [x0, y0, x1, y1] px.
    """
    K = np.asarray(K, dtype=np.float64)
    box_height_px = float(bbox[3] - bbox[1])
    if box_height_px <= 0:
        raise ValueError(f"bbox {list(bbox)}: height must be positive")
    depth_m = K[1, 1] * height_m / box_height_px
    ray = np.linalg.solve(K, [ankle_px[0], ankle_px[1], 1.0])  # z component 1
    return depth_m * ray


def rule_person(person: dict, K: np.ndarray) -> dict:
    """A result.json person placed by the 1.70-m rule from a recovered one (its box and
    BlazePose ankles): just the ankles (both at their midpoint), the box and the height."""
    landmarks = person["keypoints2d"]
    ankle_px = (np.asarray(landmarks["left_ankle"][:2]) + np.asarray(landmarks["right_ankle"][:2])) / 2
    point = [round(float(v), 4) for v in rule_ankle_point(K, np.asarray(person["bbox"]), ankle_px)]
    return {
        "id": person["id"],
        "bbox": person["bbox"],
        "height_m": RULE_HEIGHT_M,
        "joints3d": {"left_ankle": point, "right_ankle": point},
    }


def pck_counts(person: dict, K: np.ndarray, fraction: float = PCK_FRACTION) -> tuple[int, int]:
    """(correct, scored) joints of one result.json person: its ``joints3d`` projected through
    K (3, 3) against its BlazePose ``keypoints2d`` of the same name seen with visibility >
    ``MIN_VISIBILITY``; correct within ``fraction`` x the box's longer side (px)
    (``perception.landmarks.landmarks_explained``)."""
    joints = np.array([person["joints3d"].get(name, [np.nan] * 3) for name in JOINT_NAMES], dtype=np.float64)
    landmarks = np.array([person["keypoints2d"].get(name, [0.0] * 3) for name in BLAZEPOSE_LANDMARK_NAMES], dtype=np.float64)
    explained, seen = landmarks_explained(joints[None], landmarks[None], np.asarray(person["bbox"]), K, fraction, MIN_VISIBILITY)
    return int(explained[0]), int(seen[0])


def result_K(result: dict) -> np.ndarray:
    """(3, 3) intrinsics a result.json was recovered with (its ``camera`` record)."""
    camera = result["camera"]
    return np.array([[camera["fx"], 0.0, camera["cx"]], [0.0, camera["fy"], camera["cy"]], [0.0, 0.0, 1.0]])


def load_score_module(pets_dir: Path):
    """``score.py`` of the PETS scripts, imported from its file (it is no package)."""
    spec = importlib.util.spec_from_file_location("pets_score", pets_dir / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dev_folder(args, staging: Path, clip: bool = False) -> Path:
    """The folder of frames/ and camera.json: --dev, an earlier run's OUT/dev (carried into the
    new output, which replaces the old), or one make_dev.py builds into the new output;
    ``clip``: with clip/ too (``make_dev.py --clip``, every frame)."""
    earlier = args.output / "dev"
    built = (earlier / "camera.json").is_file() and (not clip or (earlier / "clip").is_dir())
    source = args.dev or (earlier if built else None)
    if source is not None and args.output.resolve() not in source.resolve().parents:
        return source
    if source is not None:
        shutil.copytree(source, staging / "dev")
    else:
        # make_dev.py fetches Debian's opencv-doc (apt-get download); nothing of it is committed.
        command = [sys.executable, str(args.pets_dir / "make_dev.py"), "--out", str(staging / "dev")] + ["--clip"] * clip
        if subprocess.run(command).returncode != 0:
            raise RuntimeError("make_dev.py failed (it needs `apt-get download opencv-doc`); build the frames and pass --dev DIR")
    return staging / "dev"


def run_mode(recoverer, mode: Mode, frames: list[Path], camera: dict, out_dir: Path) -> list[float]:
    """``infer`` every frame as ``mode`` says, write ``out_dir/<stem>/result.json``; seconds per frame."""
    from tqdm import tqdm

    from metrichmsr.image_io import load_image
    from metrichmsr.scene.focal import shared_camera

    K = np.asarray(camera["K"]) if mode.true_K else None
    if mode.same_camera:
        K = shared_camera(load_image(frame)[0] for frame in frames)
    camera_height_m = camera["camera_height_m"] if mode.camera_height else None
    recoverer.population = mode.population
    seconds = []
    for frame in tqdm(frames, desc=mode.folder, unit="image"):
        started = time.perf_counter()
        result = recoverer.infer(frame, K=K, camera_height_m=camera_height_m)
        seconds.append(time.perf_counter() - started)
        (out_dir / frame.stem).mkdir(parents=True)
        (out_dir / frame.stem / "result.json").write_text(json.dumps(result.to_json(), indent=1))
    return seconds


def write_rule(true_K_dir: Path, camera: dict, out_dir: Path) -> None:
    """The 1.70-m rule on every person of the ``true-K`` run, as result.json files under ``out_dir``."""
    for path in sorted(true_K_dir.glob("*/result.json")):
        people = json.loads(path.read_text())["people"]
        (out_dir / path.parent.name).mkdir(parents=True)
        document = {"people": [rule_person(p, camera["K"]) for p in people]}
        (out_dir / path.parent.name / "result.json").write_text(json.dumps(document, indent=1))


def pck(mode_dir: Path) -> float:
    """PCK@0.05 over every scored joint of every person of a mode's results."""
    correct = scored = 0
    for path in mode_dir.glob("*/result.json"):
        result = json.loads(path.read_text())
        for person in result["people"]:
            c, s = pck_counts(person, result_K(result))
            correct, scored = correct + c, scored + s
    return correct / scored if scored else float("nan")


def focal_error(mode_dir: Path, true_fx: float) -> float:
    """Median over the stills of a mode's focal length relative to the calibrated one, minus 1."""
    ratios = [json.loads(path.read_text())["camera"]["fx"] / true_fx for path in mode_dir.glob("*/result.json")]
    return statistics.median(ratios) - 1.0 if ratios else float("nan")


def markdown_table(rows: list[dict]) -> str:
    """One row per mode: score.py's numbers, PCK@0.05 and seconds per image ("-" where none)."""

    def number(value, fmt: str, scale: float = 1.0) -> str:
        return "-" if value is None or value != value else format(value * scale, fmt)

    lines = [
        "| method | people | median depth error % | p90 % | bias % | median height m | tilt deg | PCK@0.05 | focal err % "
        "| seconds/image |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['people']} | {number(row['depth_rel_med'], '.1f', 100)} "
            f"| {number(row['depth_rel_p90'], '.1f', 100)} | {number(row['bias'], '+.1f', 100)} "
            f"| {number(row['height_med'], '.2f')} | {number(row['tilt_med_deg'], '.1f')} "
            f"| {number(row['pck'], '.2f')} | {number(row['focal_err'], '+.1f', 100)} "
            f"| {number(row['seconds_per_image'], '.2f')} |"
        )
    return "\n".join(lines)


def summary_line(rows: list[dict]) -> str:
    parts = [f"{row['label']} {row['depth_rel_med'] * 100:.1f}% (bias {row['bias'] * 100:+.1f}%)" for row in rows]
    pcks = [f"{row['label']} {row['pck']:.2f}" for row in rows if row["pck"] is not None]
    return f"summary: PETS S2.L1 median depth error: {'; '.join(parts)}; PCK@0.05: {'; '.join(pcks)}"


def pets_parser(prog: str, doc: str, clip: bool = False) -> argparse.ArgumentParser:
    """A PETS benchmark's parser with the arguments they share: ``-o``, ``--overwrite``,
    ``--pets-dir``, ``--dev`` (with ``clip/`` when ``clip``) and ``--weights``; checked by
    :func:`check_pets_arguments`."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, required=True, help="report folder")
    parser.add_argument("--overwrite", action="store_true", help="replace a report an earlier run wrote there")
    parser.add_argument(
        "--pets-dir",
        type=Path,
        default=DEFAULT_PETS_DIR,
        help=f"the PETS scripts, make_dev.py and score.py (default {DEFAULT_PETS_DIR})",
    )
    built = "clip/ and camera.json `make_dev.py --clip`" if clip else "frames/ and camera.json make_dev.py"
    parser.add_argument("--dev", type=Path, help=f"{built} built (default: build them into OUT/dev)")
    parser.add_argument(
        "--weights", type=Path, help="a HumanMoE network (`metrichmsr train`'s humanmoe.pt; default: the shipped one)"
    )
    return parser


def check_pets_arguments(args, clip: bool = False) -> None:
    """InputError, before anything runs, for a ``--pets-dir`` without make_dev.py and score.py,
    a ``--dev`` without what make_dev.py writes (``clip/`` when ``clip``, else ``frames/``) or a
    ``--weights`` that is no file."""
    if not all((args.pets_dir / name).is_file() for name in ("make_dev.py", "score.py")):
        raise InputError(f"--pets-dir {args.pets_dir}: no make_dev.py and score.py there (the PETS 2009 S2.L1 scripts)")
    folder = "clip" if clip else "frames"
    if args.dev is not None and not ((args.dev / "camera.json").is_file() and (args.dev / folder).is_dir()):
        raise InputError(f"--dev {args.dev}: no {folder}/ and camera.json there (what make_dev.py{' --clip' * clip} writes)")
    if args.weights is not None and not args.weights.is_file():
        raise InputError(f"--weights {args.weights}: no such file")


def build_parser() -> argparse.ArgumentParser:
    parser = pets_parser(PROG, __doc__)
    parser.add_argument("--camera-height-known", action="store_true", help="also run recover told the camera's height")
    parser.add_argument("--hide-K", action="store_true", help="also run recover told nothing of the camera (K=None)")
    parser.add_argument("--adults", action="store_true", help="also run recover --population adults (true K)")
    parser.add_argument("--as-read", action="store_true", help="also run recover --population all (true K)")
    parser.add_argument("--limit", type=int, help="only the first N stills (a quick check; the table then covers those)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status(PROG, lambda: run(args))


def run(args) -> int:
    # Every check before make_dev.py or the models, so a bad flag fails in well under a second.
    check_pets_arguments(args)
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit {args.limit}: must be at least 1")
    check_output(args.output, args.overwrite)
    modes = [TRUE_K] + [CAMERA_HEIGHT] * args.camera_height_known + [ADULTS] * args.adults + [AS_READ] * args.as_read
    modes += [K_HIDDEN, SAME_CAMERA] * args.hide_K

    from metrichmsr.bench.report import weights_label
    from metrichmsr.models.humanmoe import HUMANMOE_WEIGHTS
    from metrichmsr.pipeline import Recoverer

    weights = args.weights or HUMANMOE_WEIGHTS
    score = load_score_module(args.pets_dir)
    with staged_output(args.output, args.overwrite) as staging:
        dev = dev_folder(args, staging)
        camera = json.loads((dev / "camera.json").read_text())
        frames = sorted((dev / "frames").glob("*.jpg"))[: args.limit]
        if not frames:
            raise InputError(f"{dev / 'frames'}: no .jpg stills")
        seconds = {}
        with Recoverer(depth="none", weights=weights) as recoverer:
            for mode in modes:
                seconds[mode.folder] = run_mode(recoverer, mode, frames, camera, staging / mode.folder)
        write_rule(staging / TRUE_K.folder, camera, staging / RULE_FOLDER)

        scored_camera = score.load_camera(str(dev / "camera.json"))
        # The rule's row right after the true-K run whose detections it uses; the hidden K last.
        order = [(m.folder, m.label) for m in modes if m.true_K] + [(RULE_FOLDER, RULE_LABEL)]
        order += [(m.folder, m.label) for m in modes if not m.true_K]
        rows = []
        for folder, label in order:
            numbers = score.evaluate(str(staging / folder), scored_camera, verbose=False)
            pipeline = folder != RULE_FOLDER  # the rule's ankles sit on their landmarks by construction
            rows.append(
                {
                    "mode": folder,
                    "label": label,
                    **{k: v for k, v in numbers.items() if k not in ("frames", "missing")},
                    "pck": pck(staging / folder) if pipeline else None,
                    "focal_err": focal_error(staging / folder, camera["fx"]) if pipeline else None,
                    "seconds_per_image": statistics.median(seconds[folder]) if pipeline else None,
                }
            )
        heading = (
            f"PETS 2009 S2.L1 View_001, {len(frames)} stills of frames 0-399 "
            f"({args.output / 'dev' if dev == staging / 'dev' else dev}), "
            f"HumanMoE {weights_label(weights)}, depth none ({time.strftime('%Y-%m-%d')})"
        )
        report = f"{heading}\n\n{markdown_table(rows)}\n\n{summary_line(rows)}\n"
        (staging / MARKER).write_text(report)
        (staging / "scores.json").write_text(json.dumps(rows, indent=1))
    print(report, end="")
    print(f"report: {args.output / MARKER}, {args.output / 'scores.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
