"""Where recovered people stand (``scene.placement``): the floor under them, and parts of
people read as far-away people. Arrays in, no models."""

import numpy as np
import pytest

from _people_on_floor import ROOM_CAMERA_HEIGHT_M, ROOM_K, camera_rotation, people_on_floor, room_image, room_wall_feet_ahead_m
from metrichmsr.perception import BLAZEPOSE_LANDMARK_NAMES, feet_seen
from metrichmsr.scene.placement import floating_phantoms, parts_read_as_far, people_floor


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def test_parts_read_as_far_away_people_are_found():
    boxes = np.array(
        [
            [100, 100, 200, 400],  # a near adult
            [120, 110, 150, 170],  # their head, read as a small person 4x as far
            [130, 250, 180, 390],  # a child in front of them: nearer, kept
            [110, 120, 160, 200],  # better seen than the adult: kept
            [150, 150, 260, 250],  # half outside the adult's box: kept
            [400, 100, 430, 160],  # small and far, but inside no one: kept
        ],
        dtype=float,
    )
    scores = np.array([0.9, 0.5, 0.6, 0.95, 0.4, 0.3])
    distances = np.array([3.0, 12.0, 2.8, 9.0, 12.0, 20.0])
    translations = np.stack([np.zeros(6), np.zeros(6), distances], -1)
    assert parts_read_as_far(boxes, scores, translations).tolist() == [False, True, False, False, False, False]
    # Just under 1.5 times as far: someone standing behind, kept.
    behind = parts_read_as_far(boxes[:2], scores[:2], translations[:2] * [[1.0], [4.4 / 12.0]])
    assert not behind.any()
    assert parts_read_as_far(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 3))).shape == (0,)


def test_boxes_over_people_or_things_read_as_one_floating_body_are_found():
    from metrichmsr.scene.floor import FloorPlane

    floor = FloorPlane(up=camera_rotation(20.0, 0.0) @ np.array([0.0, -1.0, 0.0]), camera_height_m=7.0)
    ahead = np.cross(np.array([1.0, 0.0, 0.0]), floor.up)
    below = lambda ratio: 20.0 * ahead - ratio * 7.0 * np.asarray(floor.up)  # noqa: E731
    boxes = np.array(
        [
            [300, 190, 450, 260],  # one skeleton over the two walkers below, read near: floats
            [310, 195, 340, 258],  # a walker, on the floor
            [400, 192, 430, 259],  # the other walker, on the floor
            [600, 100, 620, 150],  # a child read at half the distance: floats, holds no one
            [100, 100, 200, 400],  # someone on a balcony: floats, holds no one, a narrow box
            [700, 100, 800, 400],  # floats at a third of the camera's height, holding the next one,
            [710, 150, 760, 300],  # but 0.6 m tall: brought onto the floor, not dropped
            [900, 100, 950, 300],  # and two more walkers on the floor
            [1000, 100, 1050, 300],
        ],
        dtype=float,
    )
    contacts = np.stack([below(r) for r in (0.3, 1.0, 1.0, 0.5, 0.5, 0.3, 1.0, 1.0, 1.0)])
    heights = np.array([1.6, 1.7, 1.7, 0.9, 1.7, 0.6, 1.7, 1.7, 1.7])
    assert floating_phantoms(boxes, floor, contacts, heights).tolist() == [True] + [False] * 8
    # A wide box floating over a sign and a cone, holding no one: no person either.
    wide = np.array([[200, 300, 300, 350]], dtype=float)
    assert floating_phantoms(
        np.concatenate([boxes[1:], wide]), floor, np.concatenate([contacts[1:], [below(0.3)]]), np.append(heights[1:], 1.6)
    )[-1]
    # Without the last two, most people miss the floor: no evidence against anyone.
    assert not floating_phantoms(boxes[:7], floor, contacts[:7], heights[:7]).any()
    # The same box with its feet on the floor: a near person with others behind, kept.
    contacts[0] = below(1.0)
    assert not floating_phantoms(boxes, floor, contacts, heights).any()


def test_pipeline_drops_the_parts_and_numbers_the_rest_again():
    from metrichmsr.pipeline import without_parts_read_as_far
    from metrichmsr.result import PersonResult

    def person(person_id: int, bbox, score: float, distance_m: float) -> PersonResult:
        return PersonResult(
            id=person_id,
            bbox=np.array(bbox, dtype=float),
            score=score,
            translation=np.array([0.0, 0.0, distance_m]),
            height_m=1.7,
            joints3d=np.zeros((23, 3)),
            keypoints2d=np.zeros((33, 3)),
            vertices=np.zeros((10, 3)),
            phenotype=np.full(6, 0.5),
            bone_rotvec=np.zeros((18, 3)),
            global_rotation=np.eye(3),
        )

    people = [
        person(0, [100, 100, 200, 400], 0.9, 3.0),
        person(1, [120, 110, 150, 170], 0.5, 12.0),
        person(2, [400, 100, 430, 160], 0.3, 20.0),
    ]
    kept = without_parts_read_as_far(people)
    assert [p.bbox[0] for p in kept] == [100, 400] and [p.id for p in kept] == [0, 1]
    assert [p.id for p in people] == [0, 1, 2]  # the input is left as it was
    assert without_parts_read_as_far([]) == []


def test_floor_takes_ups_from_rotations_and_contacts_from_seen_feet(body_model):
    joints, _, truth = people_on_floor(body_model, [(-2.0, 5.0), (1.5, 7.0), (0.0, 4.0)], 1.5, 12.0, 4.0, seed=9)
    joints[2] = joints[2] * 1.3  # a body cut at the knees, its size guessed: placed too far
    keypoints = np.full((3, len(BLAZEPOSE_LANDMARK_NAMES), 3), 0.9)
    keypoints[2, BLAZEPOSE_LANDMARK_NAMES.index("left_knee") :, 2] = 0.0  # cut at the knees
    boxes = np.tile([0.0, 0.0, 50.0, 200.0], (3, 1))
    rotations = np.repeat(camera_rotation(12.0, 4.0)[None], 3, axis=0)
    floor, contacts = people_floor(joints, boxes, rotations, feet_seen(keypoints))
    assert angle_deg(floor.up, truth.up) < 0.5  # the rotations' up, exact here
    assert floor.camera_height_m == pytest.approx(1.5, abs=0.03)
    assert np.isfinite(contacts[:2]).all() and np.isnan(contacts[2]).all()
    assert people_floor(np.zeros((0, 23, 3)), np.zeros((0, 4)), np.zeros((0, 3, 3))) == (None, None)
    # A speck of a detection (a 15 px box, feet seen) places no floor, alone or with others.
    speck = np.array([[0.0, 0.0, 60.0, 15.0]])
    assert people_floor(joints[2:], speck, rotations[2:]) == (None, None)
    with_speck, contacts = people_floor(joints, np.concatenate([boxes[:2], speck]), rotations)
    np.testing.assert_allclose(with_speck.up, people_floor(joints[:2], boxes[:2], rotations[:2])[0].up)
    assert np.isnan(contacts[2]).all()


def test_floor_takes_its_tilt_from_the_image_lines(body_model):
    """Bodies 5 degrees off in pitch; the room's lines put the floor's tilt right."""
    pitch_deg, roll_deg = 12.0, 4.0
    joints, _, truth = people_on_floor(body_model, [(-1.5, 5.0), (1.0, 7.0)], ROOM_CAMERA_HEIGHT_M, pitch_deg, roll_deg, seed=9)
    image, true_up = room_image(pitch_deg, roll_deg)
    np.testing.assert_allclose(true_up, truth.up, atol=1e-9)
    boxes = np.tile([0.0, 0.0, 50.0, 200.0], (2, 1))
    rotations = np.repeat(camera_rotation(pitch_deg + 5.0, roll_deg)[None], 2, axis=0)
    from_bodies, _ = people_floor(joints, boxes, rotations)
    from_lines, _ = people_floor(joints, boxes, rotations, image=image, K=ROOM_K)
    assert from_bodies.up_source == "people" and angle_deg(from_bodies.up, truth.up) > 2.0
    assert from_lines.up_source == "lines" and angle_deg(from_lines.up, truth.up) < 0.3
    assert from_lines.camera_height_m == pytest.approx(ROOM_CAMERA_HEIGHT_M, abs=0.05)
    # The room's wall is turned 20 degrees: its edges seen stand at several distances, and
    # the floor ends at their nearer part.
    feet_m = room_wall_feet_ahead_m(pitch_deg, roll_deg)
    assert from_bodies.wall_distance_m is None
    assert 0.98 * feet_m.min() < from_lines.wall_distance_m < np.median(feet_m)
    assert from_lines.to_dict()["wall_distance_m"] == pytest.approx(from_lines.wall_distance_m, abs=1e-3)
    # The floor's planks run to the wall's foot: it is seen about as far as the wall.
    assert feet_m.min() < from_lines.floor_seen_m < 1.05 * feet_m.max()
    # A camera known to stand twice as high sees the wall twice as far.
    known, _ = people_floor(joints, boxes, rotations, image=image, K=ROOM_K, camera_height_m=2 * from_lines.camera_height_m)
    assert known.height_source == "user"
    assert known.wall_distance_m == pytest.approx(2 * from_lines.wall_distance_m, rel=1e-6)
    # A blank image has no lines: the bodies' floor stands.
    blank, _ = people_floor(joints, boxes, rotations, image=np.full_like(image, 128), K=ROOM_K)
    np.testing.assert_allclose(blank.up, from_bodies.up)
