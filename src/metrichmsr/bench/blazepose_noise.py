"""Measure BlazePose's errors on synthetic renders against their ground truth.

    python -m metrichmsr.bench.blazepose_noise [--images 120] [--seed 500000] [-o FILE]

Runs BlazePose (``perception.PoseDetector``) on ``synth.sample_scene`` renders of training
seeds and writes what it measures as ``train/blazepose_noise.json`` (its keys and units:
``train.noise``), the errors :class:`metrichmsr.train.noise.NoiseModel` simulates when HumanMoE
trains without rendering.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from metrichmsr.geometry import project_points
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.perception.landmarks import BLAZEPOSE_FOR_JOINT
from metrichmsr.train import noise as noise_model
from metrichmsr.train.noise import (
    GROSS_THRESHOLD,
    NOISE_FILE,
    PRESENT,
    SCHEMA,
    SWAP_PAIRS,
    body_size,
    crop_rotation,
    inside_image,
    joint_box,
)

#: BlazePose landmark index of each of JOINT_NAMES (0 where it has none: left out by PRESENT).
_GATHER = [BLAZEPOSE_FOR_JOINT[name] or 0 for name in JOINT_NAMES]
#: Training seeds the shipped measurement renders (below synth.HELD_OUT_SEED_START).
MEASURE_SEED = 500_000
_SWAP_MIN_SEPARATION = 0.05  # joint box heights: closer pairs cannot be told swapped
_VISIBILITY_BINS = 20
_MISS_EDGES_PX = (0.0, 40.0, 60.0, 80.0, 120.0, 160.0, 240.0, 320.0, math.inf)
_MIN_COUNT = 20  # below this many measurements a joint takes the pooled statistic
_MAD_TO_STD = 1.4826


def _robust_std(x: np.ndarray) -> float:
    return float(_MAD_TO_STD * np.median(np.abs(x - np.median(x)))) if len(x) else math.nan


def _histogram(values: np.ndarray, edges: np.ndarray) -> list[float]:
    counts = np.histogram(np.clip(values, 0.0, 1.0), bins=edges)[0].astype(np.float64)
    return (counts / max(counts.sum(), 1.0)).round(5).tolist()


def _per_joint(values: list[np.ndarray], statistic, pooled_fallback: bool = True) -> list[float | None]:
    """``statistic`` of each joint's values (lists of 1D arrays), the pooled one when too few; None when absent."""
    pooled = statistic(np.concatenate([v for v, p in zip(values, PRESENT) if p]))
    out = []
    for v, present in zip(values, PRESENT):
        if not present:
            out.append(None)
        else:
            out.append(round(float(statistic(v) if len(v) >= _MIN_COUNT or not pooled_fallback else pooled), 5))
    return out


def measure_blazepose_noise(n_images: int = 120, seed: int = MEASURE_SEED, config=None, progress: bool = True) -> dict:
    """Run BlazePose (``perception.PoseDetector``) on ``synth.sample_scene`` renders of seeds
    ``seed .. seed + n_images - 1`` and measure its errors against the ground truth.

    Returns the dict stored as ``blazepose_noise.json`` (keys: module docstring). Detections
    are matched to true people by IoU >= 0.5 with the whole projected mesh's box, as in
    ``bench.score``; people entirely hidden are left out.
    """
    import roma
    import torch
    from tqdm import tqdm

    from metrichmsr.body import BodyModel
    from metrichmsr.perception import PoseDetector, box_iou, match_boxes
    from metrichmsr.render import Renderer
    from metrichmsr.synth import HELD_OUT_SEED_START, SceneConfig, sample_scene

    config = config or SceneConfig()
    if seed < 0 or seed + n_images > HELD_OUT_SEED_START:
        raise ValueError(f"seeds {seed}..{seed + n_images - 1} reach the held-out split (>= {HELD_OUT_SEED_START})")
    j = len(JOINT_NAMES)
    errors = [[] for _ in range(j)]  # (2,) per in-frame landmark, swaps undone, h units
    vis_in, vis_occluded, vis_out = [[] for _ in range(j)], [], []
    swaps, detections, box_offsets, full_iou = [], [], [], []
    world_residual, world_rotvec, bp_size, true_size, true_height = [], [], [], [], []
    n_people = 0
    body, renderer, detector = BodyModel(), Renderer(), PoseDetector()
    try:
        for s in tqdm(range(seed, seed + n_images), desc="blazepose noise", unit="image", disable=not progress):
            scene = sample_scene(body, renderer, s, config)
            height, width = scene.image.shape[:2]
            size = np.array([width, height])
            people = detector.detect(scene.image)
            full = np.clip(scene.boxes_full, 0, [width - 1, height - 1, width - 1, height - 1])
            matches = match_boxes(np.array([p.bbox for p in people]).reshape(-1, 4), full, 0.5)
            uv_all = project_points(np.broadcast_to(scene.K, (len(scene.joints), 3, 3)), scene.joints)
            for i, uv in enumerate(uv_all):
                if not scene.boxes[i].any():  # hidden behind others
                    continue
                n_people += 1
                h = float(np.ptp(uv[:, 1]))
                clipped = np.clip(joint_box(uv), 0, [width - 1, height - 1, width - 1, height - 1])
                detections.append((clipped[3] - clipped[1], i in matches))
                if i not in matches:
                    continue
                obs = people[matches[i]]
                det = obs.landmarks2d[_GATHER]
                world = obs.world_landmarks[_GATHER]
                # Swapped pairs: crossing assignment closer than the straight one.
                order, swapped = np.arange(j), np.full(len(SWAP_PAIRS), math.nan)  # nan: too close to tell
                for p, (left, right) in enumerate(SWAP_PAIRS):
                    if np.linalg.norm(uv[left] - uv[right]) < _SWAP_MIN_SEPARATION * h:
                        continue
                    straight = np.linalg.norm(det[left, :2] - uv[left]) + np.linalg.norm(det[right, :2] - uv[right])
                    crossed = np.linalg.norm(det[left, :2] - uv[right]) + np.linalg.norm(det[right, :2] - uv[left])
                    swapped[p] = crossed < straight
                    if swapped[p]:
                        order[left], order[right] = right, left
                swaps.append(swapped)
                det, world = det[order], world[order]  # undone, so swaps do not count as gross errors

                joint_in = inside_image(uv, size) & (scene.joints[i, :, 2] > 0)
                landmark_in = inside_image(det[:, :2], size)
                px = np.clip(np.round(uv).astype(int), 0, [width - 1, height - 1])
                occluded = scene.instance_ids[px[:, 1], px[:, 0]] != i
                error = (det[:, :2] - uv) / h
                for k in np.nonzero(PRESENT)[0]:
                    if joint_in[k]:
                        errors[k].append(error[k])
                    if landmark_in[k] and joint_in[k] and not occluded[k]:
                        vis_in[k].append(det[k, 2])
                    elif landmark_in[k] and joint_in[k]:
                        vis_occluded.append(det[k, 2])
                    elif landmark_in[k]:
                        vis_out.append(det[k, 2])
                box_offsets.append((obs.bbox - clipped) / h)
                full_iou.append(box_iou(obs.bbox, full[i]))

                # World landmarks against the true root-relative joints in the detected crop's frame.
                rotation = crop_rotation(scene.K[None], ((obs.bbox[:2] + obs.bbox[2:]) / 2)[None])[0]
                truth = (scene.joints[i] - scene.params.translation[i].numpy()) @ rotation
                x = torch.as_tensor(truth[PRESENT])
                y = torch.as_tensor(world[PRESENT])
                turn, shift, scale = roma.rigid_points_registration(x, y, compute_scaling=True)
                residual = np.zeros((j, 3))
                residual[PRESENT] = (y - (scale * x @ turn.T + shift)).numpy()
                world_residual.append(residual)
                world_rotvec.append(np.degrees(roma.rotmat_to_rotvec(turn).numpy()))
                bp_size.append(body_size(world[PRESENT]))
                true_size.append(body_size(truth[PRESENT]))
                true_height.append(scene.height_m[i])
    finally:
        detector.close()
        renderer.close()
    return _summarise(
        n_images, seed, n_people, errors, vis_in, vis_occluded, vis_out, swaps, detections, box_offsets, full_iou,
        world_residual, world_rotvec, bp_size, true_size, true_height,
    )  # fmt: skip


def _summarise(
    n_images, seed, n_people, errors, vis_in, vis_occluded, vis_out, swaps, detections, box_offsets, full_iou,
    world_residual, world_rotvec, bp_size, true_size, true_height,
) -> dict:  # fmt: skip
    """The json dict from the raw measurements of ``measure_blazepose_noise``."""
    errors = [np.array(e).reshape(-1, 2) for e in errors]
    norms = [np.linalg.norm(e, axis=-1) for e in errors]
    core = [e[n <= GROSS_THRESHOLD].ravel() for e, n in zip(errors, norms)]
    gross = np.concatenate([n[n > GROSS_THRESHOLD] for n in norms])
    edges = np.linspace(0.0, 1.0, _VISIBILITY_BINS + 1)
    pooled_in = np.concatenate([v for v, p in zip(vis_in, PRESENT) if p])
    swaps = np.array(swaps).reshape(-1, len(SWAP_PAIRS))
    swaps = swaps[~np.isnan(swaps).all(1)]
    body_swapped = np.nanmean(swaps, axis=1) > 0.5
    pair_flips = np.where(np.isnan(swaps), np.nan, swaps != body_swapped[:, None])
    heights, found = np.array(detections).reshape(-1, 2).T
    miss_edges = np.array(_MISS_EDGES_PX)
    bin_index = np.digitize(heights, miss_edges[1:-1])
    miss_count = np.bincount(bin_index, minlength=len(miss_edges) - 1)
    misses = np.bincount(bin_index, weights=1.0 - found, minlength=len(miss_edges) - 1)
    box_offsets = np.array(box_offsets).reshape(-1, 4)
    residual = np.array(world_residual).reshape(-1, len(JOINT_NAMES), 3)
    dof = math.sqrt(3 * PRESENT.sum() / (3 * PRESENT.sum() - 7))  # the similarity's 7 fitted parameters
    world_std = [
        [round(dof * _robust_std(residual[:, k, axis]), 5) for axis in range(3)] if present else [0.0, 0.0, 0.0]
        for k, present in enumerate(PRESENT)
    ]
    bp_size, true_size, true_height = np.array(bp_size), np.array(true_size), np.array(true_height)
    rotvec = np.array(world_rotvec).reshape(-1, 3)
    return {
        "schema": SCHEMA,
        "joint_names": list(JOINT_NAMES),
        "measured": {
            "images": n_images,
            "seeds": [seed, seed + n_images - 1],
            "people": n_people,
            "matched": int(found.sum()),
            "detector": "perception.PoseDetector() defaults (BlazePose full, mediapipe 0.10.14), match IoU >= 0.5",
            "unit_2d": "joint box height: height of the box around the 23 true joints projected by the true K",
        },
        "keypoints2d": {
            "core_std": _per_joint(core, _robust_std),
            "gross_share": _per_joint(norms, lambda n: (n > GROSS_THRESHOLD).mean()),
            "gross_threshold": GROSS_THRESHOLD,
            "gross_excess_mean": round(float((gross - GROSS_THRESHOLD).mean()), 5),
            "count": [len(n) if p else 0 for n, p in zip(norms, PRESENT)],
        },
        "visibility": {
            "edges": edges.round(5).tolist(),
            "in_frame": [_histogram(v if len(v) >= _MIN_COUNT else pooled_in, edges) for v in vis_in],
            "in_frame_mean": _per_joint([np.array(v) for v in vis_in], np.mean),
            "occluded": _histogram(np.array(vis_occluded), edges),
            "occluded_mean": round(float(np.mean(vis_occluded)), 5) if vis_occluded else None,
            "out_of_frame": _histogram(np.array(vis_out), edges),
            "out_of_frame_mean": round(float(np.mean(vis_out)), 5) if vis_out else None,
        },
        "swap": {
            "pairs": [list(p) for p in SWAP_PAIRS],
            "names": [JOINT_NAMES[left][5:] for left, _ in SWAP_PAIRS],
            "body_rate": round(float(body_swapped.mean()), 5),
            "rate": np.nan_to_num(np.nanmean(pair_flips, axis=0)).round(5).tolist(),
            "count": (~np.isnan(swaps)).sum(0).tolist(),
        },
        "detection": {
            "height_edges_px": [e if math.isfinite(e) else 1e9 for e in miss_edges.tolist()],
            "miss_rate": (misses / np.maximum(miss_count, 1)).round(5).tolist(),
            "count": miss_count.tolist(),
        },
        "box": {
            "offset_mean": box_offsets.mean(0).round(5).tolist(),
            "offset_std": box_offsets.std(0).round(5).tolist(),
            "iou_full_box_median": round(float(np.median(full_iou)), 5),
        },
        "world3d": {
            "std_m": world_std,
            "size_m": round(float(np.exp(np.log(bp_size).mean())), 5),
            "size_log_std": round(float(np.log(bp_size).std()), 5),
            "scale_vs_true_mean": round(float((bp_size / true_size).mean()), 5),
            "scale_vs_true_std": round(float((bp_size / true_size).std()), 5),
            "size_height_correlation": round(float(np.corrcoef(bp_size, true_height)[0, 1]), 4),
            "true_size_height_correlation": round(float(np.corrcoef(true_size, true_height)[0, 1]), 4),
            "rotation_std_deg": [round(_robust_std(rotvec[:, axis]), 4) for axis in range(3)],
        },
    }


def summary_table(noise: dict) -> str:
    """A plain-text table of the measured model, one row per joint, then the global numbers."""
    kp, vis, world = noise["keypoints2d"], noise["visibility"], noise["world3d"]
    swap_of = {}
    for (left, right), rate in zip(noise["swap"]["pairs"], noise["swap"]["rate"]):
        swap_of[left] = swap_of[right] = rate
    lines = [f"{'joint':<16}{'n':>6}{'std 2D':>9}{'gross %':>9}{'vis':>7}{'swap %':>8}{'world std mm (x y z)':>24}"]
    for k, name in enumerate(noise["joint_names"]):
        if not PRESENT[k]:
            lines.append(f"{name:<16}{'(no BlazePose landmark)':>30}")
            continue
        std_mm = " ".join(f"{1000 * s:5.0f}" for s in world["std_m"][k])
        lines.append(
            f"{name:<16}{kp['count'][k]:>6}{kp['core_std'][k]:>9.4f}{100 * kp['gross_share'][k]:>9.1f}"
            f"{vis['in_frame_mean'][k]:>7.2f}{100 * swap_of.get(k, 0.0):>8.1f}{std_mm:>24}"
        )
    m, det, box = noise["measured"], noise["detection"], noise["box"]
    miss = ", ".join(
        f"{lo:.0f}-{hi:.0f}px {100 * r:.0f}% (n={n})" if hi < 1e8 else f">{lo:.0f}px {100 * r:.0f}% (n={n})"
        for lo, hi, r, n in zip(det["height_edges_px"], det["height_edges_px"][1:], det["miss_rate"], det["count"])
    )
    lines += [
        f"2D unit: joint box height h; gross = error > {kp['gross_threshold']} h, "
        f"tail mean excess {kp['gross_excess_mean']:.3f} h",
        f"images {m['images']} (seeds {m['seeds'][0]}-{m['seeds'][1]}), people {m['people']}, matched {m['matched']}",
        f"missed by joint-box height: {miss}",
        f"visibility mean: occluded by others {vis['occluded_mean']}, out of frame (landmark inside) {vis['out_of_frame_mean']}",
        "box offset (x0 y0 x1 y1) / h: mean "
        + " ".join(f"{v:+.3f}" for v in box["offset_mean"])
        + ", std "
        + " ".join(f"{v:.3f}" for v in box["offset_std"])
        + f"; median IoU with full box {box['iou_full_box_median']:.2f}",
        f"world size {world['size_m']:.3f} m (log std {world['size_log_std']:.3f}), vs true size "
        f"{world['scale_vs_true_mean']:.2f} +- {world['scale_vs_true_std']:.2f}; correlation with true height "
        f"{world['size_height_correlation']:+.2f} (true size: {world['true_size_height_correlation']:+.2f})",
        f"left/right: whole body mirrored {100 * noise['swap']['body_rate']:.1f}% of people; swap % above: one pair alone",
        "world rotation std (deg, crop x y z): " + " ".join(f"{v:.1f}" for v in world["rotation_std_deg"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure BlazePose's errors on synthetic renders (training seeds).")
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--seed", type=int, default=MEASURE_SEED)
    parser.add_argument("-o", "--output", type=Path, default=Path(noise_model.__file__).with_name(NOISE_FILE))
    args = parser.parse_args(argv)
    noise = measure_blazepose_noise(args.images, args.seed)
    args.output.write_text(json.dumps(noise, indent=1) + "\n")
    print(summary_table(noise))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
