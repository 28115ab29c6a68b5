"""BlazePose's errors, measured on synthetic renders against their ground truth, and simulated.

Training HumanMoE on rendered images would cost ~0.5 s of rendering and ~0.5 s of BlazePose
per image; instead the network trains on Anny joints turned into what BlazePose *would* have
reported. ``bench.blazepose_noise`` measures how BlazePose errs (run once,
``python -m metrichmsr.bench.blazepose_noise --images 120``) and stores the result as the
package file ``train/blazepose_noise.json``, which :class:`NoiseModel` reads and applies.

Every 2D quantity is in units of the person's **joint box height** ``h``: the height of the box
around the 23 true joints projected by the true K (not clipped to the image). It is computable
for any simulated person, so measurement and simulation use the same yardstick.

Keys of ``blazepose_noise.json`` (joint arrays have 23 entries, ``joint_names`` order; the two
small-toe points BlazePose lacks hold ``null`` / zeros):

- ``keypoints2d.core_std``: (23,) robust std (1.4826 MAD) per image axis of landmark - projected
  true joint, over in-frame joints, gross errors and swaps left out, units of ``h``
- ``keypoints2d.gross_share``: (23,) share of in-frame landmarks further than
  ``gross_threshold`` (0.1 ``h``) from the true joint
- ``keypoints2d.gross_excess_mean``: mean of ``(error - gross_threshold)`` over gross errors
  (exponential tail), ``h``
- ``keypoints2d.count``: (23,) in-frame landmarks measured
- ``visibility.edges``: (V + 1,) bin edges in [0, 1]
- ``visibility.in_frame``: (23, V) histogram (sums to 1) of visibility where the true joint and
  the landmark are in the image and no other person or prop hides the joint
- ``visibility.occluded``: (V,) the same, pooled over joints hidden by another person or a prop
  (reported, not simulated)
- ``visibility.out_of_frame``: (V,) pooled, true joint outside the image but the landmark inside
  (landmarks outside get 0)
- ``swap.body_rate``: share of people whose whole body is read mirrored (most of their
  left/right pairs swapped: back views)
- ``swap.pairs``, ``swap.rate``: (S, 2) left/right joint index pairs, (S,) share of them swapped
  on their own, against the body's reading (pairs whose true points are < 0.05 ``h`` apart are
  not counted)
- ``detection.height_edges_px``, ``miss_rate``, ``count``: missed people by the height of their
  joint box clipped to the image (px)
- ``box.offset_mean``, ``box.offset_std``: (4,) detected box ``[x0, y0, x1, y1]`` minus the
  clipped joint box, units of ``h`` (mean, std)
- ``box.iou_full_box_median``: median IoU of the detected box with the true box of the whole
  mesh (clipped)
- ``world3d.std_m``: (23, 3) per joint and crop-frame axis, std (1.4826 MAD, corrected for the 7
  fitted degrees of freedom) of BlazePose's world landmark minus the true root-relative joint in
  the crop frame after the best similarity transform, metres of BlazePose's scale
- ``world3d.size_m``, ``size_log_std``: BlazePose's body size (RMS distance of the 21 landmarks
  from their centroid): mean (m) and std of its log
- ``world3d.scale_vs_true_mean``, ``scale_vs_true_std``: BlazePose size / true body size
- ``world3d.size_height_correlation``: Pearson correlation of BlazePose's size with the true
  standing height (near 0: it does not track height)
- ``world3d.true_size_height_correlation``: the same for the true size (for reference: near 1)
- ``world3d.rotation_std_deg``: (3,) robust std of the similarity's rotation vector per crop
  axis, degrees
- ``measured``: seeds, image and people counts, detector settings

The crop frame is the virtual camera looking along the ray of the detected box centre (the
minimal rotation taking the optical axis onto that ray), in which BlazePose's world landmarks
live: ``X_cam = crop_rotation(K, centre) @ X_crop`` (as ``fit.evidence_from_blazepose``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from metrichmsr import camera
from metrichmsr.geometry import project_points
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.perception.landmarks import BLAZEPOSE_FOR_JOINT

NOISE_FILE = "blazepose_noise.json"
SCHEMA = "metrichmsr.blazepose_noise/1"

#: (23,) whether BlazePose has a landmark for each of JOINT_NAMES.
PRESENT = np.array([BLAZEPOSE_FOR_JOINT[name] is not None for name in JOINT_NAMES])
#: Left/right joint pairs (indices into JOINT_NAMES) that BlazePose can confuse.
SWAP_PAIRS = tuple(
    (i, JOINT_NAMES.index("right_" + name[5:]))
    for i, name in enumerate(JOINT_NAMES)
    if name.startswith("left_") and PRESENT[i] and PRESENT[JOINT_NAMES.index("right_" + name[5:])]
)
GROSS_THRESHOLD = 0.1  # joint box heights


def crop_rotation(K: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """``camera.crop_rotation`` in numpy: K (N, 3, 3), pixels ``centre`` (N, 2) -> (N, 3, 3)."""
    return camera.crop_rotation(torch.as_tensor(K, dtype=torch.float64), torch.as_tensor(centre, dtype=torch.float64)).numpy()


def joint_box(uv: np.ndarray) -> np.ndarray:
    """Box ``[x0, y0, x1, y1]`` (..., 4) around points (..., J, 2)."""
    return np.concatenate((uv.min(axis=-2), uv.max(axis=-2)), axis=-1)


def inside_image(uv: np.ndarray, size: np.ndarray) -> np.ndarray:
    """(..., J) whether pixels (..., J, 2) lie in images of ``size`` (..., 2) [W, H] (pixel-centre extent)."""
    limit = np.asarray(size, dtype=np.float64)[..., None, :] - 1
    return np.all((uv >= 0) & (uv <= limit), axis=-1)


def body_size(points: np.ndarray) -> np.ndarray:
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
        """From the dict ``bench.blazepose_noise.measure_blazepose_noise`` returns (the json's content)."""
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
        size = body_size(world[:, PRESENT])
        target = self.world_size_m * np.exp(self.world_size_log_std * rng.normal(size=b))
        world *= (target / np.maximum(size, 1e-9))[:, None, None]
        from scipy.spatial.transform import Rotation

        turn = Rotation.from_rotvec(np.radians(self.world_rotation_std_deg) * rng.normal(size=(b, 3))).as_matrix()
        world = np.einsum("bij,bkj->bki", turn, world) + self.world_std_m * rng.normal(size=(b, j, 3))
        return {"keypoints2d": keypoints2d, "bbox": box, "world3d": world * PRESENT[:, None]}
