import math

import numpy as np
import pytest

from _people_on_floor import ROOM_SIZE as SIZE
from _people_on_floor import room_image
from metrichmsr.camera import resolve_intrinsics
from metrichmsr.scene.focal import FocalEstimate, focal_from_lines, pooled, with_estimate

WIDTH, HEIGHT = SIZE


def centred_K(fov_deg: float) -> np.ndarray:
    f = WIDTH / 2 / math.tan(math.radians(fov_deg) / 2)
    return np.array([[f, 0.0, (WIDTH - 1) / 2], [0.0, f, (HEIGHT - 1) / 2], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize(
    "fov_deg, pitch_deg, roll_deg",
    [(40.0, 10.0, 4.0), (65.0, 14.0, 4.0), (65.0, 22.0, -6.0), (95.0, 14.0, 4.0), (95.0, 25.0, -6.0)],
)
def test_a_room_s_verticals_and_floor_lines_give_the_focal_length(fov_deg, pitch_deg, roll_deg):
    K = centred_K(fov_deg)
    image, _ = room_image(pitch_deg, roll_deg, K=K)
    estimate = focal_from_lines(image)
    assert estimate.focal_px is not None, estimate.why
    error = estimate.focal_px / K[0, 0] - 1
    assert abs(error) < 0.04, error
    assert abs(math.log(estimate.focal_px / K[0, 0])) <= 3 * estimate.log_std  # the truth inside its interval
    assert estimate.cue == "vertical+horizontal" and estimate.pairs >= 2


def test_two_floor_directions_alone_give_it_assuming_a_right_angle():
    K = centred_K(60.0)
    image, _ = room_image(15.0, 3.0, parts=("floor_x", "floor_z"), yaw_deg=35.0, K=K)
    estimate = focal_from_lines(image)
    assert estimate.focal_px is not None, estimate.why
    assert abs(estimate.focal_px / K[0, 0] - 1) < 0.05
    assert estimate.cue == "two horizontal (right angle assumed)"


def test_a_level_camera_s_parallel_lines_cannot_tell():
    """Verticals parallel in the image and floor lines across it: no finite pair at right angles."""
    image, _ = room_image(0.0, 0.0, parts=("wall", "floor_z"), yaw_deg=0.0, K=centred_K(60.0))
    estimate = focal_from_lines(image)
    assert estimate.focal_px is None and estimate.why


def test_no_lines_cannot_tell():
    blank = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    estimate = focal_from_lines(blank)
    assert estimate.focal_px is None and "no straight lines" in estimate.why


def test_the_estimate_repeats_for_one_seed():
    image, _ = room_image(14.0, 4.0, K=centred_K(65.0))
    assert focal_from_lines(image, seed=3) == focal_from_lines(image, seed=3)


def test_pooling_keeps_the_images_that_agree():
    estimates = [FocalEstimate(1000.0, 0.03, "a", 2), FocalEstimate(1020.0, 0.03, "a", 2), FocalEstimate(1500.0, 0.02, "a", 3)]
    estimates += [FocalEstimate(1010.0, 0.04, "a", 2), FocalEstimate(None, why="no lines")]
    found = pooled(estimates)
    assert 1000.0 < found.focal_px < 1020.0 and found.pairs == 3
    assert found.log_std < 0.03  # three images say more than one
    assert "3 of 5" in found.cue
    nothing = pooled([FocalEstimate(None, why="no lines")] * 2)
    assert nothing.focal_px is None and "2 image" in nothing.why


def test_with_estimate_keeps_the_default_only_when_the_lines_cannot_tell():
    default = resolve_intrinsics(WIDTH, HEIGHT)
    assert default.source == "default"
    kept = with_estimate(default, WIDTH, FocalEstimate(None, why="no straight lines in the image"))
    assert kept.source == "default" and kept.fx == default.fx and "no straight lines" in kept.note
    estimated = with_estimate(default, WIDTH, FocalEstimate(500.0, 0.05, "vertical+horizontal", 2))
    assert estimated.source == "estimated" and estimated.fx == estimated.fy == 500.0
    assert (estimated.cx, estimated.cy) == (default.cx, default.cy)
    low, high = estimated.fov_interval_deg
    assert low < estimated.horizontal_fov_deg(WIDTH) < high
    assert estimated.to_dict()["fov_deg_68"] == [round(low, 2), round(high, 2)]
