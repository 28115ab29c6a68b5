"""Numpy camera geometry (``metrichmsr.geometry``): z = 1 rays and projection round-trip."""

import numpy as np
import torch

from metrichmsr.camera import project, unit_rays
from metrichmsr.geometry import image_rays_z1, project_points, rays_z1, unit

K = np.array([[800.0, 0.0, 319.5], [0.0, 780.0, 239.5], [0.0, 0.0, 1.0]])


def test_rays_z1_then_project_returns_the_pixel():
    rng = np.random.default_rng(0)
    u, v = rng.uniform(0, 640, 50), rng.uniform(0, 480, 50)
    depth = rng.uniform(0.5, 30.0, 50)
    points = rays_z1(K, u, v) * depth[:, None]
    np.testing.assert_allclose(points[:, 2], depth)
    np.testing.assert_allclose(project_points(K, points), np.stack((u, v), -1), atol=1e-9)


def test_project_points_batches_cameras_and_matches_the_torch_projection():
    rng = np.random.default_rng(1)
    Ks = np.stack([K, K * [[1.5], [1.5], [1.0]]])
    points = rng.uniform([-2, -2, 1], [2, 2, 20], (2, 7, 3))
    expected = project(torch.as_tensor(Ks), torch.as_tensor(points)).numpy()
    np.testing.assert_allclose(project_points(Ks, points), expected, rtol=1e-12)


def test_image_rays_are_the_pixel_centres_and_unit_rays_their_direction():
    rays = image_rays_z1(K, (640, 480))
    assert rays.shape == (480, 640, 3)
    np.testing.assert_allclose(rays[239, 319], [-0.5 / 800, -0.5 / 780, 1.0])
    uv = torch.tensor([[[10.0, 400.0]]], dtype=torch.float64)
    np.testing.assert_allclose(unit(rays[400, 10]), unit_rays(torch.as_tensor(K), uv)[0, 0].numpy(), rtol=1e-12)
