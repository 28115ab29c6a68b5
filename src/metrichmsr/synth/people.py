"""Render Anny people at known metric positions with a known K, with their ground truth.

Detectors trained on photos need people to look like people: the meshes get skin, shirt,
trousers and shoes colours by height band, and the image a floor-and-wall backdrop whose
horizon follows the camera, so BlazePose finds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metrichmsr.body import BodyModel
from metrichmsr.fit import FitParams
from metrichmsr.render import Renderer

# sRGB colours: skin, shirt and trousers choices, shoes.
_SKIN = ((0.87, 0.69, 0.56), (0.62, 0.44, 0.32), (0.40, 0.27, 0.19), (0.95, 0.80, 0.70))
_SHIRT = ((0.75, 0.12, 0.10), (0.10, 0.30, 0.70), (0.90, 0.90, 0.88), (0.15, 0.55, 0.25), (0.95, 0.75, 0.10))
_TROUSERS = ((0.10, 0.12, 0.30), (0.25, 0.25, 0.27), (0.45, 0.35, 0.25), (0.05, 0.05, 0.05))
_SHOES = (0.08, 0.07, 0.06)


@dataclass
class SyntheticImage:
    """A rendered image and its ground truth (camera frame, metres)."""

    image: np.ndarray  # (H, W, 3) uint8
    K: np.ndarray  # (3, 3)
    params: FitParams  # (N, ...) ground-truth body parameters
    joints: np.ndarray  # (N, 23, 3)
    vertices: np.ndarray  # (N, V, 3)
    height_m: np.ndarray  # (N,)
    boxes: np.ndarray  # (N, 4) box of the projected visible mesh, px
    instance_ids: np.ndarray  # (H, W) int16, -1 background


def clothing_colors(rest_vertices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-vertex sRGB colours (V, 3) from a rest-pose body (V, 3) in Anny's z-up frame."""
    z = rest_vertices[:, 2]
    level = (z - z.min()) / max(float(np.ptp(z)), 1e-6)  # 0 at the soles, 1 at the crown
    colors = np.empty((len(z), 3))
    colors[:] = _SKIN[rng.integers(len(_SKIN))]
    shirt = (level > 0.47) & (level < 0.82)
    # Arms hang outside the torso in Anny's A-pose: keep forearms and hands bare.
    shirt &= np.abs(rest_vertices[:, 0]) < 0.28 * np.ptp(z) / 1.75
    colors[shirt] = _SHIRT[rng.integers(len(_SHIRT))]
    colors[(level <= 0.47) & (level > 0.04)] = _TROUSERS[rng.integers(len(_TROUSERS))]
    colors[level <= 0.04] = _SHOES
    return colors


def backdrop(K: np.ndarray, size: tuple[int, int], camera_height_m: float, rng: np.random.Generator) -> np.ndarray:
    """A (H, W, 3) uint8 wall above a tiled floor, horizon at the camera's optical-axis height.

    The camera is level (y down is gravity): floor pixels are those whose ray meets the plane
    y = camera_height_m in front of the camera.
    """
    width, height = size
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    ray_y = (v - K[1, 2]) / K[1, 1]
    ray_x = (u - K[0, 2]) / K[0, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(ray_y > 1e-4, camera_height_m / ray_y, np.inf)  # depth of the floor point
    floor = np.isfinite(t)
    z = np.where(floor, t, 1e3)
    x = ray_x * z
    wall = np.asarray(rng.uniform(0.55, 0.85, 3)) * np.linspace(1.0, 0.8, height)[:, None, None]
    image = np.broadcast_to(wall, (height, width, 3)).copy()
    tiles = ((np.floor(x / 0.6) + np.floor(z / 0.6)) % 2 == 0)
    base = rng.uniform(0.3, 0.6, 3)
    floor_color = np.where(tiles[..., None], base, base * 0.75)
    fade = np.exp(-z / 60.0)[..., None]  # far tiles blur to the mean
    floor_color = fade * floor_color + (1 - fade) * base * 0.875
    image[floor] = floor_color[floor]
    noise = rng.normal(0.0, 0.015, image.shape)
    return (np.clip(image + noise, 0, 1) * 255 + 0.5).astype(np.uint8)


@torch.inference_mode()
def render_people(
    body: BodyModel,
    renderer: Renderer,
    params: FitParams,
    K: np.ndarray,
    size: tuple[int, int],
    camera_height_m: float = 1.4,
    seed: int = 0,
) -> SyntheticImage:
    """Render N people (FitParams, camera frame) over a backdrop; returns image and ground truth."""
    rng = np.random.default_rng(seed)
    out = body(params.phenotype, params.bone_rotvec, params.global_rotation, params.translation)
    vertices = out.vertices.cpu().numpy()
    faces = body.faces.cpu().numpy()
    rest = out.rest_vertices.cpu().numpy()
    colors = [clothing_colors(r, rng) for r in rest]
    color, _, ids = renderer.render(K, size, [(v, faces) for v in vertices], vertex_colors=colors)
    image = backdrop(K, size, camera_height_m, rng)
    person = ids >= 0
    image[person] = color[person]
    boxes = np.zeros((len(vertices), 4))
    for i in range(len(vertices)):
        ys, xs = np.nonzero(ids == i)
        if len(xs):
            boxes[i] = (xs.min(), ys.min(), xs.max(), ys.max())
    return SyntheticImage(
        image=image,
        K=np.asarray(K, dtype=np.float64),
        params=params,
        joints=out.joints.cpu().numpy(),
        vertices=vertices,
        height_m=body.standing_height(out.rest_vertices).cpu().numpy(),
        boxes=boxes,
        instance_ids=ids,
    )
