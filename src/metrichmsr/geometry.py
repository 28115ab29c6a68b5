"""Numpy camera geometry: unit vectors, rays through pixels, pinhole projection.

Plain functions on arrays, OpenCV camera frame (x right, y down, z forward), pixel centres at
integer coordinates. Two kinds of ray, named apart:

- ``rays_z1``: ``K^-1 [u, v, 1]``, scaled so z = 1; a point at depth z (metres) on the ray is
  ``z * ray`` (depth maps, floor intersections).
- unit rays, ``normalize(K^-1 [u, v, 1])``: the ray map of the method, in torch
  (``camera.unit_rays``).
"""

from __future__ import annotations

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` (..., 3) scaled to unit length along its last axis (NaN for zero vectors)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def rays_z1(K: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rays ``K^-1 [u, v, 1]`` (..., 3), z = 1, through pixels at (...) coordinates u, v (pixel centres)."""
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    return np.stack(((u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)), axis=-1)


def image_rays_z1(K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float64 rays (z = 1) through the pixel centres of a (W, H) image."""
    v, u = np.mgrid[0 : size[1], 0 : size[0]]
    return rays_z1(K, u, v)


def project_points(K: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pinhole projection: K (..., 3, 3), camera-frame points (..., J, 3) metres -> (..., J, 2) px."""
    xy = points[..., :2] / points[..., 2:3]
    return xy * K[..., None, [0, 1], [0, 1]] + K[..., None, :2, 2]
