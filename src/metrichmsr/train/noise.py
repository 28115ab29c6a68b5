"""BlazePose's errors, measured on synthetic renders against their ground truth, and simulated.

Training HumanMoE on rendered images would cost ~0.5 s of rendering and ~0.5 s of BlazePose
per image; instead the network trains on Anny joints turned into what BlazePose *would* have
reported. This module measures how BlazePose errs (``measure_blazepose_noise``, run once,
``python -m metrichmsr.train.noise --images 120``) and stores the result as the package file
``train/blazepose_noise.json``, which :class:`NoiseModel` reads and applies.

Every 2D quantity is in units of the person's **joint box height** ``h``: the height of the box
around the 23 true joints projected by the true K (not clipped to the image). It is computable
for any simulated person, so measurement and simulation use the same yardstick.

Keys of ``blazepose_noise.json`` (joint arrays have 23 entries, ``joint_names`` order; the two
small-toe points BlazePose lacks hold ``null`` / zeros):

| key | what |
| --- | --- |
| ``keypoints2d.core_std`` | (23,) robust std (1.4826 MAD) per image axis of landmark - projected true joint, over in-frame joints, gross errors and swaps left out, units of ``h`` |
| ``keypoints2d.gross_share`` | (23,) share of in-frame landmarks further than ``gross_threshold`` (0.1 ``h``) from the true joint |
| ``keypoints2d.gross_excess_mean`` | mean of ``(error - gross_threshold)`` over gross errors (exponential tail), ``h`` |
| ``keypoints2d.count`` | (23,) in-frame landmarks measured |
| ``visibility.edges`` | (V + 1,) bin edges in [0, 1] |
| ``visibility.in_frame`` | (23, V) histogram (sums to 1) of visibility where the true joint and the landmark are in the image and no other person or prop hides the joint |
| ``visibility.occluded`` | (V,) the same, pooled over joints hidden by another person or a prop (reported, not simulated) |
| ``visibility.out_of_frame`` | (V,) pooled, true joint outside the image but the landmark inside (landmarks outside get 0) |
| ``swap.body_rate`` | share of people whose whole body is read mirrored (most of their left/right pairs swapped: back views) |
| ``swap.pairs``, ``swap.rate`` | (S, 2) left/right joint index pairs, (S,) share of them swapped on their own, against the body's reading (pairs whose true points are < 0.05 ``h`` apart are not counted) |
| ``detection.height_edges_px``, ``miss_rate``, ``count`` | missed people by the height of their joint box clipped to the image (px) |
| ``box.offset_mean``, ``box.offset_std`` | (4,) detected box ``[x0, y0, x1, y1]`` minus the clipped joint box, units of ``h`` (mean, std) |
| ``box.iou_full_box_median`` | median IoU of the detected box with the true box of the whole mesh (clipped) |
| ``world3d.std_m`` | (23, 3) per joint and crop-frame axis, std (1.4826 MAD, corrected for the 7 fitted degrees of freedom) of BlazePose's world landmark minus the true root-relative joint in the crop frame after the best similarity transform, metres of BlazePose's scale |
| ``world3d.size_m``, ``size_log_std`` | BlazePose's body size (RMS distance of the 21 landmarks from their centroid): mean (m) and std of its log |
| ``world3d.scale_vs_true_mean``, ``scale_vs_true_std`` | BlazePose size / true body size |
| ``world3d.size_height_correlation`` | Pearson correlation of BlazePose's size with the true standing height (near 0: it does not track height) |
| ``world3d.true_size_height_correlation`` | the same for the true size (for reference: near 1) |
| ``world3d.rotation_std_deg`` | (3,) robust std of the similarity's rotation vector per crop axis, degrees |
| ``measured`` | seeds, image and people counts, detector settings |

The crop frame is the virtual camera looking along the ray of the detected box centre (the
minimal rotation taking the optical axis onto that ray), in which BlazePose's world landmarks
live: ``X_cam = crop_rotation(K, centre) @ X_crop`` (as ``fit.evidence_from_blazepose``).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from metrichmsr import camera
from metrichmsr.body import JOINT_NAMES
from metrichmsr.perception.landmarks import BLAZEPOSE_FOR_JOINT

NOISE_FILE = "blazepose_noise.json"
SCHEMA = "metrichmsr.blazepose_noise/1"
#: Training seeds the shipped measurement renders (below synth.HELD_OUT_SEED_START).
MEASURE_SEED = 500_000

#: (23,) whether BlazePose has a landmark for each of JOINT_NAMES.
PRESENT = np.array([BLAZEPOSE_FOR_JOINT[name] is not None for name in JOINT_NAMES])
_GATHER = [BLAZEPOSE_FOR_JOINT[name] or 0 for name in JOINT_NAMES]
#: Left/right joint pairs (indices into JOINT_NAMES) that BlazePose can confuse.
SWAP_PAIRS = tuple(
    (i, JOINT_NAMES.index("right_" + name[5:]))
    for i, name in enumerate(JOINT_NAMES)
    if name.startswith("left_") and PRESENT[i] and PRESENT[JOINT_NAMES.index("right_" + name[5:])]
)
GROSS_THRESHOLD = 0.1  # joint box heights
_SWAP_MIN_SEPARATION = 0.05  # joint box heights: closer pairs cannot be told swapped
_VISIBILITY_BINS = 20
_MISS_EDGES_PX = (0.0, 40.0, 60.0, 80.0, 120.0, 160.0, 240.0, 320.0, math.inf)
_MIN_COUNT = 20  # below this many measurements a joint takes the pooled statistic
_MAD_TO_STD = 1.4826


def crop_rotation(K: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """``camera.crop_rotation`` in numpy: K (N, 3, 3), pixels ``centre`` (N, 2) -> (N, 3, 3)."""
    return camera.crop_rotation(torch.as_tensor(K, dtype=torch.float64), torch.as_tensor(centre, dtype=torch.float64)).numpy()


def project_points(K: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pinhole projection in numpy: K (B, 3, 3), camera-frame points (B, J, 3) -> (B, J, 2) px."""
    xy = points[..., :2] / points[..., 2:3]
    return xy * K[:, None, [0, 1], [0, 1]] + K[:, None, :2, 2]


def joint_box(uv: np.ndarray) -> np.ndarray:
    """Box ``[x0, y0, x1, y1]`` (..., 4) around points (..., J, 2)."""
    return np.concatenate((uv.min(axis=-2), uv.max(axis=-2)), axis=-1)


def inside_image(uv: np.ndarray, size: np.ndarray) -> np.ndarray:
    """(..., J) whether pixels (..., J, 2) lie in images of ``size`` (..., 2) [W, H] (pixel-centre extent)."""
    limit = np.asarray(size, dtype=np.float64)[..., None, :] - 1
    return np.all((uv >= 0) & (uv <= limit), axis=-1)


def _robust_std(x: np.ndarray) -> float:
    return float(_MAD_TO_STD * np.median(np.abs(x - np.median(x)))) if len(x) else math.nan


def _size(points: np.ndarray) -> np.ndarray:
    """RMS distance of points (..., J, 3) from their centroid (...,)."""
    return np.sqrt(((points - points.mean(-2, keepdims=True)) ** 2).sum(-1).mean(-1))


@dataclass(frozen=True)
class NoiseModel:
    """BlazePose's errors (see the module docstring for units and measurement), ready to simulate.

    Joint arrays are in ``JOINT_NAMES`` order; 2D quantities in joint box heights.
    """

    core_std: np.ndarray  # (23,) per image axis
    gross_share: np.ndarray  # (23,)
    gross_excess_mean: float
    visibility_edges: np.ndarray  # (V + 1,)
    visibility_in_frame: np.ndarray  # (23, V) probabilities
    visibility_out_of_frame: np.ndarray  # (V,) probabilities
    swap_body_rate: float
    swap_rate: np.ndarray  # (S,) for SWAP_PAIRS, on top of the body's swap
    box_offset_mean: np.ndarray  # (4,)
    box_offset_std: np.ndarray  # (4,)
    miss_height_edges_px: np.ndarray  # (M + 1,)
    miss_rate: np.ndarray  # (M,)
    world_std_m: np.ndarray  # (23, 3) crop-frame axes
    world_size_m: float
    world_size_log_std: float
    world_rotation_std_deg: np.ndarray  # (3,)

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseModel":
        """From the dict ``measure_blazepose_noise`` returns (the json's content)."""
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a BlazePose noise model (schema {d.get('schema')!r}, expected {SCHEMA!r})")
        if [tuple(p) for p in d["swap"]["pairs"]] != list(SWAP_PAIRS) or d["joint_names"] != list(JOINT_NAMES):
            raise ValueError("the noise model was measured for other joints")

        def array(values) -> np.ndarray:
            return np.nan_to_num(np.array(values, dtype=np.float64))  # null (absent joint) -> 0

        kp, vis, world = d["keypoints2d"], d["visibility"], d["world3d"]
        return cls(
            core_std=array(kp["core_std"]),
            gross_share=array(kp["gross_share"]),
            gross_excess_mean=float(kp["gross_excess_mean"]),
            visibility_edges=array(vis["edges"]),
            visibility_in_frame=array(vis["in_frame"]),
            visibility_out_of_frame=array(vis["out_of_frame"]),
            swap_body_rate=float(d["swap"]["body_rate"]),
            swap_rate=array(d["swap"]["rate"]),
            box_offset_mean=array(d["box"]["offset_mean"]),
            box_offset_std=array(d["box"]["offset_std"]),
            miss_height_edges_px=np.array(d["detection"]["height_edges_px"], dtype=np.float64),
            miss_rate=array(d["detection"]["miss_rate"]),
            world_std_m=array(world["std_m"]),
            world_size_m=float(world["size_m"]),
            world_size_log_std=float(world["size_log_std"]),
            world_rotation_std_deg=array(world["rotation_std_deg"]),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> "NoiseModel":
        """The measured model: ``path``, or the json shipped in the package."""
        if path is None:
            text = resources.files("metrichmsr.train").joinpath(NOISE_FILE).read_text()
        else:
            text = Path(path).read_text()
        return cls.from_dict(json.loads(text))

    @classmethod
    def noiseless(cls, world_size_m: float = 0.5) -> "NoiseModel":
        """A perfect detector: exact projections, visibility 1 in the image, the joint box,
        exact crop-frame world landmarks normalised to ``world_size_m``; nobody missed."""
        j, s = len(JOINT_NAMES), len(SWAP_PAIRS)
        return cls(
            core_std=np.zeros(j),
            gross_share=np.zeros(j),
            gross_excess_mean=0.0,
            visibility_edges=np.ones(2),
            visibility_in_frame=np.ones((j, 1)),
            visibility_out_of_frame=np.ones(1),
            swap_body_rate=0.0,
            swap_rate=np.zeros(s),
            box_offset_mean=np.zeros(4),
            box_offset_std=np.zeros(4),
            miss_height_edges_px=np.array([0.0, math.inf]),
            miss_rate=np.zeros(1),
            world_std_m=np.zeros((j, 3)),
            world_size_m=world_size_m,
            world_size_log_std=0.0,
            world_rotation_std_deg=np.zeros(3),
        )

    def miss_probability(self, height_px: np.ndarray) -> np.ndarray:
        """Chance (...,) that BlazePose misses a person whose clipped joint box is ``height_px`` (...,) tall."""
        index = np.digitize(height_px, self.miss_height_edges_px[1:-1])
        return self.miss_rate[index]

    def _visibility(self, probabilities: np.ndarray, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Draws (shape) from histograms ``probabilities`` (..., V) broadcast to ``shape + (V,)``."""
        cdf = np.cumsum(probabilities, axis=-1)
        cdf = cdf / cdf[..., -1:]
        bins = np.minimum((rng.random(shape)[..., None] > cdf).sum(-1), len(self.visibility_edges) - 2)
        width = np.diff(self.visibility_edges)
        return self.visibility_edges[bins] + rng.random(shape) * width[bins]

    def simulate(
        self, joints: np.ndarray, root: np.ndarray, K: np.ndarray, image_size: np.ndarray, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """What BlazePose would report for B people, one per image.

        Args:
            joints: (B, 23, 3) true joints, camera frame (OpenCV), metres, in front of the camera.
            root: (B, 3) the hip midpoints, metres.
            K: (B, 3, 3) intrinsics, pixels.
            image_size: (B, 2) [W, H] pixels.
            rng: the only source of randomness (deterministic given its state).

        Returns:
            ``keypoints2d`` (B, 23, 3) [u px, v px, visibility in [0, 1]]: 0 where the landmark
            falls outside the image, all zero for the joints BlazePose lacks; ``bbox`` (B, 4)
            [x0, y0, x1, y1] px inside the image, containing every landmark of visibility > 0.5;
            ``world3d`` (B, 23, 3) hip-centred, crop-frame axes, BlazePose's scale (not the
            person's), zeros where absent.
        """
        b, j = joints.shape[:2]
        uv = project_points(K, joints)
        h = np.maximum(np.ptp(uv[..., 1], axis=-1), 1.0)  # (B,) joint box height, the unit of 2D errors

        # 1. Left/right swaps: the landmark (and world landmark) of one side lands on the other;
        # mostly the whole body at once (a back view read as a front view), a few pairs alone.
        order = np.tile(np.arange(j), (b, 1))
        pairs = np.array(SWAP_PAIRS).reshape(-1, 2)
        swapped = (rng.random(b) < self.swap_body_rate)[:, None] ^ (rng.random((b, len(pairs))) < self.swap_rate)
        rows, cols = np.nonzero(swapped)
        order[rows, pairs[cols, 0]], order[rows, pairs[cols, 1]] = pairs[cols, 1], pairs[cols, 0]
        source = np.take_along_axis(joints, order[..., None], axis=1)

        # 2. 2D noise: a Gaussian core, and gross errors of random direction with an exponential tail.
        error = rng.normal(size=(b, j, 2)) * self.core_std[:, None]
        gross = rng.random((b, j)) < self.gross_share
        angle = rng.uniform(0.0, 2 * math.pi, (b, j))
        magnitude = GROSS_THRESHOLD + rng.exponential(max(self.gross_excess_mean, 1e-12), (b, j))
        error = np.where(gross[..., None], magnitude[..., None] * np.stack((np.cos(angle), np.sin(angle)), -1), error)
        keypoints = np.take_along_axis(uv, order[..., None], axis=1) + error * h[:, None, None]

        # 3. Visibility: BlazePose reports 0 outside its crop (the image); a joint truly outside
        # but extrapolated inside gets the out-of-frame distribution.
        landmark_in = inside_image(keypoints, image_size)
        joint_in = inside_image(uv, image_size) & (joints[..., 2] > 0)
        in_frame = self._visibility(self.visibility_in_frame, rng, (b, j))
        out_of_frame = self._visibility(self.visibility_out_of_frame, rng, (b, j))
        visibility = np.where(landmark_in, np.where(joint_in, in_frame, out_of_frame), 0.0) * PRESENT
        keypoints2d = np.concatenate((keypoints, visibility[..., None]), -1) * PRESENT[:, None]

        # 4. The box: the clipped joint box, shifted by BlazePose's measured edge offsets, and
        # grown over the confident landmarks (the detector boxes its landmarks).
        limit = np.concatenate((image_size, image_size), -1).astype(np.float64) - 1
        box = np.clip(joint_box(uv), 0.0, limit)
        box = box + (self.box_offset_mean + self.box_offset_std * rng.normal(size=(b, 4))) * h[:, None]
        confident = (visibility > 0.5)[..., None]
        low = np.where(confident, keypoints, np.inf).min(1)
        high = np.where(confident, keypoints, -np.inf).max(1)
        box = np.clip(np.concatenate((np.minimum(box[:, :2], low), np.maximum(box[:, 2:], high)), -1), 0.0, limit)
        box[:, 2:] = np.maximum(box[:, 2:], np.minimum(box[:, :2] + 1.0, limit[:, 2:]))

        # 5. World landmarks: root-relative joints in the crop camera of the box centre, at
        # BlazePose's own (height-blind) size, turned a little, with per-joint noise.
        rotation = crop_rotation(K, (box[:, :2] + box[:, 2:]) / 2)
        world = np.einsum("bji,bkj->bki", rotation, source - root[:, None])
        size = _size(world[:, PRESENT])
        target = self.world_size_m * np.exp(self.world_size_log_std * rng.normal(size=b))
        world *= (target / np.maximum(size, 1e-9))[:, None, None]
        from scipy.spatial.transform import Rotation

        turn = Rotation.from_rotvec(np.radians(self.world_rotation_std_deg) * rng.normal(size=(b, 3))).as_matrix()
        world = np.einsum("bij,bkj->bki", turn, world) + self.world_std_m * rng.normal(size=(b, j, 3))
        return {"keypoints2d": keypoints2d, "bbox": box, "world3d": world * PRESENT[:, None]}


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


def measure_blazepose_noise(
    n_images: int = 120, seed: int = MEASURE_SEED, config=None, progress: bool = True
) -> dict:
    """Run BlazePose (``perception.PoseDetector``) on ``synth.sample_scene`` renders of seeds
    ``seed .. seed + n_images - 1`` and measure its errors against the ground truth.

    Returns the dict stored as ``blazepose_noise.json`` (keys: module docstring). Detections
    are matched to true people by IoU >= 0.5 with the whole projected mesh's box, as in
    ``bench.score``; people entirely hidden are left out.
    """
    import roma
    import torch
    from tqdm import tqdm

    from metrichmsr.bench.score import match
    from metrichmsr.body import BodyModel
    from metrichmsr.perception import PoseDetector, box_iou
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
            matches = match(np.array([p.bbox for p in people]).reshape(-1, 4), full, 0.5)
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
                bp_size.append(_size(world[PRESENT]))
                true_size.append(_size(truth[PRESENT]))
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
        f"2D unit: joint box height h; gross = error > {kp['gross_threshold']} h, tail mean excess {kp['gross_excess_mean']:.3f} h",
        f"images {m['images']} (seeds {m['seeds'][0]}-{m['seeds'][1]}), people {m['people']}, matched {m['matched']}",
        f"missed by joint-box height: {miss}",
        f"visibility mean: occluded by others {vis['occluded_mean']}, out of frame (landmark inside) {vis['out_of_frame_mean']}",
        "box offset (x0 y0 x1 y1) / h: mean " + " ".join(f"{v:+.3f}" for v in box["offset_mean"])
        + ", std " + " ".join(f"{v:.3f}" for v in box["offset_std"]) + f"; median IoU with full box {box['iou_full_box_median']:.2f}",
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
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name(NOISE_FILE))
    args = parser.parse_args(argv)
    noise = measure_blazepose_noise(args.images, args.seed)
    args.output.write_text(json.dumps(noise, indent=1) + "\n")
    print(summary_table(noise))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
