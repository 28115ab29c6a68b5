"""bench.pets_twins: the twins' camera and the real people's true distances."""

import math

import numpy as np
import pytest

from metrichmsr.bench.pets_twins import ankle_depths, twin_config
from metrichmsr.synth.scenes import sample_camera

K = np.array([[1000.0, 0.0, 320.0], [0.0, 1000.0, 240.0], [0.0, 0.0, 1.0]])


def camera_json(pitch_deg: float, roll_deg: float, height_m: float) -> dict:
    pitch, roll = math.radians(pitch_deg), math.radians(roll_deg)
    up = [-math.sin(roll) * math.cos(pitch), -math.cos(roll) * math.cos(pitch), -math.sin(pitch)]
    return {"K": K.tolist(), "fx": 1000.0, "width": 640, "height": 480, "up": up, "camera_height_m": height_m}


def test_twin_config_gives_the_twins_that_camera():
    camera = camera_json(16.5, 3.0, 7.0)
    depths = np.linspace(10.0, 30.0, 21)
    config = twin_config(camera, depths)
    twin_K, size, floor = sample_camera(np.random.default_rng(0), config)
    assert size == (640, 480)
    assert twin_K[0, 0] == pytest.approx(1000.0) and twin_K[1, 1] == pytest.approx(1000.0)
    assert np.allclose(floor.up, camera["up"]) and floor.camera_height_m == pytest.approx(7.0)
    assert config.distance_m == pytest.approx((11.0, 29.0))  # the 5th and 95th percentiles


def test_ankle_depths_find_the_point_on_the_raised_floor():
    camera = camera_json(10.0, 0.0, 5.0)
    up = np.asarray(camera["up"])
    # A point 0.08 m above the floor, 12 m ahead: up . X + h = 0.08.
    ahead = np.array([0.5, 0.0, 12.0])
    point = ahead + (0.08 - 5.0 - up @ ahead) / (up @ up) * up
    uv = K @ point / point[2]
    keypoints = np.zeros((2, 23, 3))
    keypoints[:, 15:17] = [uv[0], uv[1], 1.0]
    keypoints[1, 16, 2] = 0.0  # an ankle not seen: no depth
    depth = ankle_depths(keypoints, K, up, 5.0, 0.08)
    assert depth[0] == pytest.approx(point[2]) and np.isnan(depth[1])
