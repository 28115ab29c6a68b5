import numpy as np
import pytest

from _people_on_floor import people_on_floor
from metrichmsr.body import JOINT_NAMES
from metrichmsr.scene.floor import body_up_directions, camera_pitch_roll_deg, floor_from_people, foot_contacts


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


@pytest.mark.parametrize("pitch_deg, roll_deg", [(0.0, 0.0), (15.0, -4.0), (-8.0, 6.0)])
def test_floor_from_three_people_recovers_up_and_height(body_model, pitch_deg, roll_deg):
    positions = [(-2.5, 4.0), (0.5, 8.0), (3.0, 5.5)]
    joints, _, truth = people_on_floor(body_model, positions, 1.6, pitch_deg, roll_deg, seed=1)
    floor = floor_from_people(joints)
    assert angle_deg(floor.up, truth.up) < 1.5
    assert floor.camera_height_m == pytest.approx(1.6, abs=0.03)
    pitch, roll = camera_pitch_roll_deg(floor.up)
    assert pitch == pytest.approx(pitch_deg, abs=1.5) and roll == pytest.approx(roll_deg, abs=1.5)


def test_one_person_is_enough(body_model):
    joints, _, truth = people_on_floor(body_model, [(0.3, 5.0)], 1.2, pitch_deg=10.0, seed=2)
    floor = floor_from_people(joints)
    # One posed body gives the up direction to a few degrees; the plane goes through its feet.
    assert angle_deg(floor.up, truth.up) < 5.0
    true_contact = foot_contacts(joints, truth.up)
    assert abs(truth.height_above(true_contact)[0]) < 0.02
    assert abs(floor.height_above(true_contact)[0]) < 0.03


def test_more_people_fit_a_tilted_floor_better_than_their_bodies(body_model):
    """Many people spread out: the normal comes from the contacts, not the noisy body axes."""
    positions = [(x, z) for x in (-4.0, 0.0, 4.0) for z in (4.0, 9.0)]
    joints, _, truth = people_on_floor(body_model, positions, 1.5, pitch_deg=5.0, pose_std_rad=0.25, seed=3)
    ups = body_up_directions(joints)
    mean_body_error = angle_deg(ups.mean(axis=0), truth.up)
    floor = floor_from_people(joints)
    assert angle_deg(floor.up, truth.up) < min(1.0, mean_body_error)


def test_a_lying_person_is_left_out(body_model):
    positions = [(-1.0, 5.0), (1.0, 6.0), (0.0, 7.0)]
    joints, _, truth = people_on_floor(body_model, positions, 1.5, pose_std_rad=0.05, seed=4)
    lying = joints[2] - joints[2].mean(axis=0)
    joints[2] = lying[:, [1, 0, 2]] * [1, -1, 1] + joints[2].mean(axis=0)  # turned 90 degrees in the image plane
    floor, standing_only = floor_from_people(joints), floor_from_people(joints[:2])
    np.testing.assert_allclose(floor.up, standing_only.up)
    assert floor.camera_height_m == pytest.approx(standing_only.camera_height_m)
    assert angle_deg(floor.up, truth.up) < 2.0


def test_no_usable_people_gives_none():
    assert floor_from_people(np.zeros((0, len(JOINT_NAMES), 3))) is None
    assert floor_from_people(np.full((2, len(JOINT_NAMES), 3), np.nan)) is None
    with pytest.raises(ValueError, match="joints"):
        floor_from_people(np.zeros((2, 17, 3)))


def test_camera_pitch_roll_deg():
    assert camera_pitch_roll_deg(np.array([0.0, -1.0, 0.0])) == pytest.approx((0.0, 0.0))
    t = np.radians(20)
    assert camera_pitch_roll_deg(np.array([0.0, -np.cos(t), -np.sin(t)])) == pytest.approx((20.0, 0.0))
    assert camera_pitch_roll_deg(np.array([np.sin(t), -np.cos(t), 0.0])) == pytest.approx((0.0, 20.0))


def test_people_who_all_lean_differently_still_give_the_floor_from_their_feet(body_model):
    from scipy.spatial.transform import Rotation

    positions = [(-2.0, 5.0), (0.5, 8.0), (2.5, 4.5)]
    joints, _, truth = people_on_floor(body_model, positions, 1.6, pose_std_rad=0.0, seed=5)
    legs_up = [i for i, name in enumerate(JOINT_NAMES) if not name.endswith(("ankle", "toe", "heel"))]
    for k, azimuth in enumerate(np.radians([0.0, 120.0, 240.0])):
        # Tip each body above the ankles 16 degrees, each toward another side: no two agree.
        ankles = joints[k, [JOINT_NAMES.index("left_ankle"), JOINT_NAMES.index("right_ankle")]].mean(axis=0)
        axis = Rotation.from_rotvec(azimuth * truth.up).apply([1.0, 0.0, 0.0])
        joints[k, legs_up] = Rotation.from_rotvec(np.radians(16.0) * axis).apply(joints[k, legs_up] - ankles) + ankles
    ups = body_up_directions(joints)
    assert np.all(np.degrees(np.arccos(np.clip(ups @ ups.T, -1, 1)))[~np.eye(3, dtype=bool)] > 25.0)
    floor = floor_from_people(joints)
    assert angle_deg(floor.up, truth.up) < 3.0
    assert floor.camera_height_m == pytest.approx(1.6, abs=0.05)
