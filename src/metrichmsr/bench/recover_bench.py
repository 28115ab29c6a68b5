"""Benchmark of `recover`: speed on a 1024x768 image with 3 people, metric accuracy on
rendered ground truth (people 2-15 m, FOV 35-100 deg, all ages) and on distant pedestrians
(15-35 m, ~80 px tall).

    python -m metrichmsr.bench.recover_bench [--images 30] [--distant 10] [--seed 1000]

Prints one table per part and a final summary line. Seeds from 1000 up are the held-out range
(never used for training).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np
import torch

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def _joint_error(metric, person, true_joints: np.ndarray) -> float:
    """``metric`` (mpjpe or pa_mpjpe) over the 17 COCO joints of one person, metres."""
    pred = torch.as_tensor(person.joints3d[:17], dtype=torch.float64)
    return float(metric(pred, torch.as_tensor(true_joints[:17], dtype=torch.float64)))


def _evaluate(recoverer, scenes, adult_age: float = 0.77) -> list[dict]:
    """One row per ground-truth person: matched or not, depth and height errors."""
    from metrichmsr.bench.metrics import mpjpe, pa_mpjpe
    from metrichmsr.body import PHENOTYPE_NAMES
    from metrichmsr.perception import box_iou

    rows = []
    for scene in scenes:
        started = time.perf_counter()
        people = recoverer.infer(scene.image, K=scene.K).people
        seconds = time.perf_counter() - started
        for i, box in enumerate(scene.boxes):
            if box[3] - box[1] < 8:  # outside the picture (or a few pixels of it): not scored
                continue
            match = max(people, key=lambda p: box_iou(p.bbox, box), default=None)
            found = match is not None and box_iou(match.bbox, box) > 0.5
            true_depth = float(scene.params.translation[i, 2])
            age = float(scene.params.phenotype[i, PHENOTYPE_NAMES.index("age")])
            rows.append({
                "found": found,
                "adult": age >= adult_age,
                "fov": 2 * np.degrees(np.arctan(scene.image.shape[1] / (2 * scene.K[0, 0]))),
                "depth": true_depth,
                "box_height_px": box[3] - box[1],
                "rel_depth": abs(match.translation[2] / true_depth - 1) if found else np.nan,
                "height_err_m": abs(match.height_m - scene.height_m[i]) if found else np.nan,
                "height_bias_m": match.height_m - scene.height_m[i] if found else np.nan,
                "mpjpe_m": _joint_error(mpjpe, match, scene.joints[i]) if found else np.nan,
                "pa_mpjpe_m": _joint_error(pa_mpjpe, match, scene.joints[i]) if found else np.nan,
                "seconds": seconds,
            })  # fmt: skip
    return rows


def _table(title: str, groups: dict[str, list[dict]]) -> None:
    print(f"\n{title}\n")
    print(
        "| split | people | recall | median rel. depth err | mean rel. depth err | height MAE (cm) "
        "| adult height MAE (cm) | height bias (cm) | MPJPE (mm) | PA-MPJPE (mm) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, rows in groups.items():
        found = [r for r in rows if r["found"]]
        adults = [r for r in found if r["adult"]]
        rel = [r["rel_depth"] for r in found]

        def fmt(values, scale=100.0, f=statistics.median):
            return f"{f(values) * scale:.1f}" if values else "-"

        print(
            f"| {name} | {len(rows)} | {len(found) / max(len(rows), 1):.2f} | {fmt(rel)}% | {fmt(rel, f=statistics.mean)}% "
            f"| {fmt([r['height_err_m'] for r in found], f=statistics.mean)} | {fmt([r['height_err_m'] for r in adults], f=statistics.mean)} "
            f"| {fmt([r['height_bias_m'] for r in found], f=statistics.mean)} "
            f"| {fmt([r['mpjpe_m'] for r in found], 1000.0, statistics.mean)} | {fmt([r['pa_mpjpe_m'] for r in found], 1000.0, statistics.mean)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--distant", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()

    from metrichmsr.pipeline import Recoverer
    from metrichmsr.synth import SceneConfig, sample_scene

    started = time.perf_counter()
    recoverer = Recoverer(device="cpu")
    load_s = time.perf_counter() - started
    body, renderer = recoverer.body, recoverer.renderer

    # Speed: 1024x768, 3 people, after loading; median of 3 runs (the first warms caches).
    speed_scene = sample_scene(body, renderer, args.seed, SceneConfig(people=(3, 3), portrait_share=0.0, distance_m=(3.0, 8.0)))
    times = []
    for _ in range(4):
        t = time.perf_counter()
        found = len(recoverer.infer(speed_scene.image, K=speed_scene.K).people)
        times.append(time.perf_counter() - t)
    infer_s = statistics.median(times[1:])
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print("\nSpeed (this machine, CPU)\n")
    print("| load (s) | recover 1024x768, 3 people (s) | people found | peak memory (GB) |")
    print("|---|---|---|---|")
    print(f"| {load_s:.1f} | {infer_s:.2f} | {found}/3 | {peak_gb:.2f} |")

    scenes = [sample_scene(body, renderer, args.seed + 1 + i) for i in range(args.images)]
    rows = _evaluate(recoverer, scenes)
    near = [r for r in rows if r["depth"] < 6]
    _table(
        f"Accuracy on {args.images} rendered images (seeds {args.seed + 1}..{args.seed + args.images}, FOV 35-100 deg, 2-15 m, all ages)",
        {
            "all": rows,
            "adults": [r for r in rows if r["adult"]],
            "children (<18 y)": [r for r in rows if not r["adult"]],
            "FOV < 60 deg": [r for r in rows if r["fov"] < 60],
            "FOV >= 60 deg": [r for r in rows if r["fov"] >= 60],
            "2-6 m": near,
            "6-15 m": [r for r in rows if r["depth"] >= 6],
        },
    )
    distant_config = SceneConfig(fov_deg=(40.0, 60.0), distance_m=(15.0, 35.0), people=(1, 3), portrait_share=0.0, camera_height_m=(1.5, 3.0))
    base = args.seed + 5000
    distant = [sample_scene(body, renderer, base + i, distant_config) for i in range(args.distant)]
    distant_rows = _evaluate(recoverer, distant)
    heights = [r["box_height_px"] for r in distant_rows]
    _table(
        f"Distant pedestrians: {args.distant} rendered images, 15-35 m, FOV 40-60 deg, people {min(heights):.0f}-{max(heights):.0f} px tall",
        {"all": distant_rows, "adults": [r for r in distant_rows if r["adult"]]},
    )
    found = [r for r in rows if r["found"]]
    adults = [r for r in found if r["adult"]]
    print(
        f"\nsummary: load {load_s:.1f} s, recover {infer_s:.2f} s (1024x768, 3 people), peak {peak_gb:.2f} GB; "
        f"median rel. root-depth error {statistics.median(r['rel_depth'] for r in found) * 100:.1f}% "
        f"(targets: <=10%), adult height MAE {statistics.mean(r['height_err_m'] for r in adults) * 100:.1f} cm (<=7 cm), "
        f"recall {len(found) / len(rows):.2f}, MPJPE {statistics.mean(r['mpjpe_m'] for r in found) * 1000:.0f} mm, "
        f"PA-MPJPE {statistics.mean(r['pa_mpjpe_m'] for r in found) * 1000:.0f} mm"
    )
    recoverer.close()


if __name__ == "__main__":
    main()
