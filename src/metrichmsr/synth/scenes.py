"""Random scenes of Anny people standing on a floor, for tests and benchmarks.

Deterministic per seed. People come from Anny's population prior (all ages), stand with
their feet on a floor below a level camera, turned and lightly posed at random, spread across
the field of view at distances in a given range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import roma
import torch

from metrichmsr.body import PHENOTYPE_NAMES, POSE_BONES, BodyModel
from metrichmsr.fit import FitParams
from metrichmsr.render import Renderer
from metrichmsr.synth.people import SyntheticImage, render_people


@dataclass(frozen=True)
class SceneConfig:
    """Ranges the random scenes are drawn from."""

    size: tuple[int, int] = (1024, 768)  # (W, H) landscape; portrait is drawn half the time
    portrait_share: float = 0.25
    fov_deg: tuple[float, float] = (35.0, 100.0)  # horizontal
    distance_m: tuple[float, float] = (2.0, 15.0)
    people: tuple[int, int] = (1, 3)
    camera_height_m: tuple[float, float] = (1.0, 2.0)
    pose_std_rad: float = 0.15


def _sample_phenotypes(body: BodyModel, n: int, generator: torch.Generator) -> torch.Tensor:
    from anny.shape_distribution import SimpleShapeDistribution

    # SimpleShapeDistribution.sample draws from torch's global generator: seed it from ours.
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        _, phenotype = SimpleShapeDistribution(body.anny).sample(n)
    finally:
        torch.random.set_rng_state(state)
    return torch.stack([phenotype[name].float() for name in PHENOTYPE_NAMES], dim=-1)


@torch.inference_mode()
def sample_scene(body: BodyModel, renderer: Renderer, seed: int, config: SceneConfig = SceneConfig()) -> SyntheticImage:
    """Render one random scene; returns image and ground truth (see SyntheticImage)."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    width, height = config.size[::-1] if rng.random() < config.portrait_share else config.size
    fov = math.radians(rng.uniform(*config.fov_deg))
    f = width / 2 / math.tan(fov / 2)
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])
    camera_height = rng.uniform(*config.camera_height_m)
    n = int(rng.integers(config.people[0], config.people[1] + 1))

    phenotype = _sample_phenotypes(body, n, generator)
    bone_rotvec = config.pose_std_rad * torch.randn(n, len(POSE_BONES), 3, generator=generator)
    yaw = torch.as_tensor(rng.uniform(-math.pi, math.pi, n), dtype=torch.float32)
    rotation = roma.rotvec_to_rotmat(torch.stack((torch.zeros(n), yaw, torch.zeros(n)), dim=-1))
    depth = np.sort(rng.uniform(*config.distance_m, n))[::-1]
    # Each person gets their own horizontal slot of the image, so nobody hides anybody.
    slots = rng.permutation(n)
    u = (slots + rng.uniform(0.25, 0.75, n)) / n * width * 0.9 + width * 0.05
    x = (u - K[0, 2]) / f * depth
    standing = body(phenotype, bone_rotvec, rotation, torch.zeros(n, 3))
    # Feet on the floor: the lowest point of each body at y = camera height.
    root_y = camera_height - standing.vertices[..., 1].max(dim=1).values.numpy()
    translation = torch.as_tensor(np.stack((x, root_y, depth), axis=-1), dtype=torch.float32)
    params = FitParams(phenotype, bone_rotvec, rotation, translation)
    return render_people(body, renderer, params, K, (width, height), camera_height_m=camera_height, seed=seed)
