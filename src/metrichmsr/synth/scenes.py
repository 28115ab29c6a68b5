"""Random scenes of Anny people in a room, for training, tests and benchmarks.

Deterministic per seed. Cameras vary in field of view (20-120 deg horizontal), image shape
(landscape and portrait), principal point, height, pitch and roll. People come from Anny's
population prior (all ages), in natural pose families (synth.poses), facing any way, with
their lowest point on the floor, 1-30 m away anywhere in the frame: they may occlude each
other and be cut by the image border. A sitting person gets a box to sit on.

Seeds from HELD_OUT_SEED_START up are the held-out benchmark split: training never uses them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import roma
import torch

from metrichmsr.body import PHENOTYPE_NAMES, BodyModel, BodyParams
from metrichmsr.render import Renderer
from metrichmsr.scene.floor import FloorPlane
from metrichmsr.synth.people import SyntheticImage, box_mesh, level_axes, render_people
from metrichmsr.synth.poses import POSE_FAMILIES, sample_pose

if TYPE_CHECKING:
    from metrichmsr.synth.video import VideoConfig

#: Seeds >= this are the held-out split (benchmarks); training draws seeds below it.
HELD_OUT_SEED_START = 1_000_000


@dataclass(frozen=True)
class SceneConfig:
    """Ranges the random scenes are drawn from (uniform unless said otherwise)."""

    long_side_px: int = 640
    aspects: tuple[float, ...] = (4 / 3, 3 / 2, 16 / 9)
    portrait_share: float = 0.3
    fov_deg: tuple[float, float] = (20.0, 120.0)  # horizontal
    principal_offset: float = 0.05  # std of (c - centre) / size, clipped at 2 std
    camera_height_m: tuple[float, float] = (0.5, 4.0)
    pitch_deg: tuple[float, float] = (-10.0, 30.0)  # positive looks down
    roll_deg: tuple[float, float] = (-10.0, 10.0)
    distance_m: tuple[float, float] = (1.0, 30.0)  # level-frame distance ahead, log-uniform
    people: tuple[int, int] = (1, 4)
    pose_families: tuple[str, ...] = POSE_FAMILIES
    min_separation_m: float = 0.8  # between two people's roots, on the floor
    min_in_frame: float = 0.4  # share of a person's projected vertices that must fall inside the image


def sample_phenotypes(body: BodyModel, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 6) phenotypes (PHENOTYPE_NAMES order) from Anny's population prior, all ages, drawn from ``generator``."""
    from anny.shape_distribution import SimpleShapeDistribution

    # SimpleShapeDistribution.sample draws from torch's global generator: seed it from ours.
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        _, phenotype = SimpleShapeDistribution(body.anny).sample(n)
    finally:
        torch.random.set_rng_state(state)
    return torch.stack([phenotype[name].float() for name in PHENOTYPE_NAMES], dim=-1)


def sample_camera(rng: np.random.Generator, config: SceneConfig | VideoConfig) -> tuple[np.ndarray, tuple[int, int], FloorPlane]:
    """A random camera: K (3, 3), image size (W, H) and the floor below it, from ``config``'s
    camera ranges (a still's ``SceneConfig``, or a clip's ``synth.video.VideoConfig``)."""
    aspect = config.aspects[rng.integers(len(config.aspects))]
    width, height = config.long_side_px, int(round(config.long_side_px / aspect))
    if rng.random() < config.portrait_share:
        width, height = height, width
    f = width / 2 / math.tan(math.radians(rng.uniform(*config.fov_deg)) / 2)
    offset = np.clip(rng.normal(0.0, config.principal_offset, 2), -2 * config.principal_offset, 2 * config.principal_offset)
    K = np.array([[f, 0, (width - 1) / 2 + offset[0] * width], [0, f, (height - 1) / 2 + offset[1] * height], [0, 0, 1]])
    pitch, roll = np.radians(rng.uniform(*config.pitch_deg)), np.radians(rng.uniform(*config.roll_deg))
    up = np.array([-math.sin(roll) * math.cos(pitch), -math.cos(roll) * math.cos(pitch), -math.sin(pitch)])
    return K, (width, height), FloorPlane(up, rng.uniform(*config.camera_height_m))


def in_frame_share(vertices: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> float:
    """Share of camera-frame vertices (V, 3) in front of the camera and inside the image."""
    z = vertices[:, 2]
    uv = vertices[:, :2] / np.maximum(z, 1e-6)[:, None] * K[[0, 1], [0, 1]] + K[:2, 2]
    inside = (z > 0.2) & (uv[:, 0] >= 0) & (uv[:, 0] < size[0]) & (uv[:, 1] >= 0) & (uv[:, 1] < size[1])
    return float(inside.mean())


def _seat(vertices: np.ndarray, root: np.ndarray, floor_y: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and size of a box under a sitting body (vertices (V, 3), level frame, facing -z)."""
    behind = vertices[:, 2] > root[2] - 0.05  # buttocks and back, not the thighs in front
    seat_y = vertices[behind & (vertices[:, 1] < root[1] + 0.4), 1].max()
    size = np.array([0.5, floor_y - seat_y, 0.45])
    return np.array([root[0], (seat_y + floor_y) / 2, root[2] + 0.12]), size


def _place_people(local: np.ndarray, poses, yaw: np.ndarray, K, size, floor: FloorPlane, config: SceneConfig, rng):
    """Feet-on-floor positions for posed bodies ``local`` (N, V, 3), level frame, roots at the origin.

    Returns (indices placed, their level-frame roots, seat meshes in the camera frame). A body
    that finds no place in frame and apart from the others within 30 draws is left out.
    """
    axes = level_axes(floor.up)  # X_cam = axes @ X_level
    kept, roots, props = [], [], []
    for i in range(len(local)):
        for _ in range(30):
            distance = math.exp(rng.uniform(*np.log(config.distance_m)))
            u = (rng.uniform(-0.05, 1.05) * size[0] - K[0, 2]) / K[0, 0]  # normalised image x of the root
            root_y = floor.camera_height_m - local[i, :, 1].max()
            at_x0 = axes @ np.array([0.0, root_y, distance])
            # Solve u = (x a0 + p0) / (x a2 + p2) for the lateral position x on the floor.
            x = (at_x0[0] - u * at_x0[2]) / (u * axes[2, 0] - axes[0, 0])
            root = np.array([x, root_y, distance])
            if any(np.hypot(*(root - r)[[0, 2]]) < config.min_separation_m for r in roots):
                continue
            if in_frame_share((local[i] + root) @ axes.T, K, size) >= config.min_in_frame:
                kept.append(i)
                roots.append(root)
                break
        else:
            continue
        if poses[i][1] == "sitting":
            facing = roma.rotvec_to_rotmat(torch.tensor([0.0, -float(yaw[i]), 0.0], dtype=torch.float64)).numpy()
            # The seat is found on the body turned back to face the camera, then turned with it.
            centre, extent = _seat(local[i] @ facing.T, np.zeros(3), floor.camera_height_m - root[1])
            props.append(box_mesh(axes @ (facing.T @ centre + root), extent, axes @ facing.T))
    return kept, roots, props


@torch.inference_mode()
def sample_scene(body: BodyModel, renderer: Renderer, seed: int, config: SceneConfig = SceneConfig()) -> SyntheticImage:
    """Render one random scene; returns image and ground truth (see SyntheticImage).

    Every scene has at least one person: a draw in which nobody fits in the frame is redrawn.
    """
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    kept = []
    while not kept:
        K, size, floor = sample_camera(rng, config)
        n = int(rng.integers(config.people[0], config.people[1] + 1))
        phenotype = sample_phenotypes(body, n, generator)
        poses = [sample_pose(rng, config.pose_families[rng.integers(len(config.pose_families))]) for _ in range(n)]
        bone_rotvec = torch.as_tensor(np.stack([p for p, _ in poses]), dtype=torch.float32)
        yaw = rng.uniform(-math.pi, math.pi, n)
        yaw_rotation = roma.rotvec_to_rotmat(torch.as_tensor(np.outer(yaw, [0.0, 1.0, 0.0]), dtype=torch.float32))
        # Each body in the level frame with its root at the origin: where its lowest point is.
        local = body(phenotype, bone_rotvec, yaw_rotation, torch.zeros(n, 3)).vertices.numpy().astype(np.float64)
        kept, roots, props = _place_people(local, poses, yaw, K, size, floor, config, rng)

    axes = level_axes(floor.up)
    keep = torch.as_tensor(kept, dtype=torch.long)
    params = BodyParams(
        phenotype[keep],
        bone_rotvec[keep],
        torch.as_tensor(axes, dtype=torch.float32) @ yaw_rotation[keep],
        torch.as_tensor(np.array(roots) @ axes.T, dtype=torch.float32),
    )
    return render_people(
        body, renderer, params, K, size, floor=floor, seed=seed, props=props, pose_family=tuple(poses[i][1] for i in kept)
    )
