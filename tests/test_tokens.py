"""HumanMoE's inputs (``models.tokens``): from BlazePose's arrays, silhouettes on their window."""

import numpy as np
import pytest
import torch

from metrichmsr.joints import JOINT_NAMES
from metrichmsr.models.tokens import inputs_from_blazepose, silhouette_from_segmentation, silhouette_window
from metrichmsr.perception.landmarks import BLAZEPOSE_FOR_JOINT


def test_inputs_from_blazepose_uses_the_fit_mapping():
    n = 2
    rng = np.random.default_rng(0)
    landmarks = rng.uniform(0, 500, (n, 33, 3))
    world = rng.normal(size=(n, 33, 3))
    bbox = np.array([[10.0, 20.0, 200.0, 400.0], [300.0, 10.0, 400.0, 300.0]])
    K = np.array([[800.0, 0.0, 320.0], [0.0, 800.0, 240.0], [0.0, 0.0, 1.0]])
    inputs = inputs_from_blazepose(landmarks, world, bbox, K)
    assert inputs.K.shape == (n, 3, 3) and inputs.keypoints2d.dtype == torch.float32
    for j, name in enumerate(JOINT_NAMES):
        i = BLAZEPOSE_FOR_JOINT[name]
        expected_2d = landmarks[:, i] if i is not None else np.zeros((n, 3))
        expected_3d = world[:, i] if i is not None else np.zeros((n, 3))
        np.testing.assert_allclose(inputs.keypoints2d[:, j].numpy(), expected_2d, rtol=1e-6)
        np.testing.assert_allclose(inputs.world3d[:, j].numpy(), expected_3d, rtol=1e-6)
    with pytest.raises(ValueError, match="K must"):
        inputs_from_blazepose(landmarks, world, bbox, np.eye(4))


def test_silhouette_from_segmentation_resamples_onto_the_window():
    bbox = np.array([300.0, 100.0, 400.0, 300.0])
    window = silhouette_window(torch.as_tensor(bbox)[None])[0].numpy()
    assert np.allclose(window, [210.0, 60.0, 490.0, 340.0])  # 1.4 x the longer side, centred
    segmentation = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    # Over the window itself, each cell of a 32-grid is the mean of 2 x 2 segmentation pixels.
    pooled = segmentation.reshape(32, 2, 32, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(silhouette_from_segmentation(segmentation, window, bbox, 32).numpy(), pooled, atol=1e-5)
    # Box and segmentation moved together: the same silhouette; none outside the segmentation.
    shift = np.array([37.0, -12.0, 37.0, -12.0])
    np.testing.assert_allclose(
        silhouette_from_segmentation(segmentation, window + shift, bbox + shift, 32).numpy(), pooled, atol=1e-5
    )
    half = window.copy()
    half[0] = (window[0] + window[2]) / 2  # the segmentation covers only the window's right half
    right = silhouette_from_segmentation(np.ones((64, 32), np.float32), half, bbox, 32).numpy()
    assert np.all(right[:, 17:] == 1.0) and np.all(right[:, :15] == 0.0)
    assert not silhouette_from_segmentation(None, None, bbox, 32).any()
