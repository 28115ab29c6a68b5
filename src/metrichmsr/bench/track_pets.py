"""Real footage over time: `metrichmsr track` on the PETS 2009 S2.L1 View_001 clip.

    python -m metrichmsr.bench.track_pets -o out/bench-track-pets [--dev DIR] [--frames N] [--detect-every N] [--adults]

What it measures. The clip of ``make_dev.py --clip`` (frames 0-399 of OpenCV's ``vtest.avi``
at 25 frames/s, 768x576, undistorted to the calibrated pinhole K; adults walking 15-35 m from a
camera 7.07 m up) goes through the ``metrichmsr track`` command as a user runs it, told the
true K and nothing else (a fixed camera, the default outputs: ``tracks.json``, ``tracks.csv``,
``trajectories.png``, ``scene.glb``, ``view.html``; no ``overlay.mp4``). Then:

- speed: frames per second of the whole command, models and outputs included;
- the clip's floor: its camera height against the calibrated 7.07 m;
- depth: every person of every frame, as ``tracks.json`` has them (smoothed, on the clip's
  floor), scored by the PETS ``score.py`` (the ankle midpoint 0.08 m above the calibrated
  floor along its ray: median and p90 relative depth error, signed bias, median height);
- jitter: for each track seen on the floor in at least :data:`JITTER_WINDOW_S` of consecutive
  frames, its ankle midpoint on the calibrated floor (metres); a walker keeps their velocity
  over a second, so the jitter of a step between two frames is how far it is from the mean
  step over the second around it (0 for a steady walk), median over every step; the median
  step beside it; and the same for the hip midpoint (``translation``), which is what the
  smoothing moves (the ankles move with it, and with each frame's pose about it);
- tracks: how many, and how many last at least 1 s (25 frames); about 10 people walk through
  the clip (counted by eye on ``trajectories.png`` and the frames), so the issue's target is
  fewer than 2 tracks per person.

Writes ``OUT/track`` (the command's output), ``OUT/per-frame/<frame>/result.json`` (the layout
``score.py`` reads), ``OUT/scores.json`` and ``OUT/table.md``, and ``OUT/dev`` when it built
the frames there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from metrichmsr._outputs import check_output, staged_output
from metrichmsr.bench.pets import check_pets_arguments, dev_folder, load_score_module, pets_parser
from metrichmsr.bench.report import exit_status
from metrichmsr.errors import InputError

#: Jitter is a step's distance from the mean step over this many seconds around it; a track's
#: run of consecutive frames on the floor shorter than that gives none.
JITTER_WINDOW_S = 1.0
#: A track lasting this many seconds counts as a lasting one.
LASTING_S = 1.0
MARKER = "table.md"
PROG = "metrichmsr.bench.track_pets"


def ankle_points(people: list[dict]) -> dict[int, np.ndarray]:
    """Track id -> (3,) camera-frame ankle midpoint, metres, of one frame's ``tracks.json``
    people; people without both ankles are left out."""
    points = {}
    for person in people:
        joints = person["joints3d"]
        if joints.get("left_ankle") and joints.get("right_ankle"):
            points[person["track_id"]] = (np.asarray(joints["left_ankle"]) + np.asarray(joints["right_ankle"])) / 2
    return points


def hip_points(people: list[dict]) -> dict[int, np.ndarray]:
    """Track id -> (3,) camera-frame hip midpoint (``translation``), metres, of one frame's
    ``tracks.json`` people."""
    return {person["track_id"]: np.asarray(person["translation"]) for person in people}


def floor_runs(tracks: dict, up: np.ndarray, min_frames: int, points=ankle_points) -> list[np.ndarray]:
    """Each track's runs of consecutive frames standing on the floor, as (T, 3) camera-frame
    points (``points`` of a frame's people: :func:`ankle_points`, :func:`hip_points`) with their
    component along ``up`` (3,) removed (positions on the floor), from a ``tracks.json``
    document; runs shorter than ``min_frames`` are left out."""
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    runs: dict[int, list[list[np.ndarray]]] = {}
    last_frame: dict[int, int] = {}
    for position, frame in enumerate(tracks["frames"]):
        on_floor = {p["track_id"] for p in frame["people"] if p.get("on_floor")}
        for track_id, point in points(frame["people"]).items():
            if track_id not in on_floor:
                continue
            if last_frame.get(track_id) != position - 1:
                runs.setdefault(track_id, []).append([])
            runs[track_id][-1].append(point - (point @ up) * up)
            last_frame[track_id] = position
    return [np.array(run) for per_track in runs.values() for run in per_track if len(run) >= min_frames]


def jitter_m(runs: list[np.ndarray], window: int) -> tuple[float, float]:
    """(median jitter, median step) in metres over ``runs`` (each (T, 3), T > ``window``): a
    step ``p[t+1] - p[t]``'s jitter is its distance from the mean of the ``window`` steps
    centred on it (a steady walk gives 0; independent position noise of s per axis about
    1.7 s); NaN without runs."""
    jitters, steps = [], []
    for run in runs:
        step = np.diff(run, axis=0)
        mean = np.stack([np.convolve(axis, np.ones(window) / window, mode="valid") for axis in step.T], axis=1)
        jitters.append(np.linalg.norm(step[window // 2 : window // 2 + len(mean)] - mean, axis=1))
        steps.append(np.linalg.norm(step, axis=1))
    if not runs:
        return float("nan"), float("nan")
    return float(np.median(np.concatenate(jitters))), float(np.median(np.concatenate(steps)))


def per_frame_results(tracks: dict, stems: list[str], out_dir: Path) -> None:
    """``tracks.json``'s frames as ``out_dir/<stem>/result.json`` (what ``score.py`` reads): frame i
    of the clip is ``stems[i]``."""
    for frame in tracks["frames"]:
        folder = out_dir / stems[frame["index"]]
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({"people": frame["people"]}))


def markdown_table(row: dict) -> str:
    """The figures of one run as a one-row markdown table."""

    def percent(value: float | None, fmt: str = ".1f") -> str:
        return "-" if value is None or value != value else format(100 * value, fmt)

    cells = {
        "frames": str(row["frames"]),
        "frames/s (all in)": f"{row['frames_per_s']:.2f}",
        "people a frame": f"{row['people_per_frame']:.2f}",
        "median depth error %": percent(row["depth_rel_med"]),
        "p90 %": percent(row["depth_rel_p90"]),
        "bias %": percent(row["bias"], "+.1f"),
        "median height m": f"{row['height_med']:.2f}",
        "camera height m (error %)": "-"
        if row["camera_height_m"] is None
        else f"{row['camera_height_m']:.2f} ({percent(row['camera_height_err'], '+.1f')})",
        "jitter cm (step cm)": f"{percent(row['jitter_m'])} ({percent(row['step_m'])})",
        "hip jitter cm": percent(row.get("hip_jitter_m")),
        "tracks (>= 1 s)": f"{row['tracks']} ({row['lasting_tracks']})",
    }
    return "\n".join(["| " + " | ".join(cells) + " |", "|" + " --- |" * len(cells), "| " + " | ".join(cells.values()) + " |"])


def summary_line(row: dict) -> str:
    return (
        f"summary: PETS S2.L1 track, {row['frames']} frames: {row['frames_per_s']:.2f} frames/s all in; "
        f"depth median {100 * row['depth_rel_med']:.1f}%, bias {100 * row['bias']:+.1f}%; camera height "
        f"{100 * (row['camera_height_err'] or float('nan')):+.1f}%; jitter {100 * row['jitter_m']:.1f} cm "
        f"(hips {100 * row['hip_jitter_m']:.1f} cm); "
        f"{row['tracks']} tracks, {row['lasting_tracks']} lasting >= {LASTING_S:.0f} s"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = pets_parser(PROG, __doc__, clip=True)
    parser.add_argument("--frames", type=int, help="only the clip's first N frames (a quick check)")
    parser.add_argument("--detect-every", type=int, help="track's --detect-every (default: track's own)")
    parser.add_argument("--adults", action="store_true", help="track told everyone is an adult (--population adults)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status(PROG, lambda: run(args))


def run(args) -> int:
    check_pets_arguments(args, clip=True)
    for flag, value in (("--frames", args.frames), ("--detect-every", args.detect_every)):
        if value is not None and value < 1:
            raise InputError(f"{flag} {value}: must be at least 1")
    check_output(args.output, args.overwrite)

    from metrichmsr import cli

    score = load_score_module(args.pets_dir)
    with staged_output(args.output, args.overwrite) as staging:
        dev = dev_folder(args, staging, clip=True)
        camera = json.loads((dev / "camera.json").read_text())
        frames = sorted((dev / "clip").glob("*.jpg"))[: args.frames]
        if not frames:
            raise InputError(f"{dev / 'clip'}: no .jpg frames")
        clip_dir = staging / "clip"  # track reads a whole folder: the frames asked for, copied
        clip_dir.mkdir()
        for frame in frames:
            shutil.copyfile(frame, clip_dir / frame.name)
        command = ["track", str(clip_dir), "-o", str(staging / "track"), "--fps", str(camera["fps"])]
        command += ["--intrinsics", ",".join(str(camera[k]) for k in ("fx", "fy", "cx", "cy"))]
        command += ["--detect-every", str(args.detect_every)] * (args.detect_every is not None)
        command += ["--weights", str(args.weights)] * (args.weights is not None)
        command += ["--population", "adults"] * args.adults
        started = time.perf_counter()
        if cli.main(command) != 0:
            raise RuntimeError("metrichmsr track failed")
        seconds = time.perf_counter() - started
        shutil.rmtree(clip_dir)

        tracks = json.loads((staging / "track" / "tracks.json").read_text())
        per_frame_results(tracks, [frame.stem for frame in frames], staging / "per-frame")
        numbers = score.evaluate(str(staging / "per-frame"), score.load_camera(str(dev / "camera.json")), verbose=False)
        window = max(3, round(JITTER_WINDOW_S * camera["fps"]))
        jitter, step = jitter_m(floor_runs(tracks, np.asarray(camera["up"]), window + 1), window)
        hip_jitter, _ = jitter_m(floor_runs(tracks, np.asarray(camera["up"]), window + 1, hip_points), window)
        lengths = {}
        for frame in tracks["frames"]:
            for person in frame["people"]:
                lengths[person["track_id"]] = lengths.get(person["track_id"], 0) + 1
        height = (tracks.get("floor") or {}).get("camera_height_m")
        row = {
            "frames": len(frames),
            "frames_per_s": len(frames) / seconds,
            "people_per_frame": sum(len(f["people"]) for f in tracks["frames"]) / len(frames),
            **{k: v for k, v in numbers.items() if k not in ("frames", "missing")},
            "camera_height_m": height,
            "camera_height_err": (height / camera["camera_height_m"] - 1) if height else None,
            "jitter_m": jitter,
            "step_m": step,
            "hip_jitter_m": hip_jitter,
            "tracks": len(lengths),
            "lasting_tracks": sum(n >= LASTING_S * camera["fps"] for n in lengths.values()),
        }
        adults = ", --population adults" if args.adults else ""
        heading = f"PETS 2009 S2.L1 View_001 clip, frames 0-{len(frames) - 1}, true K{adults} ({time.strftime('%Y-%m-%d')})"
        report = f"{heading}\n\n{markdown_table(row)}\n\n{summary_line(row)}\n"
        (staging / MARKER).write_text(report)
        (staging / "scores.json").write_text(json.dumps(row, indent=1))
    print(report, end="")
    print(f"report: {args.output / MARKER}, {args.output / 'scores.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
