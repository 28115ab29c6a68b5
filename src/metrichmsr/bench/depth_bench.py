"""Benchmark of the scene depth (issue 5): human-anchored refinement and the planar backend on
rendered ground truth.

    python -m metrichmsr.bench.depth_bench [--images 12]

Each scene (``synth.sample_scene``, held-out seeds, 1024 px, pitched and rolled cameras, 2-4
people in a room) has a true metric depth map. It is corrupted the way monocular estimators
err: a scale drawn from 0.6-1.6, a shift of up to +-0.5 m, and in the ``drift`` case a scale
that drifts +-20% across the image in a random direction. The refinement is anchored on the
true people (their rendered z-buffer and the floor under their feet, the floor placed from
them by ``scene.placement.people_floor``, as the pipeline does with recovered people), so it measures the
refinement itself, not the people recovery. Prints a markdown table (means over scenes) and
a final ``summary:`` line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

SHIFT_M = 0.5
DRIFT = 0.2


def abs_rel(pred_m: np.ndarray, true_m: np.ndarray) -> float:
    """Mean |pred - true| / true over pixels where both are finite and true > 0 (pred NaN counts as 1)."""
    valid = np.isfinite(true_m) & (true_m > 0)
    error = np.abs(pred_m[valid] - true_m[valid]) / true_m[valid]
    return float(np.mean(np.nan_to_num(error, nan=1.0)))


def delta1(pred_m: np.ndarray, true_m: np.ndarray) -> float:
    """Share of valid pixels with max(pred / true, true / pred) < 1.25 (pred NaN fails)."""
    valid = np.isfinite(true_m) & (true_m > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.maximum(pred_m[valid] / true_m[valid], true_m[valid] / pred_m[valid])
    return float(np.mean(ratio < 1.25))


def corrupt(depth_m: np.ndarray, scale: float, shift_m: float, drift: float, angle_rad: float) -> np.ndarray:
    """``scale * depth * (1 + drift * x) + shift``, x running from -1 to 1 across the image
    along the direction ``angle_rad`` (0 = left to right)."""
    height, width = depth_m.shape
    v, u = np.mgrid[0:height, 0:width]
    along = (u - (width - 1) / 2) * np.cos(angle_rad) + (v - (height - 1) / 2) * np.sin(angle_rad)
    x = along / np.abs(along).max()
    return (scale * depth_m * (1.0 + drift * x) + shift_m).astype(np.float32)


def floor_pixels(scene) -> np.ndarray:
    """(H, W) bool: pixels whose true depth is the floor's (no person, prop or wall in front)."""
    size = (scene.depth_m.shape[1], scene.depth_m.shape[0])
    floor_m = scene.floor.depth_map(scene.K, size)
    return np.isfinite(floor_m) & (np.abs(scene.depth_m - floor_m) < 1e-3 * floor_m) & (scene.instance_ids < 0)


def bench_scene(
    scene,
    people_vertices,
    people_joints: np.ndarray,
    faces: np.ndarray,
    renderer,
    rng: np.random.Generator,
    floor_and_contacts=None,
) -> list[dict]:
    """Rows (one per corruption case) for one synthetic scene, anchored on the given people:
    vertices (N, V, 3) and joints (N, 23, 3), camera frame (the true ones, or recovered ones).

    ``floor_and_contacts``: the (floor, (N, 3) contacts) the pipeline found for recovered
    people (``Recoverer.stand_on_floor``); default: ``scene.placement.people_floor`` of the
    given people, as the pipeline places its floor (their true boxes and global rotations,
    everyone's feet taken as seen).
    """
    from metrichmsr.scene.anchors import human_anchors, people_depth
    from metrichmsr.scene.depth import PlanarDepth
    from metrichmsr.scene.placement import people_floor
    from metrichmsr.scene.refine import refine_depth

    true_m = np.where(np.isfinite(scene.depth_m), scene.depth_m, np.nan).astype(np.float32)
    size = (true_m.shape[1], true_m.shape[0])
    meshes = [(vertices, faces) for vertices in people_vertices]
    people_m, ids = people_depth(renderer, scene.K, size, meshes)

    if floor_and_contacts is None:
        floor_and_contacts = people_floor(people_joints, scene.boxes, scene.params.global_rotation, image=scene.image, K=scene.K)
    floor, contacts = floor_and_contacts
    planar = PlanarDepth().estimate(scene.image, scene.K, people_joints, floor=floor) if floor is not None else None
    on_floor = floor_pixels(scene)
    planar_floor = abs_rel(planar.depth_m[on_floor], true_m[on_floor]) if planar is not None and on_floor.any() else None
    # The floor alone rewards a backdrop pushed far away; the whole scene (people left out) does not.
    in_scene = np.isfinite(true_m) & (scene.instance_ids < 0)
    planar_scene = abs_rel(planar.depth_m[in_scene], true_m[in_scene]) if planar is not None and in_scene.any() else None
    # How far the fitted floor is off: its up direction, and the camera height above it.
    floor_up_err_deg = float(np.degrees(np.arccos(np.clip(floor.up @ scene.floor.up, -1.0, 1.0)))) if floor is not None else None
    camera_height_err = abs(floor.camera_height_m / scene.floor.camera_height_m - 1) if floor is not None else None

    rows = []
    for case, drift in (("scale+shift", 0.0), ("scale+shift+drift", DRIFT)):
        corrupted = corrupt(true_m, rng.uniform(0.6, 1.6), rng.uniform(-SHIFT_M, SHIFT_M), drift, rng.uniform(0, 2 * np.pi))
        started = time.perf_counter()
        anchors = human_anchors(scene.K, people_m, ids, contacts, floor)
        refined = refine_depth(corrupted, anchors)
        refine_s = time.perf_counter() - started
        only_global = refine_depth(corrupted, anchors, spatial=False)
        rows.append(
            {
                "case": case,
                "people": len(people_joints),
                "corrupted_absrel": abs_rel(corrupted, true_m),
                "corrupted_delta1": delta1(corrupted, true_m),
                "global_absrel": abs_rel(only_global.depth_m, true_m),
                "global_delta1": delta1(only_global.depth_m, true_m),
                "refined_absrel": abs_rel(refined.depth_m, true_m),
                "refined_delta1": delta1(refined.depth_m, true_m),
                "spatial": refined.mode == "spatial",
                "floor_anchored": refined.floor_anchors > 0,
                "feet_to_floor_m": refined.feet_to_floor_m,
                "refine_s": refine_s,
                "planar_floor_absrel": planar_floor,
                "planar_scene_absrel": planar_scene,
                "wall_from_lines": floor is not None and floor.wall_distance_m is not None,
                "floor_up_err_deg": floor_up_err_deg,
                "camera_height_err": camera_height_err,
                "floor_up_from_lines": floor is not None and floor.up_source == "lines",
            }
        )
    return rows


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.mean(values) if values else None


def _median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.median(values) if values else None


def _scaled(factor: float, value: float | None) -> float | None:
    return None if value is None else factor * value


def _format(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def markdown_table(rows: list[dict]) -> str:
    """One row per corruption case (and per people count), means over scenes (and the refined
    AbsRel's median), with the planar map's floor AbsRel and camera height error (medians)."""
    columns = (
        ("scenes", len, "{}"),
        ("AbsRel corrupted (%)", lambda rs: _scaled(100, _mean(rs, "corrupted_absrel")), "{:.1f}"),
        ("AbsRel global (%)", lambda rs: _scaled(100, _mean(rs, "global_absrel")), "{:.2f}"),
        ("AbsRel refined (%)", lambda rs: _scaled(100, _mean(rs, "refined_absrel")), "{:.2f}"),
        ("AbsRel refined, median (%)", lambda rs: _scaled(100, _median(rs, "refined_absrel")), "{:.2f}"),
        ("δ<1.25 corrupted", lambda rs: _mean(rs, "corrupted_delta1"), "{:.3f}"),
        ("δ<1.25 global", lambda rs: _mean(rs, "global_delta1"), "{:.3f}"),
        ("δ<1.25 refined", lambda rs: _mean(rs, "refined_delta1"), "{:.3f}"),
        ("spatial kept", lambda rs: sum(r["spatial"] for r in rs), "{}"),
        ("median feet-to-floor (cm)", lambda rs: _scaled(100, _median(rs, "feet_to_floor_m")), "{:.1f}"),
        ("refine (ms, median)", lambda rs: _scaled(1000, _median(rs, "refine_s")), "{:.0f}"),
        # The planar map does not depend on the corruption: repeated per case, split by people.
        ("planar floor AbsRel, median (%)", lambda rs: _scaled(100, _median(rs, "planar_floor_absrel")), "{:.1f}"),
        ("camera height off, median (%)", lambda rs: _scaled(100, _median(rs, "camera_height_err")), "{:.1f}"),
    )
    header = ["case", *(title for title, _, _ in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case]
        splits = {case: mine} | {
            f"{case}, {n} people": [r for r in mine if r["people"] == n] for n in sorted({r["people"] for r in mine})
        }
        for name, split in splits.items():
            lines.append("| " + " | ".join([name, *(_format(value(split), fmt) for _, value, fmt in columns)]) + " |")
    return "\n".join(lines)


def summary_line(rows: list[dict]) -> str:
    """One line: refined AbsRel (scale+shift; drift, global vs refined), δ<1.25, how often the
    open floor was anchored, feet-to-floor, time,
    planar floor AbsRel and how far the fitted floor's up and camera height are off (medians), and
    the planar map's AbsRel over the whole scene (median)."""
    plain = [r for r in rows if r["case"] == "scale+shift"]
    drift = [r for r in rows if r["case"] == "scale+shift+drift"]

    def pct(value: float | None, digits: int = 2) -> str:
        return _format(_scaled(100, value), f"{{:.{digits}f}}%")

    return (
        f"summary: scale+shift AbsRel {pct(_mean(plain, 'refined_absrel'))}, "
        f"drift AbsRel global {pct(_mean(drift, 'global_absrel'))} -> refined {pct(_mean(drift, 'refined_absrel'))}, "
        f"δ<1.25 {_format(_mean(rows, 'refined_delta1'), '{:.3f}')}, "
        f"open floor anchored in {pct(_mean(rows, 'floor_anchored'), 0)} of fits, "
        f"feet-to-floor {_format(_scaled(100, _median(rows, 'feet_to_floor_m')), '{:.1f} cm')}, "
        f"refine {_format(_scaled(1000, _median(rows, 'refine_s')), '{:.0f} ms')}, "
        f"planar floor AbsRel {pct(_median(plain, 'planar_floor_absrel'), 1)} (median; floor up off by "
        f"{_format(_median(plain, 'floor_up_err_deg'), '{:.1f} deg')}, "
        f"camera height by {pct(_median(plain, 'camera_height_err'), 1)}; "
        f"up from lines in {pct(_mean(plain, 'floor_up_from_lines'), 0)} of scenes), "
        f"planar scene AbsRel {pct(_median(plain, 'planar_scene_absrel'), 1)} (median, people left out; "
        f"backdrop at the lines' wall in {pct(_mean(plain, 'wall_from_lines'), 0)} of scenes), "
        f"{len(plain)} scenes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=12)
    args = parser.parse_args()

    from metrichmsr.body import BodyModel
    from metrichmsr.render import Renderer
    from metrichmsr.synth import HELD_OUT_SEED_START, SceneConfig, sample_scene

    body, renderer = BodyModel(), Renderer()
    faces = body.faces.numpy()
    config = SceneConfig(long_side_px=1024, aspects=(4 / 3,), people=(2, 4))
    rng = np.random.default_rng(0)
    rows = []
    for i in range(args.images):
        scene = sample_scene(body, renderer, HELD_OUT_SEED_START + i, config)
        rows += bench_scene(scene, scene.vertices, scene.joints, faces, renderer, rng)
    print(markdown_table(rows))
    print(summary_line(rows))


if __name__ == "__main__":
    main()
