"""Synthetic video: `track` against the true trajectories of ``metrichmsr synth --video`` clips.

    python -m metrichmsr.bench.track_synth DIR -o OUT [--overwrite] [--detect-every N] [--clips K]

What it runs. For each clip of DIR (the first ``--clips`` in seed order),
``Recoverer(depth="none").track`` over every frame, told the true K and the clip's frame rate
(not the camera's height), the whole frame scanned every ``--detect-every``-th frame
(``track``'s default); the frames go into a ``tracks.ClipTracks``, whose ``finish`` puts them
on the clip's pooled floor and smooths every track, as ``metrichmsr track`` writes them.

How it scores (motmetrics: CLEAR MOT and IDF1). In each frame the ground-truth objects are the
people whose visible pixels' box is at least :data:`MIN_GT_BOX_PX` tall, the detector's own
smallest person (``defaults.MIN_PERSON_PX``, 60 px): a person out of view, hidden behind
another or smaller is not asked for, and a track on a smaller one counts for nothing (as a
MOT benchmark's "ignore" regions: dropped where its box matches that person's better than any
asked-for person's). The hypotheses are the tracked people. A pair may match when their boxes overlap with IoU >= 0.5
(distance 1 - IoU; the truth's box of visible pixels against the tracked person's box of
visible landmarks).

Per clip and overall: MOTA, IDF1, ID switches, false positives (FP), misses (FN), recall,
precision; of the matched pairs, their mean box IoU (1 - MOTP), median relative position
error |translation - true hip midpoint| / |true hip midpoint| (the finished, smoothed
positions) and median |height_m - true height| in metres; frames/s of the tracking loop (the
models loaded before it; the first frame's warm-up in it); tracks/person: how many track ids
each ground-truth person was matched to, averaged over the people matched at least once (1:
never broken up).
Writes ``OUT/report.md`` and ``OUT/scores.json`` (a row per clip and an ``overall`` row).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from metrichmsr._outputs import check_apart, check_output, staged_output
from metrichmsr.bench.report import exit_status
from metrichmsr.defaults import DETECT_EVERY, MIN_PERSON_PX
from metrichmsr.errors import InputError

#: Ground-truth people whose visible box is shorter than this (px) are not asked for: `track`
#: looks for people this tall and taller.
MIN_GT_BOX_PX = MIN_PERSON_PX
#: A hypothesis may match a ground-truth person when their boxes' IoU is at least 1 - this.
MAX_IOU_DISTANCE = 0.5
#: motmetrics' names of the columns it computes, in table order.
MOT_METRICS = ("mota", "idf1", "num_switches", "num_false_positives", "num_misses", "recall", "precision")
MARKER = "report.md"
PROG = "metrichmsr.bench.track_synth"


@dataclass
class ClipScore:
    """One clip scored: motmetrics' accumulator of its frames, and of the matched pairs the
    relative position errors (K,), the height errors (K,) metres and, per ground-truth person
    matched at least once, how many track ids matched them (P,)."""

    accumulator: object  # motmetrics.MOTAccumulator
    position_errors: np.ndarray
    height_errors_m: np.ndarray
    tracks_per_person: np.ndarray
    tracks: int


def score_clip(truth: Mapping[str, np.ndarray], frames: Sequence, min_box_px: float = MIN_GT_BOX_PX) -> ClipScore:
    """Score a clip's tracked people against its truth (``synth.video``'s ``truth.npz``).

    ``frames``: ``tracks.FrameRecord``s (``ClipTracks.frames``, after ``finish``); a truth frame
    with no record has no hypotheses. See the module docstring for what is matched and how.
    """
    import motmetrics as mm

    from metrichmsr.tracking import box_ious

    people = {frame.index: frame.people for frame in frames}
    accumulator = mm.MOTAccumulator(auto_id=False)
    box_height = truth["boxes"][:, 3] - truth["boxes"][:, 1]
    tall, small = box_height >= min_box_px, (box_height > 0) & (box_height < min_box_px)
    kept_ids: set[int] = set()
    for f in np.unique(truth["frame"]):
        rows = np.flatnonzero((truth["frame"] == f) & tall)
        tracked = people.get(int(f), [])
        hypotheses = np.array([p.bbox for p in tracked], dtype=np.float64).reshape(-1, 4)
        on_small = box_ious(truth["boxes"][(truth["frame"] == f) & small], hypotheses).max(axis=0, initial=0.0)
        on_asked = box_ious(truth["boxes"][rows], hypotheses).max(axis=0, initial=0.0)
        keep = ~((on_small >= 1.0 - MAX_IOU_DISTANCE) & (on_small > on_asked))
        tracked, hypotheses = [p for p, k in zip(tracked, keep) if k], hypotheses[keep]
        people[int(f)] = tracked
        kept_ids.update(p.track_id for p in tracked)
        # As mm.distances.iou_matrix(..., max_iou=0.5), which motmetrics 1.4.0 cannot run on
        # NumPy 2 (it calls np.asfarray): 1 - IoU, NaN where no match is allowed.
        distances = 1.0 - box_ious(truth["boxes"][rows], hypotheses)
        distances[distances > MAX_IOU_DISTANCE] = np.nan
        accumulator.update(truth["person_id"][rows].tolist(), [p.track_id for p in tracked], distances, frameid=int(f))

    events = accumulator.mot_events
    matched = events[events["Type"].isin(["MATCH", "SWITCH"])]  # a switch is a match under a new id
    row_of = {(int(f), int(i)): k for k, (f, i) in enumerate(zip(truth["frame"], truth["person_id"]))}
    position_errors, height_errors = [], []
    for (f, _), event in matched.iterrows():
        person = next(p for p in people[f] if p.track_id == event["HId"])
        k = row_of[(f, int(event["OId"]))]
        root = truth["root"][k]
        position_errors.append(np.linalg.norm(person.translation - root) / np.linalg.norm(root))
        height_errors.append(abs(person.height_m - truth["height_m"][k]))
    return ClipScore(
        accumulator,
        np.array(position_errors),
        np.array(height_errors),
        matched.groupby("OId")["HId"].nunique().to_numpy(),
        len(kept_ids),
    )


def track_clip(recoverer, clip_dir: Path, truth: Mapping[str, np.ndarray], detect_every: int = DETECT_EVERY):
    """``recoverer.track`` over a clip's frames with its true K and fps: the finished
    ``tracks.ClipTracks`` and the seconds the tracking loop took."""
    from tqdm import tqdm

    from metrichmsr.camera import resolve_intrinsics
    from metrichmsr.synth.video import FRAMES_DIR
    from metrichmsr.tracks import ClipTracks
    from metrichmsr.video_io import BrokenFrame, probe, read_frames

    info = probe(clip_dir / FRAMES_DIR, fps=float(truth["fps"]))
    K = truth["K"]
    intrinsics = resolve_intrinsics(*info.size, intrinsics=(K[0, 0], K[1, 1], K[0, 2], K[1, 2]))

    def frames():
        for frame in read_frames(info):
            if isinstance(frame, BrokenFrame):
                raise InputError(f"{clip_dir}: frame {frame.index}: {frame.reason}")
            yield frame

    clip = ClipTracks(intrinsics, info.size, info.fps, input_path=str(clip_dir / FRAMES_DIR))
    started = time.perf_counter()
    tracked = recoverer.track(frames(), K=intrinsics, detect_every=detect_every)
    for frame in tqdm(tracked, desc=clip_dir.name, unit="frame", total=info.frame_count, file=sys.stderr):
        clip.add(frame)
    seconds = time.perf_counter() - started
    clip.finish()
    return clip, seconds


def summarize(names: list[str], scores: list[ClipScore], frames: list[int], seconds: list[float]) -> list[dict]:
    """One row per clip and an ``overall`` one: motmetrics' :data:`MOT_METRICS` (``compute_many``,
    the overall row over every clip's frames), the medians of the matched pairs' errors,
    tracks/person, frames/s, and the counts of frames, ground-truth people and tracks."""
    import motmetrics as mm

    table = mm.metrics.create().compute_many(
        [s.accumulator for s in scores],
        metrics=[*MOT_METRICS, "motp", "num_unique_objects"],
        names=names,
        generate_overall=True,
    )

    def median(values: np.ndarray) -> float | None:
        return float(np.median(values)) if len(values) else None

    def row(name: str, clip_scores: list[ClipScore], n_frames: int, s: float) -> dict:
        mot = table.loc["OVERALL" if name == "overall" else name]
        per_person = np.concatenate([c.tracks_per_person for c in clip_scores])
        return {
            "clip": name,
            "frames": n_frames,
            "gt_people": int(mot["num_unique_objects"]),
            "tracks": sum(c.tracks for c in clip_scores),
            **{key: float(mot[key]) for key in MOT_METRICS},
            "mean_iou": 1.0 - float(mot["motp"]),  # MOTP is the matches' mean distance, 1 - IoU
            "position_error_med": median(np.concatenate([c.position_errors for c in clip_scores])),
            "height_error_med_m": median(np.concatenate([c.height_errors_m for c in clip_scores])),
            "tracks_per_person": float(per_person.mean()) if len(per_person) else None,
            "frames_per_s": n_frames / s if s > 0 else None,
        }

    rows = [row(name, [score], n, s) for name, score, n, s in zip(names, scores, frames, seconds)]
    return rows + [row("overall", scores, sum(frames), sum(seconds))]


def markdown_table(rows: list[dict]) -> str:
    """One line per :func:`summarize` row ("-" where there is no value)."""

    def number(value, fmt: str, scale: float = 1.0) -> str:
        return "-" if value is None or value != value else format(value * scale, fmt)

    lines = [
        "| clip | frames | people | tracks | MOTA | IDF1 | ID sw. | FP | FN | recall | precision | IoU | position err. % "
        "| height err. m | tracks/person | frames/s |",
        "|" + " --- |" * 16,
    ]
    for r in rows:
        lines.append(
            f"| {r['clip']} | {r['frames']} | {r['gt_people']} | {r['tracks']} | {number(r['mota'], '.3f')} "
            f"| {number(r['idf1'], '.3f')} | {r['num_switches']:.0f} | {r['num_false_positives']:.0f} "
            f"| {r['num_misses']:.0f} | {number(r['recall'], '.3f')} | {number(r['precision'], '.3f')} "
            f"| {number(r['mean_iou'], '.2f')} "
            f"| {number(r['position_error_med'], '.1f', 100)} | {number(r['height_error_med_m'], '.3f')} "
            f"| {number(r['tracks_per_person'], '.2f')} | {number(r['frames_per_s'], '.2f')} |"
        )
    return "\n".join(lines)


def summary_line(overall: dict, clips: int) -> str:
    def number(value, fmt: str, scale: float = 1.0) -> str:
        return "-" if value is None else format(value * scale, fmt)

    return (
        f"summary: track on {clips} synthetic clip(s): MOTA {overall['mota']:.3f}, IDF1 {overall['idf1']:.3f}, "
        f"{overall['num_switches']:.0f} ID switches, {overall['num_false_positives']:.0f} FP, "
        f"{overall['num_misses']:.0f} FN; median position error {number(overall['position_error_med'], '.1f', 100)}%, "
        f"height error {number(overall['height_error_med_m'], '.3f')} m; "
        f"{number(overall['tracks_per_person'], '.2f')} tracks per person; {number(overall['frames_per_s'], '.2f')} frames/s"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="folder written by `metrichmsr synth --video`")
    parser.add_argument("-o", "--output", type=Path, required=True, help="report folder")
    parser.add_argument("--overwrite", action="store_true", help="replace a report an earlier run wrote there")
    parser.add_argument(
        "--detect-every",
        type=int,
        default=DETECT_EVERY,
        help=f"scan the whole frame for people every N frames, as `track --detect-every` (default {DETECT_EVERY})",
    )
    parser.add_argument("--clips", type=int, help="only the first K clips (a quick check; the table then covers those)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status(PROG, lambda: run(args))


def run(args) -> int:
    from metrichmsr.synth.dataset import read_index
    from metrichmsr.synth.video import list_clips, load_truth

    # Every check before the models load, so bad input fails in well under a second.
    if not args.input.is_dir():
        raise InputError(f"{args.input}: no such folder")
    config = read_index(args.input, "video")["config"]
    clips = list_clips(args.input)
    if args.clips is not None and args.clips < 1:
        raise InputError(f"--clips {args.clips}: must be at least 1")
    if args.detect_every < 1:
        raise InputError(f"--detect-every {args.detect_every}: must be at least 1")
    check_output(args.output, args.overwrite)
    check_apart(args.output, [args.input])
    if importlib.util.find_spec("motmetrics") is None:
        raise RuntimeError("needs motmetrics: pip install 'motmetrics>=1.4' (in metrichmsr's test extra)")
    clips = clips[: args.clips]

    from metrichmsr.bench.report import weights_label
    from metrichmsr.models.humanmoe import HUMANMOE_WEIGHTS
    from metrichmsr.pipeline import Recoverer

    with staged_output(args.output, args.overwrite) as staging:
        scores, frames, seconds = [], [], []
        with Recoverer(depth="none") as recoverer:
            for clip_dir in clips:
                truth = load_truth(clip_dir)
                tracked, s = track_clip(recoverer, clip_dir, truth, args.detect_every)
                scores.append(score_clip(truth, tracked.frames))
                frames.append(len(tracked.frames))
                seconds.append(s)
        rows = summarize([c.name for c in clips], scores, frames, seconds)
        heading = (
            f"`track` on synthetic clips: {len(clips)} of {args.input} ({config['frames']} frames at {config['fps']:g} fps, "
            f"{config['long_side_px']} px), true K, HumanMoE {weights_label(HUMANMOE_WEIGHTS)}, depth none, "
            f"whole frame scanned every {args.detect_every} frames; truth people from {MIN_GT_BOX_PX:g} px tall, "
            f"matched at IoU >= {1 - MAX_IOU_DISTANCE:g} ({time.strftime('%Y-%m-%d')})"
        )
        report = f"{heading}\n\n{markdown_table(rows)}\n\n{summary_line(rows[-1], len(clips))}\n"
        (staging / MARKER).write_text(report)
        (staging / "scores.json").write_text(json.dumps(rows, indent=1))
    print(report, end="")
    print(f"report: {args.output / MARKER}, {args.output / 'scores.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
