"""Render Anny people at known metric positions with a known K, with their ground truth.

Detectors trained on photos need people to look like people: the meshes get skin, shirt,
trousers and shoes colours by height band, and the image a room: a tiled floor and a
panelled back wall, both real planes in the camera frame, so the image and its metric depth
map agree and the horizon follows the camera's pitch and roll.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metrichmsr.body import BodyModel, BodyParams
from metrichmsr.geometry import image_rays_z1
from metrichmsr.render import Renderer
from metrichmsr.scene.floor import FloorPlane

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
    params: BodyParams  # (N, ...) ground-truth body parameters; translation = root (hip midpoint)
    joints: np.ndarray  # (N, 23, 3) JOINT_NAMES order
    vertices: np.ndarray  # (N, V, 3) posed
    height_m: np.ndarray  # (N,) standing height
    boxes: np.ndarray  # (N, 4) box of the person's visible pixels, px; zeros when hidden
    boxes_full: np.ndarray  # (N, 4) box of the whole projected mesh (may leave the image), px
    instance_ids: np.ndarray  # (H, W) int16 person index seen at each pixel, -1 elsewhere
    depth_m: np.ndarray  # (H, W) float32 z of the nearest surface (people, props, floor, wall)
    floor: FloorPlane
    pose_family: tuple[str, ...] = ()  # (N,) see synth.poses


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


def level_axes(up: np.ndarray) -> np.ndarray:
    """Rotation(s) whose columns are the level frame's right, down, forward in camera axes.

    up (3,) or (N, 3): the floor's up direction(s) in the camera frame (``FloorPlane.up``)
    -> (3, 3) or (N, 3, 3). The level frame shares the camera's centre and heading but has y
    along gravity: ``X_cam = level_axes(up) @ X_level``.
    """
    up = np.asarray(up, dtype=np.float64)
    down = -up / np.linalg.norm(up, axis=-1, keepdims=True)
    forward = np.array([0.0, 0.0, 1.0]) - down[..., 2:] * down  # the optical axis made horizontal
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    return np.stack((np.cross(down, forward), down, forward), axis=-1)


def _stripe_values(index: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    """A random brightness factor per integer stripe/tile index (any shape)."""
    table = rng.uniform(1.0 - spread, 1.0 + spread, 97)
    return table[np.mod(index, 97).astype(np.int64)]


def room_backdrop(
    K: np.ndarray, size: tuple[int, int], floor: FloorPlane, wall_distance_m: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A tiled floor and a panelled wall ``wall_distance_m`` ahead (level frame), as seen by K.

    Returns ``image`` (H, W, 3) float sRGB in [0, 1] and ``depth_m`` (H, W) float32 (inf where a
    ray meets neither plane).
    """
    axes = level_axes(floor.up)
    level = image_rays_z1(K, size) @ axes  # (H, W, 3) ray in level axes
    with np.errstate(divide="ignore", invalid="ignore"):
        floor_depth = np.where(level[..., 1] > 1e-6, floor.camera_height_m / level[..., 1], np.inf)
        wall_depth = np.where(level[..., 2] > 1e-6, wall_distance_m / level[..., 2], np.inf)
    on_floor = floor_depth < wall_depth
    depth = np.minimum(floor_depth, wall_depth)
    points = level * np.where(np.isfinite(depth), depth, 0.0)[..., None]  # level-frame hit points

    # Wall: vertical panels of random width and shade, darker toward the floor.
    panel = rng.uniform(0.4, 3.0)
    wall_rgb = rng.uniform(0.45, 0.9, 3)
    shade = _stripe_values(np.floor(points[..., 0] / panel), rng, 0.12)
    shade *= 1.0 - 0.25 * np.clip(points[..., 1] / floor.camera_height_m, -1.0, 1.0)
    image = wall_rgb * shade[..., None]
    image[points[..., 1] > floor.camera_height_m - 0.12] *= 0.6  # skirting board

    # Floor: tiles or planks whose pattern fades to its mean where a tile spans < ~4 px.
    tile = rng.uniform(0.3, 1.0)
    floor_rgb = rng.uniform(0.25, 0.65, 3)
    ix, iz = np.floor(points[..., 0] / tile), np.floor(points[..., 2] / tile)
    if rng.random() < 0.5:
        pattern = np.where((ix + iz) % 2 == 0, 1.0, 0.75)
    else:  # planks along the view direction, staggered
        pattern = _stripe_values(ix * 31 + np.floor(points[..., 2] / (4 * tile) + 0.5 * (ix % 2)), rng, 0.15)
    with np.errstate(divide="ignore"):
        tile_px = K[0, 0] * tile / depth
    fade = np.clip((tile_px - 1.0) / 4.0, 0.0, 1.0)
    floor_image = floor_rgb * (fade * pattern + (1 - fade) * 0.875)[..., None]
    image[on_floor] = floor_image[on_floor]
    return image, depth.astype(np.float32)


def box_mesh(center: np.ndarray, size: np.ndarray, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned box (sizes (3,) m) turned by ``rotation`` (3, 3) about its centre (3,): (vertices, faces)."""
    import trimesh

    box = trimesh.creation.box(extents=size)
    return box.vertices @ rotation.T + center, box.faces


@torch.inference_mode()
def render_people(
    body: BodyModel,
    renderer: Renderer,
    params: BodyParams,
    K: np.ndarray,
    size: tuple[int, int],
    floor: FloorPlane | None = None,
    seed: int = 0,
    props: list[tuple[np.ndarray, np.ndarray]] = (),
    wall_distance_m: float | None = None,
    pose_family: tuple[str, ...] = (),
) -> SyntheticImage:
    """Render N people (BodyParams, camera frame) and props in a room; returns image and ground truth.

    Args:
        floor: the floor the people stand on; default a level camera 1.4 m above it.
        props: extra (vertices (V, 3), faces (F, 3)) meshes, camera frame (e.g. seats).
        wall_distance_m: level-frame distance of the back wall; default 3-15 m behind the
            farthest person.
    """
    rng = np.random.default_rng(seed)
    floor = floor or FloorPlane.level(1.4)
    out = body(params.phenotype, params.bone_rotvec, params.global_rotation, params.translation)
    vertices = out.vertices.cpu().numpy()
    faces = body.faces.cpu().numpy()
    colors = [clothing_colors(r, rng) for r in out.rest_vertices.cpu().numpy()]
    prop_colors = [np.broadcast_to(rng.uniform(0.3, 0.7, 3) * (0.7, 0.55, 0.4), (len(p[0]), 3)) for p in props]
    meshes = [(v, faces) for v in vertices] + list(props)
    color, person_depth, ids = renderer.render(K, size, meshes, vertex_colors=colors + prop_colors)

    if wall_distance_m is None:
        farthest = float((vertices.reshape(-1, 3) @ level_axes(floor.up))[:, 2].max()) if len(vertices) else 5.0
        wall_distance_m = farthest + rng.uniform(3.0, 15.0)
    image, depth = room_backdrop(K, size, floor, wall_distance_m, rng)
    drawn = (person_depth > 0) & (person_depth < depth)
    image[drawn] = color[drawn] / 255.0
    depth[drawn] = person_depth[drawn]
    light = rng.uniform(0.75, 1.15) * rng.uniform(0.9, 1.1, 3)  # exposure and colour of the light
    image = image * light + rng.normal(0.0, 0.015, image.shape)
    instance_ids = np.where(drawn & (ids < len(vertices)), ids, -1).astype(np.int16)

    boxes, boxes_full = np.zeros((len(vertices), 4)), np.zeros((len(vertices), 4))
    for i, v in enumerate(vertices):
        ys, xs = np.nonzero(instance_ids == i)
        if len(xs):
            boxes[i] = (xs.min(), ys.min(), xs.max(), ys.max())
        uv = v[:, :2] / v[:, 2:] * K[[0, 1], [0, 1]] + K[:2, 2]
        boxes_full[i] = (*uv.min(0), *uv.max(0))
    return SyntheticImage(
        image=(np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8),
        K=np.asarray(K, dtype=np.float64),
        params=params,
        joints=out.joints.cpu().numpy(),
        vertices=vertices,
        height_m=body.standing_height(out.rest_vertices).cpu().numpy(),
        boxes=boxes,
        boxes_full=boxes_full,
        instance_ids=instance_ids,
        depth_m=depth,
        floor=floor,
        pose_family=tuple(pose_family),
    )
