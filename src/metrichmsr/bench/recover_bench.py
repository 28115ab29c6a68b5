"""Benchmark of `recover` (issue 2's targets): speed on a 1024x768 image with 3 people, metric
accuracy on rendered people standing or walking in front of a level camera (2-15 m, FOV
35-100 deg, all ages) and on distant pedestrians (15-35 m, ~40-120 px tall).

    python -m metrichmsr.bench.recover_bench [--images 100] [--distant 10] [--camera-height-known]

Prints one table per part (and the planar floor's AbsRel: the offline scene depth `recover`
gives, on the true floor pixels) and a final summary line. Scenes come from the held-out seeds
(synth.HELD_OUT_SEED_START and up), never used for training. The harder, varied benchmark
(pitched cameras, all pose families, 1-30 m, FOV 20-120 deg) is `metrichmsr bench`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--distant", type=int, default=10)
    parser.add_argument("--weights", type=Path, metavar="FILE", help="HumanMoE network file (default: the shipped one)")
    parser.add_argument(
        "--camera-height-known",
        action="store_true",
        help="give `recover` each scene's true camera height (as `recover --camera-height` does)",
    )
    args = parser.parse_args()

    from metrichmsr.bench.depth_bench import abs_rel, floor_pixels
    from metrichmsr.bench.report import markdown_table, weights_label
    from metrichmsr.bench.score import ScoreConfig, score_image
    from metrichmsr.models.humanmoe import HUMANMOE_WEIGHTS
    from metrichmsr.pipeline import Recoverer
    from metrichmsr.synth import HELD_OUT_SEED_START, SceneConfig, sample_scene

    started = time.perf_counter()
    weights = args.weights or HUMANMOE_WEIGHTS
    if not weights.is_file():
        parser.error(f"--weights {weights}: no such file")
    print(f"HumanMoE {weights_label(weights)}")
    recoverer = Recoverer(device="cpu", weights=weights)
    load_s = time.perf_counter() - started
    body, renderer = recoverer.body, recoverer.renderer
    upright = SceneConfig(
        long_side_px=1024,
        aspects=(4 / 3,),
        portrait_share=0.25,
        fov_deg=(35.0, 100.0),
        distance_m=(2.0, 15.0),
        people=(1, 3),
        camera_height_m=(1.0, 2.0),
        pitch_deg=(0.0, 0.0),
        roll_deg=(0.0, 0.0),
        pose_families=("standing", "walking"),
        min_in_frame=1.0,
    )

    # Speed: 1024x768, 3 people, after loading; median of 3 runs (the first warms caches).
    speed_scene = sample_scene(
        body, renderer, HELD_OUT_SEED_START, replace(upright, people=(3, 3), portrait_share=0.0, distance_m=(3.0, 8.0))
    )
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
    print(f"| {load_s:.1f} | {infer_s:.2f} | {found}/{len(speed_scene.height_m)} | {peak_gb:.2f} |")

    def evaluate(name: str, first_seed: int, n: int, config: SceneConfig, score: ScoreConfig) -> tuple[list[dict], list[float]]:
        """Rows of scored people, and each image's planar floor AbsRel (the offline scene
        depth `recover` gives, on the true floor pixels; images with a floor it placed)."""
        rows, seconds, floor_absrel = [], [], []
        for seed in range(first_seed, first_seed + n):
            scene = sample_scene(body, renderer, seed, config)
            t = time.perf_counter()
            known_m = scene.floor.camera_height_m if args.camera_height_known else None
            result = recoverer.infer(scene.image, K=scene.K, camera_height_m=known_m)
            seconds.append(time.perf_counter() - t)
            rows += [
                dict(r, true_height_m=float(scene.height_m[r["person"]]))
                for r in score_image(scene, result.people, score, method=name, image=seed)
            ]
            on_floor = floor_pixels(scene)
            if result.scene is not None and result.floor is not None and on_floor.any():
                floor_absrel.append(abs_rel(result.scene.depth_m[on_floor], scene.depth_m[on_floor]))
        print(f"\n{name}: {n} rendered images, seeds {first_seed}..{first_seed + n - 1}\n")
        print(markdown_table(rows, [name], {name: statistics.mean(seconds)}))
        if floor_absrel:
            print(
                f"\nplanar floor AbsRel (median over {len(floor_absrel)} images with a floor): "
                f"{statistics.median(floor_absrel) * 100:.1f}%"
            )
        return rows, floor_absrel

    rows, floor_absrel = evaluate("upright", HELD_OUT_SEED_START + 1, args.images, upright, ScoreConfig())
    distant = replace(upright, fov_deg=(40.0, 60.0), distance_m=(15.0, 35.0), portrait_share=0.0, camera_height_m=(1.5, 3.0))
    evaluate("distant", HELD_OUT_SEED_START + 5000, args.distant, distant, ScoreConfig(min_box_px=30.0))

    found = [r for r in rows if r["found"]]
    adults = [r for r in found if r["adult"]]
    # The adult height MAE follows the sample's spread of heights as much as the method: the
    # same adults' MAE when answering their median height for everyone puts it in scale.
    median_height = statistics.median(r["true_height_m"] for r in adults)
    median_mae = statistics.mean(abs(r["true_height_m"] - median_height) for r in adults)
    print(
        f"\nsummary: load {load_s:.1f} s, recover {infer_s:.2f} s (1024x768, 3 people), peak {peak_gb:.2f} GB; "
        f"median rel. root-depth error {statistics.median(abs(r['depth_ratio_err']) for r in found) * 100:.1f}% "
        f"(targets: <=10%), adult height MAE {statistics.mean(abs(r['height_err_m']) for r in adults) * 100:.1f} cm (<=7 cm; "
        f"their median height for everyone: {median_mae * 100:.1f} cm), "
        f"recall {len(found) / len(rows):.2f}, MPJPE {statistics.mean(r['mpjpe_mm'] for r in found):.0f} mm, "
        f"PA-MPJPE {statistics.mean(r['pa_mpjpe_mm'] for r in found):.0f} mm; "
        f"planar floor AbsRel {statistics.median(floor_absrel) * 100 if floor_absrel else float('nan'):.1f}% "
        "(median; issue 5: <=5%)"
    )
    recoverer.close()


if __name__ == "__main__":
    main()
