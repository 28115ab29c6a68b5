"""HumanMoE on real people against simulated twins: which input reads differently on real footage.

    python -m metrichmsr.bench.pets_twins -o out/bench-pets-twins [--dev DIR] [--weights FILE]

The network alone (no floor, no alignment) on the people BlazePose finds in the PETS stills
(``bench.pets``'s frames, true K), against the training stream's simulated people seen by the
same camera: its calibrated height, pitch, roll and field of view, standing or walking
adults at the real people's distances. Each real person's true distance is where the ray
through their ankle-midpoint landmark meets the calibrated floor raised by ``score.py``'s
ankle height; each twin's is its true ankle midpoint.

Per group the table gives the network's median signed depth error of the ankle midpoint
(+ = too far) and what it read it from: the box's height and the eye-to-heel span of the
landmarks in metres at the true distance, the landmarks' shoulder-to-hip share of that span,
the silhouette's share of its grid and its mean width (grid cells per row it fills), and the
share of people without one. Then the same people with their silhouettes zeroed, and with
BlazePose's world landmarks zeroed (for a network that reads them), which says how much of the
error each carries. A network that reads real people as it reads
their twins has the same error on both rows; the input whose numbers differ is the suspect.
Writes ``OUT/table.md``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace

import numpy as np
import torch

from metrichmsr._outputs import check_output, staged_output
from metrichmsr.bench.pets import MARKER, check_pets_arguments, dev_folder, load_score_module, pets_parser
from metrichmsr.bench.report import exit_status
from metrichmsr.errors import InputError
from metrichmsr.joints import ANKLES, EYES, HEELS, HIPS, SHOULDERS

PROG = "metrichmsr.bench.pets_twins"
#: Simulated twins drawn (adults of them are kept: about four in five).
TWINS = 768
TWIN_SEED = 11


def twin_config(camera: dict, depth_m: np.ndarray):
    """The ``SceneConfig`` of ``camera.json``'s camera (height, pitch, roll, horizontal FOV, image
    size) with standing and walking people at the 5th-95th percentile of ``depth_m``."""
    from metrichmsr.synth.scenes import SceneConfig

    up = np.asarray(camera["up"], dtype=np.float64)
    # synth.scenes.sample_camera's up: [-sin(roll) cos(pitch), -cos(roll) cos(pitch), -sin(pitch)].
    pitch, roll = math.degrees(math.asin(-up[2])), math.degrees(math.atan2(-up[0], -up[1]))
    fov = math.degrees(2 * math.atan(camera["width"] / 2 / camera["fx"]))
    near, far = np.percentile(depth_m, [5, 95])
    return replace(
        SceneConfig(),
        long_side_px=max(camera["width"], camera["height"]),
        aspects=(camera["width"] / camera["height"],),
        portrait_share=0.0,
        fov_deg=(fov, fov),
        principal_offset=0.0,
        camera_height_m=(camera["camera_height_m"],) * 2,
        pitch_deg=(pitch, pitch),
        roll_deg=(roll, roll),
        distance_m=(float(near), float(far)),
        pose_families=("standing", "walking"),
    )


def ankle_depths(keypoints2d: np.ndarray, K: np.ndarray, up: np.ndarray, camera_height_m: float, ankle_m: float) -> np.ndarray:
    """(N,) depth z (m) where the ray through each person's ankle-midpoint landmark
    ((N, 23, 3) ``HumanInputs.keypoints2d``) meets the floor raised by ``ankle_m``; nan where
    an ankle is unseen or the ray misses it."""
    from metrichmsr.geometry import rays_z1
    from metrichmsr.scene.floor import FloorPlane

    u, v = keypoints2d[:, ANKLES, :2].mean(1).T
    depth = FloorPlane(np.asarray(up), camera_height_m - ankle_m).ray_depth(rays_z1(K, u, v))
    seen = (keypoints2d[:, ANKLES, 2] > 0.5).all(1) & np.isfinite(depth)
    return np.where(seen, depth, np.nan)


def describe(network, body, inputs, depth_m: np.ndarray) -> dict:
    """The table's numbers for people ``inputs`` whose ankle midpoints lie at ``depth_m`` (N,)."""
    from metrichmsr.models.humanmoe import to_body_params

    with torch.inference_mode():
        params = to_body_params(network(inputs))
        joints = body.joints(params.phenotype, params.bone_rotvec, params.global_rotation, params.translation).numpy()
    signed = joints[:, ANKLES, 2].mean(1) / depth_m - 1
    kp, box = inputs.keypoints2d.numpy(), inputs.bbox.numpy()
    metres_per_px = depth_m / inputs.K[:, 1, 1].numpy()
    eye, heel = kp[:, EYES, 1].mean(1), kp[:, HEELS, 1].mean(1)
    span_px = np.maximum(heel - eye, 1.0)
    silhouette = inputs.silhouette.numpy() if inputs.silhouette is not None else np.zeros((len(kp), 1, 1))
    on = silhouette > 0.5
    rows = on.any(2).sum(1)
    has = rows > 0
    width = np.where(has, silhouette.sum((1, 2)) / np.maximum(rows, 1), np.nan)
    return {
        "people": len(kp),
        "depth_signed": float(np.median(signed)),
        "box_m": float(np.median((box[:, 3] - box[:, 1]) * metres_per_px)),
        "span_m": float(np.median(span_px * metres_per_px)),
        "shoulder_hip": float(np.median((kp[:, HIPS, 1].mean(1) - kp[:, SHOULDERS, 1].mean(1)) / span_px)),
        "silhouette_share": float(np.median(on.mean((1, 2))[has])) if has.any() else None,
        "silhouette_width": float(np.nanmedian(width)) if has.any() else None,
        "no_silhouette": float(1 - has.mean()),
    }


def markdown_table(rows: list[tuple[str, dict]]) -> str:
    def number(value, fmt: str, scale: float = 1.0) -> str:
        return "-" if value is None else format(value * scale, fmt)

    lines = [
        "| people | n | signed depth error % | box m | eye-heel span m | shoulder-hip / span "
        "| silhouette share | silhouette width cells | no silhouette |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['people']} | {number(r['depth_signed'], '+.1f', 100)} | {r['box_m']:.2f} | {r['span_m']:.2f} "
            f"| {r['shoulder_hip']:.3f} | {number(r['silhouette_share'], '.3f')} | {number(r['silhouette_width'], '.2f')} "
            f"| {number(r['no_silhouette'], '.0%')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = pets_parser(PROG, __doc__).parse_args(argv)
    return exit_status(PROG, lambda: run(args))


def run(args) -> int:
    check_pets_arguments(args)
    check_output(args.output, args.overwrite)

    from tqdm import tqdm

    from metrichmsr.bench.report import weights_label
    from metrichmsr.body import ADULT_AGE, BodyModel
    from metrichmsr.image_io import load_image
    from metrichmsr.models.humanmoe import HUMANMOE_WEIGHTS, load_network
    from metrichmsr.models.tokens import inputs_from_observations
    from metrichmsr.perception import PoseDetector
    from metrichmsr.train.data import SyntheticPeople
    from metrichmsr.train.noise import NoiseModel

    weights = args.weights or HUMANMOE_WEIGHTS
    ankle_m = load_score_module(args.pets_dir).ANKLE_H
    with staged_output(args.output, args.overwrite) as staging:
        dev = dev_folder(args, staging)
        camera = json.loads((dev / "camera.json").read_text())
        K, up = np.asarray(camera["K"]), np.asarray(camera["up"])
        network = load_network(weights).eval()
        grid = network.config.silhouette_grid
        observations = []
        with PoseDetector(segmentation=bool(grid)) as detector:
            for frame in tqdm(sorted((dev / "frames").glob("*.jpg")), desc="BlazePose", unit="image"):
                observations += [o for o in detector.detect(load_image(frame)[0]) if o.score > 0]
        if not observations:
            raise InputError(f"{dev / 'frames'}: BlazePose found nobody")
        real = inputs_from_observations(observations, K, grid)
        real_depth = ankle_depths(real.keypoints2d.numpy(), K, up, camera["camera_height_m"], ankle_m)
        scored = np.isfinite(real_depth)
        real, real_depth = real.select(torch.as_tensor(scored)), real_depth[scored]

        body = BodyModel()
        config = twin_config(camera, real_depth)
        stream = SyntheticPeople(body, NoiseModel.load(), config, seed=TWIN_SEED, pool_size=TWINS, silhouette_grid=grid)
        twins, truth = stream.sample(TWINS)
        adult = truth.params.phenotype[:, 1] >= ADULT_AGE
        twins, twin_joints = twins.select(adult), truth.joints[adult].numpy()
        twin_depth = twin_joints[:, ANKLES, 2].mean(1)

        def zeroed(inputs, field: str):
            return replace(inputs, **{field: torch.zeros_like(getattr(inputs, field))})

        rows = [
            ("real", describe(network, body, real, real_depth)),
            ("simulated twins", describe(network, body, twins, twin_depth)),
        ]
        read = {"silhouette": bool(grid), "world3d": network.config.world_landmarks != "none"}
        for field, label in (("silhouette", "silhouettes"), ("world3d", "world landmarks")):
            if read[field]:
                rows += [
                    (f"real, {label} zeroed", describe(network, body, zeroed(real, field), real_depth)),
                    (f"twins, {label} zeroed", describe(network, body, zeroed(twins, field), twin_depth)),
                ]
        gap = rows[0][1]["depth_signed"] - rows[1][1]["depth_signed"]
        heading = f"PETS stills ({dev}), HumanMoE {weights_label(weights)} alone, true K ({time.strftime('%Y-%m-%d')})"
        summary = (
            f"summary: signed depth error real {100 * rows[0][1]['depth_signed']:+.1f}%, "
            f"simulated twins {100 * rows[1][1]['depth_signed']:+.1f}% (gap {100 * gap:+.1f} points)"
        )
        report = f"{heading}\n\n{markdown_table(rows)}\n\n{summary}\n"
        (staging / MARKER).write_text(report)
    print(report, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
