"""Anny people standing on a floor seen by a tilted camera: ground truth for the scene tests."""

from __future__ import annotations

import numpy as np
import torch

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
    body_model, positions_m, camera_height_m: float, pitch_deg: float = 0.0, roll_deg: float = 0.0,
    pose_std_rad: float = 0.1, seed: int = 0,
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
