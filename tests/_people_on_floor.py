"""Anny people standing on a floor seen by a tilted camera: ground truth for the scene tests."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from metrichmsr.body import PHENOTYPE_NAMES, POSE_BONES
from metrichmsr.scene.floor import FloorPlane


def camera_rotation(pitch_deg: float, roll_deg: float) -> np.ndarray:
    """(3, 3) level frame (x right, y gravity, z forward horizontal) -> camera frame, for a
    camera looking pitch_deg below the horizon and rolled so that the world's up leans roll_deg
    toward the image's right (the conventions of ``camera_pitch_roll_deg``)."""
    p, r = np.radians(pitch_deg), np.radians(roll_deg)
    pitch = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return roll @ pitch


def people_on_floor(
    body_model,
    positions_m,
    camera_height_m: float,
    pitch_deg: float = 0.0,
    roll_deg: float = 0.0,
    pose_std_rad: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, FloorPlane]:
    """People with their soles on the floor at level-frame (x, z) positions_m (N, 2).

    Returns joints (N, 23, 3) and vertices (N, V, 3) in the camera frame, and the true floor.
    """
    positions_m = np.asarray(positions_m, dtype=np.float64)
    n = len(positions_m)
    generator = torch.Generator().manual_seed(seed)
    phenotype = torch.full((n, len(PHENOTYPE_NAMES)), 0.5)
    phenotype[:, 0] = torch.rand(n, generator=generator)  # gender
    yaw = torch.rand(n, generator=generator) * 2 * torch.pi - torch.pi
    rotation = torch.stack([torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]]) for c, s in zip(yaw.cos(), yaw.sin())])
    bone_rotvec = pose_std_rad * torch.randn(n, len(POSE_BONES), 3, generator=generator)
    with torch.inference_mode():
        out = body_model(phenotype, bone_rotvec, rotation, torch.zeros(n, 3))
    vertices, joints = out.vertices.numpy().astype(np.float64), out.joints.numpy().astype(np.float64)
    # Level frame: soles at y = camera height, feet at the given x, z.
    offset = np.stack((positions_m[:, 0], camera_height_m - vertices[..., 1].max(axis=1), positions_m[:, 1]), axis=-1)
    R = camera_rotation(pitch_deg, roll_deg)
    to_camera = lambda points: (points + offset[:, None]) @ R.T  # noqa: E731
    return to_camera(joints), to_camera(vertices), FloorPlane(up=R @ np.array([0.0, -1.0, 0.0]), camera_height_m=camera_height_m)


def tilted(up: np.ndarray, degrees: float, axis=(1.0, 0.0, 0.3)) -> np.ndarray:
    """``up`` turned by ``degrees`` about an axis perpendicular to it."""
    axis = np.cross(up, axis)
    axis /= np.linalg.norm(axis)
    angle = np.radians(degrees)
    return up * np.cos(angle) + np.cross(axis, up) * np.sin(angle)


ROOM_K = np.array([[700.0, 0.0, 330.0], [0.0, 700.0, 235.0], [0.0, 0.0, 1.0]])
ROOM_SIZE = (640, 480)
ROOM_CAMERA_HEIGHT_M = 1.6
#: The room's wall: this far ahead before its yaw turn, vertical edges at these x (metres).
ROOM_WALL_M = 16.0
ROOM_WALL_EDGES_X_M = np.arange(-8.0, 9.0, 2.0)


def _room_turn(yaw_deg: float) -> np.ndarray:
    """(3, 3) the room's turn about the vertical (y) axis, from its own frame to the level frame."""
    yaw = np.radians(yaw_deg)
    return np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])


def room_wall_feet_ahead_m(pitch_deg: float, roll_deg: float, yaw_deg: float = 20.0, K: np.ndarray = ROOM_K) -> np.ndarray:
    """(E,) metres ahead (along the camera's forward axis made level) of the feet of the wall
    edges of ``room_image`` whose foot is in the image."""
    feet = np.stack(
        [
            ROOM_WALL_EDGES_X_M,
            np.full_like(ROOM_WALL_EDGES_X_M, ROOM_CAMERA_HEIGHT_M),
            np.full_like(ROOM_WALL_EDGES_X_M, ROOM_WALL_M),
        ],
        1,
    )
    level = feet @ _room_turn(yaw_deg).T
    pixels = level @ camera_rotation(pitch_deg, roll_deg).T @ K.T
    u, v = pixels[:, 0] / pixels[:, 2], pixels[:, 1] / pixels[:, 2]
    seen = (u >= 0) & (u < ROOM_SIZE[0]) & (v >= 0) & (v < ROOM_SIZE[1])
    return level[seen, 2]


def room_image(
    pitch_deg: float,
    roll_deg: float,
    parts=("floor_x", "floor_z", "wall"),
    yaw_deg: float = 20.0,
    K: np.ndarray = ROOM_K,
    scale: int = 1,
):
    """A line drawing of a room seen by a camera pitched and rolled (``camera_rotation``):
    floor lines along two horizontal directions and a wall's vertical edges and foot; ``scale`` times
    :data:`ROOM_SIZE` (K must match).

    Returns the (H, W, 3) uint8 image and the true up direction (3,) in the camera frame.
    ``room_wall_feet_ahead_m`` says how far ahead the wall's edges seen in it stand."""
    level_to_camera = camera_rotation(pitch_deg, roll_deg)
    turn = _room_turn(yaw_deg)
    lines = []  # (start, end) in a floor frame: x, z horizontal, y down, floor at y = camera height
    h = ROOM_CAMERA_HEIGHT_M
    if "floor_x" in parts:
        lines += [((x, h, 1.0), (x, h, ROOM_WALL_M)) for x in np.arange(-7.0, 8.0, 1.5)]  # up to the wall
    if "floor_z" in parts:
        lines += [((-9.0, h, z), (9.0, h, z)) for z in (2.5, 3.5, 5.0, 7.0, 10.0, 14.0)]
    if "wall" in parts:
        lines += [((x, h, ROOM_WALL_M), (x, h - 4.0, ROOM_WALL_M)) for x in ROOM_WALL_EDGES_X_M]
        lines += [((-9.0, h, ROOM_WALL_M), (9.0, h, ROOM_WALL_M))]  # its foot
    image = Image.new("RGB", (ROOM_SIZE[0] * scale, ROOM_SIZE[1] * scale), (205, 200, 190))
    draw = ImageDraw.Draw(image)
    for start, end in lines:
        ends = np.array([start, end]) @ turn.T @ level_to_camera.T
        if (ends[:, 2] < 0.2).any():
            continue
        pixels = ends @ K.T
        pixels = pixels[:, :2] / pixels[:, 2:]
        draw.line([tuple(pixels[0]), tuple(pixels[1])], fill=(60, 55, 50), width=3 * scale)
    return np.asarray(image), level_to_camera @ np.array([0.0, -1.0, 0.0])
