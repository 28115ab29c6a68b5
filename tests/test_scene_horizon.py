import numpy as np
import pytest

from _people_on_floor import ROOM_CAMERA_HEIGHT_M, ROOM_WALL_M, camera_rotation, room_image, tilted
from _people_on_floor import ROOM_K as K
from _people_on_floor import ROOM_SIZE as SIZE
from metrichmsr.scene.floor import FloorPlane
from metrichmsr.scene.horizon import (
    ImageLines,
    Segments,
    detect_segments,
    floor_seen_m,
    up_from_lines,
    up_from_vanishing_points,
    wall_distance_m,
)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


@pytest.mark.parametrize("parts", [("floor_x", "floor_z", "wall"), ("wall",), ("floor_x", "floor_z")])
@pytest.mark.parametrize("pitch_deg, roll_deg", [(12.0, 4.0), (-3.0, -7.0)])
def test_lines_give_the_up_direction_from_a_prior_degrees_off(parts, pitch_deg, roll_deg):
    """The vertical vanishing point alone, two horizontal ones alone, or all of them fix the up."""
    image, true_up = room_image(pitch_deg, roll_deg, parts)
    prior = tilted(true_up, 6.0)
    lines = up_from_lines(image, K, prior)
    assert lines is not None and lines.determined
    assert angle_deg(lines.up, true_up) < 0.3
    assert (len(lines.vertical) > 0) == ("wall" in parts)


@pytest.mark.parametrize("parts", [("floor_x", "floor_z", "wall"), ("floor_z",)])
def test_one_image_s_lines_answer_a_later_prior_as_a_fresh_search_would(parts):
    """A fixed camera's lines are searched once and asked for each frame's people's up."""
    image, true_up = room_image(12.0, 4.0, parts, yaw_deg=0.0)
    lines = ImageLines(image, K)
    first, later = tilted(true_up, 6.0), tilted(true_up, 3.0)
    lines.up_near(first)
    again, fresh = lines.up_near(later), ImageLines(image, K).up_near(later)
    assert angle_deg(again.up, fresh.up) < 0.01
    assert again.determined == fresh.determined == ("wall" in parts)


@pytest.mark.parametrize("off_deg", [20.0, 26.0])
def test_a_body_leaning_20_degrees_still_finds_the_walls_vertical(off_deg):
    """One sitting or leaning body can give an up 15-20+ degrees off: the search reaches the true vertical."""
    image, true_up = room_image(20.0, 3.0, ("floor_x", "floor_z", "wall"))
    lines = up_from_lines(image, K, tilted(true_up, off_deg))
    assert lines is not None and angle_deg(lines.up, true_up) < 0.3


def test_one_horizontal_family_fixes_one_tilt_and_keeps_the_prior_s_other():
    image, true_up = room_image(15.0, 3.0, parts=("floor_z",), yaw_deg=0.0)
    prior = tilted(true_up, 5.0)  # wrong in roll and pitch both
    lines = up_from_lines(image, K, prior)
    assert lines is not None and not lines.determined and len(lines.vertical) == 0
    # The lines run along the camera's x axis: the up must be perpendicular to it again...
    direction = camera_rotation(15.0, 3.0) @ np.array([1.0, 0.0, 0.0])
    assert abs(lines.up @ direction) < np.sin(np.radians(0.3)) < abs(prior @ direction)
    # ...and the tilt they cannot see stays the prior's.
    assert angle_deg(lines.up, prior) < angle_deg(prior, true_up)


def test_a_pair_tilting_the_floor_far_from_the_walls_verticals_proposes_nothing():
    """A ground slopes against the walls by a few degrees: the floor's two families, 3 degrees off
    the walls' verticals, set the up; a heavier pair with one family that is not horizontal (a
    roof line 12 degrees out of it, lighter than the walls' verticals) tilts the floor 12
    degrees and is passed over."""
    rng = np.random.default_rng(2)
    up = tilted(np.array([0.0, -1.0, 0.0]), 10.0)
    along, across = np.linalg.svd(up[None])[2][1:]  # two horizontal directions, square to each other
    walls = tilted(up, 3.0)
    roof = np.cos(np.radians(12.0)) * across + np.sin(np.radians(12.0)) * up
    families = [(walls, 6, 100.0), (along, 6, 120.0), (across, 4, 60.0), (roof, 5, 100.0)]
    normals, lengths, masks = [], [], []
    for direction, count, length in families:
        normal = np.cross(direction, rng.normal(size=(count, 3)))
        normals.append(normal / np.linalg.norm(normal, axis=1, keepdims=True))
        lengths.append(np.full(count, length))
    total = sum(count for _, count, _ in families)
    start = np.cumsum([0] + [count for _, count, _ in families])
    masks = [np.isin(np.arange(total), np.arange(a, b)) for a, b in zip(start[:-1], start[1:])]
    segments = Segments(np.zeros((total, 2)), np.zeros((total, 2)), np.concatenate(lengths), np.concatenate(normals))
    lines = up_from_vanishing_points(segments, masks, tilted(up, 5.0))
    assert lines is not None and angle_deg(lines.up, up) < 0.5
    assert len(lines.horizontal) == 10  # the floor's two families, not the roof line


def test_no_lines_give_none():
    rng = np.random.default_rng(0)
    blank = np.full((*SIZE[::-1], 3), 128, np.uint8)
    noise = rng.integers(0, 255, (*SIZE[::-1], 3), dtype=np.uint8)
    up = np.array([0.0, -1.0, 0.0])
    assert up_from_lines(blank, K, up) is None
    assert up_from_lines(noise, K, up) is None


def test_lines_inside_the_people_s_boxes_are_left_out():
    image, _ = room_image(10.0, 0.0)
    everything = detect_segments(image, K)
    left_half = np.array([[0.0, 0.0, SIZE[0] / 2, SIZE[1]]])
    outside = detect_segments(image, K, exclude_boxes=left_half)
    assert 0 < len(outside) < len(everything)
    assert (outside.midpoint[:, 0] > SIZE[0] / 2).all()
    # Normals are of the planes through the camera and each segment: both ends' rays lie in them.
    ends = outside.ends
    rays = np.concatenate([ends, np.ones((*ends.shape[:2], 1))], axis=2) @ np.linalg.inv(K).T
    np.testing.assert_allclose(np.einsum("sk,sek->se", outside.normal, rays), 0.0, atol=1e-9)


def test_a_big_image_is_searched_shrunk_and_answers_in_its_own_pixels():
    K_big = K * np.array([[3.0], [3.0], [1.0]])
    big, true_up = room_image(8.0, -5.0, K=K_big, scale=3)
    lines = up_from_lines(big, K_big, tilted(true_up, 6.0))
    assert angle_deg(lines.up, true_up) < 0.3


@pytest.mark.parametrize("pitch_deg, roll_deg", [(12.0, 4.0), (-3.0, -7.0)])
def test_the_wall_stands_where_the_vertical_lines_meet_the_floor(pitch_deg, roll_deg):
    """The room's wall faces the camera; the floor's planks run to it from 1 m ahead, some nearly vertical in the image."""
    image, true_up = room_image(pitch_deg, roll_deg, yaw_deg=0.0)
    lines = up_from_lines(image, K, tilted(true_up, 6.0))
    floor = FloorPlane(lines.up, ROOM_CAMERA_HEIGHT_M)
    # 16 m ahead of a camera 1.6 m up, a metre is 4 image pixels: the drawing's 3 px wide
    # lines (an edge on each side) leave the feet a few pixels, i.e. a few percent, off.
    assert wall_distance_m(lines, floor, K, beyond_m=6.0) == pytest.approx(ROOM_WALL_M, rel=0.08)
    # Nothing stands behind someone further away than the wall.
    assert wall_distance_m(lines, floor, K, beyond_m=17.0) is None
    # Without a wall, nothing stands anywhere.
    floor_only, _ = room_image(pitch_deg, roll_deg, parts=("floor_x", "floor_z"), yaw_deg=0.0)
    assert wall_distance_m(up_from_lines(floor_only, K, tilted(true_up, 6.0)), floor, K, beyond_m=6.0) is None


@pytest.mark.parametrize("pitch_deg, roll_deg", [(12.0, 4.0), (-3.0, -7.0)])
def test_the_floor_is_seen_as_far_as_its_own_lines_run(pitch_deg, roll_deg):
    """A floor with no wall: its planks run from 1 m to 16 m ahead, its cross lines stand at
    2.5-14 m. The floor is seen most of that way; nothing is seen behind someone past the end."""
    floor_only, true_up = room_image(pitch_deg, roll_deg, parts=("floor_x", "floor_z"), yaw_deg=0.0)
    lines = up_from_lines(floor_only, K, tilted(true_up, 6.0))
    floor = FloorPlane(lines.up, ROOM_CAMERA_HEIGHT_M)
    assert len(lines.horizontal) > 0 and len(lines.vertical) == 0
    assert 10.0 < floor_seen_m(lines, floor, K, beyond_m=6.0) < 1.05 * ROOM_WALL_M
    assert floor_seen_m(lines, floor, K, beyond_m=17.0) is None
    # Seen at twice the camera height, everything is twice as far.
    taller = FloorPlane(lines.up, 2 * ROOM_CAMERA_HEIGHT_M)
    assert floor_seen_m(lines, taller, K, beyond_m=6.0) == pytest.approx(2 * floor_seen_m(lines, floor, K, beyond_m=3.0))
