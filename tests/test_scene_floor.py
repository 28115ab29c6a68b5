import dataclasses

import numpy as np
import pytest

from _people_on_floor import camera_rotation, people_on_floor
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.scene.floor import (
    MAX_STANDING_HEIGHT_M,
    FloorPlane,
    body_up_directions,
    camera_pitch_roll_deg,
    floating_scales,
    floor_from_people,
    foot_contacts,
    shared_floor_pull,
    shared_floor_scales,
    stood_on,
    sunken_scales,
)


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


def _moved_along_rays(joints: np.ndarray, factor: float) -> np.ndarray:
    """A person placed ``factor`` times too far: the same image, a bigger body."""
    return joints * factor


def test_people_whose_feet_were_not_seen_are_left_out(body_model):
    positions = [(-2.0, 5.0), (1.5, 7.0), (0.0, 4.0)]
    joints, _, truth = people_on_floor(body_model, positions, 1.5, pitch_deg=8.0, seed=6)
    joints[2] = _moved_along_rays(joints[2], 1.3)  # a body cut at the knees, its size guessed
    seen = np.array([True, True, False])
    floor, two = floor_from_people(joints, feet_seen=seen), floor_from_people(joints[:2])
    np.testing.assert_allclose(floor.up, two.up)
    assert floor.camera_height_m == pytest.approx(two.camera_height_m)
    everybody = floor_from_people(joints)  # the guessed contact drags the floor down
    assert everybody.camera_height_m > floor.camera_height_m + 0.1
    # Nobody's feet seen: everybody counts, as without the flag.
    nobody = floor_from_people(joints, feet_seen=np.zeros(3, bool))
    np.testing.assert_allclose(nobody.up, floor_from_people(joints).up)
    with pytest.raises(ValueError, match="one row per person"):
        floor_from_people(joints, feet_seen=seen[:2])


def test_given_up_directions_replace_the_body_axes(body_model):
    """A crouching body's legs are not vertical; an up direction from elsewhere (the body's
    global rotation, which HumanMoE predicts for every pose) is."""
    joints, _, truth = people_on_floor(body_model, [(0.5, 5.0)], 1.4, pitch_deg=12.0, roll_deg=-5.0, pose_std_rad=0.0, seed=7)
    legs_up = [i for i, name in enumerate(JOINT_NAMES) if not name.endswith(("ankle", "toe", "heel"))]
    ankles = joints[0, [JOINT_NAMES.index("left_ankle"), JOINT_NAMES.index("right_ankle")]].mean(axis=0)
    from scipy.spatial.transform import Rotation

    joints[0, legs_up] = (
        Rotation.from_rotvec(np.radians(20.0) * np.array([1.0, 0.0, 0.0])).apply(joints[0, legs_up] - ankles) + ankles
    )
    assert angle_deg(floor_from_people(joints).up, truth.up) > 10.0
    floor = floor_from_people(joints, ups=truth.up[None])
    assert angle_deg(floor.up, truth.up) < 0.5
    assert floor.camera_height_m == pytest.approx(1.4, abs=0.03)


def test_depth_noise_trusts_the_people_s_up_over_scattered_contacts(body_model):
    """Two people, one placed 12% too far (a typical recovered-depth error): taken at face
    value their contacts tilt the floor; allowing for depth errors keeps it nearer their up."""
    joints, _, truth = people_on_floor(body_model, [(-1.5, 4.0), (1.5, 8.0)], 1.6, pitch_deg=10.0, seed=8)
    joints[1] = _moved_along_rays(joints[1], 1.12)
    ups = np.repeat(truth.up[None], 2, axis=0)
    exact = floor_from_people(joints, ups=ups)
    allowing = floor_from_people(joints, ups=ups, depth_noise=0.1)
    assert angle_deg(exact.up, truth.up) > 1.5
    # Both are precision-weighted: two contacts 5 m apart with 16 cm errors still outweigh
    # two 5-degree up directions a little, so the tilt shrinks rather than vanishes.
    assert angle_deg(allowing.up, truth.up) < 0.75 * angle_deg(exact.up, truth.up)


def test_a_scene_up_sets_the_tilt_and_the_people_the_height(body_model):
    joints, _, truth = people_on_floor(body_model, [(-1.0, 5.0), (1.5, 7.0)], 1.4, pitch_deg=10.0, pose_std_rad=0.25, seed=5)
    bodies = floor_from_people(joints)
    scene = floor_from_people(joints, scene_up=truth.up)
    assert bodies.up_source == "people" and scene.up_source == "lines"
    assert angle_deg(scene.up, truth.up) < 0.2 < angle_deg(bodies.up, truth.up)
    assert scene.camera_height_m == pytest.approx(1.4, abs=0.03)
    assert scene.to_dict()["up_source"] == "lines"


def test_only_feet_sunk_well_below_the_floor_bring_a_person_nearer():
    floor = FloorPlane(up=camera_rotation(10.0, 3.0) @ np.array([0.0, -1.0, 0.0]), camera_height_m=1.5)
    down = -np.asarray(floor.up)
    ahead = np.cross(np.array([1.0, 0.0, 0.0]), floor.up)  # horizontal, away from the camera
    contact = lambda below_m: 5.0 * ahead + below_m * down  # noqa: E731
    contacts = np.stack([contact(1.5), contact(3.0), contact(2.0), contact(0.9), contact(4.5), np.full(3, np.nan)])
    # On the floor; twice as far below (a child read as an adult twice as far away); a third
    # further (within the people's own depth errors); above it (on a step); three times as
    # far (a street below a terrace: no child is a third of an adult); unknown. Then four
    # more on the floor: most people stand on it.
    contacts = np.concatenate([contacts, np.stack([contact(1.5 * r) for r in (0.95, 1.0, 1.05, 1.1)])])
    np.testing.assert_allclose(sunken_scales(floor, contacts), [1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert sunken_scales(floor, contacts, max_ratio=1.2)[2] == pytest.approx(0.75)
    np.testing.assert_allclose(floor.below_ratio(contacts[:3]), [1.0, 2.0, 4 / 3])
    assert floor.height_above(contacts[1] * sunken_scales(floor, contacts)[1]) == pytest.approx(0.0, abs=1e-9)
    # Without the four, one of five stands on the floor: a floor placed wrong, no child found.
    assert not stood_on(floor, contacts[:6]) and stood_on(floor, contacts)
    np.testing.assert_array_equal(sunken_scales(floor, contacts[:6]), 1.0)
    # An adult and a child, one on the floor: half is enough.
    np.testing.assert_allclose(sunken_scales(floor, contacts[:2]), [1.0, 0.5])


def test_feet_floating_well_above_the_floor_take_a_person_farther_unless_a_giant():
    floor = FloorPlane(up=camera_rotation(20.0, 2.0) @ np.array([0.0, -1.0, 0.0]), camera_height_m=7.0)
    # On the floor; half as far below the camera (an adult read as a child at half the
    # distance); 0.8 (a chair, a jump: within what the people's own errors and a step
    # explain); a third, but then 1.6 m x 3 tall (two walkers in one box); above the
    # camera; unknown; then four more on the floor.
    contacts = _contacts_below(floor, [1.0, 0.5, 0.8, 1 / 3, -0.2, np.nan, 1.0, 0.95, 1.05, 1.0])
    heights = np.array([1.7, 0.9, 1.2, 1.6, 1.0, 1.0, 1.7, 1.7, 1.7, 1.7])
    scales = floating_scales(floor, contacts, heights)
    np.testing.assert_allclose(scales, [1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(floating_scales(floor, contacts[:6], heights[:6]), 1.0)  # most miss the floor
    assert floor.height_above(contacts[1] * scales[1]) == pytest.approx(0.0, abs=1e-9)
    assert floating_scales(floor, contacts, heights, max_ratio=1.2)[2] == pytest.approx(1.25)
    # The same 0.9 m at half the distance but with 1.2 m to grow: left alone, a giant at 2.4 m.
    assert floating_scales(floor, contacts[1:2], np.array([1.2]))[0] == 1.0
    assert 2 * 1.2 > MAX_STANDING_HEIGHT_M >= 2 * 0.9


def _contacts_below(floor: FloorPlane, ratios: list[float]) -> np.ndarray:
    """(N, 3) contacts 5 m ahead whose feet lie ``ratios`` times the camera height below it (NaN: unknown)."""
    ahead = np.cross(np.array([1.0, 0.0, 0.0]), floor.up)  # horizontal, away from the camera
    return np.stack([5.0 * ahead - r * floor.camera_height_m * np.asarray(floor.up) for r in ratios])


def test_people_on_one_floor_are_moved_toward_the_depth_their_feet_agree_on():
    floor = FloorPlane(up=camera_rotation(12.0, -2.0) @ np.array([0.0, -1.0, 0.0]), camera_height_m=1.4)
    # Read 10% too far, 8% too near, 3% too far; then on a step, sunk (a child), unknown.
    contacts = _contacts_below(floor, [1.1, 0.92, 1.03, 0.7, 2.0, np.nan])
    scales = shared_floor_scales(floor, contacts)
    np.testing.assert_array_equal(scales[3:], 1.0)
    assert scales[0] < 1.0 < scales[1]
    before = np.log(floor.below_ratio(contacts[:3]))
    after = np.log(floor.below_ratio(contacts[:3] * scales[:3, None]))
    # Scaling about the camera moves each contact along its ray: the feet's depth below the
    # camera scales with it, and their spread shrinks to (1 - pull) of what it was.
    np.testing.assert_allclose(after - after.mean(), (1 - shared_floor_pull(1.4)) * (before - before.mean()), atol=1e-9)
    assert after.mean() == pytest.approx(before.mean(), abs=1e-9)
    # Everyone exactly on it, or already agreeing to within 1%: nobody moves.
    np.testing.assert_array_equal(shared_floor_scales(floor, _contacts_below(floor, [1.0, 1.0, 1.004])), 1.0)
    # One person alone has nobody to agree with.
    np.testing.assert_array_equal(shared_floor_scales(floor, _contacts_below(floor, [1.1, 0.7, np.nan])), 1.0)


def test_the_pull_toward_the_floor_grows_with_the_cameras_height():
    # Feet 3 cm off weigh more against a body's size 5% off the lower the camera: 0.8 at 1.2 m.
    assert shared_floor_pull(1.2) == pytest.approx(0.8)
    assert shared_floor_pull(0.5) < 0.5 < shared_floor_pull(1.2) < shared_floor_pull(7.0)
    assert shared_floor_pull(7.0) == pytest.approx(0.99, abs=0.005)
    high = FloorPlane(up=np.array([0.0, -1.0, 0.0]), camera_height_m=7.0, height_source="user")
    assert shared_floor_scales(high, _contacts_below(high, [1.1]))[0] == pytest.approx(1.1 ** -shared_floor_pull(7.0))


def test_a_known_camera_height_is_the_depth_to_agree_on():
    floor = FloorPlane(up=camera_rotation(5.0, 1.0) @ np.array([0.0, -1.0, 0.0]), camera_height_m=1.2, height_source="user")
    # One person read 10% too far is enough; one floating so high that floating_scales moves
    # them, one sunk so deep that sunken_scales does, and an unknown one stay.
    contacts = _contacts_below(floor, [1.1, 0.6, 1.6, np.nan])
    scales = shared_floor_scales(floor, contacts)
    assert scales[0] == pytest.approx(1.1**-0.8) and list(scales[1:]) == [1.0, 1.0, 1.0]
    # Two people 10% and 4% too far both come nearer: nobody's mean, the floor's own depth.
    scales = shared_floor_scales(floor, _contacts_below(floor, [1.1, 1.04]))
    np.testing.assert_allclose(scales, [1.1**-0.8, 1.04**-0.8])
    # Those between the band a floor the people place allows and the floating or the sunk are
    # brought toward a known one too, not left in between; a placed floor leaves them be.
    between = _contacts_below(floor, [0.75, 1.4, 1.0])
    np.testing.assert_allclose(shared_floor_scales(floor, between), [0.75**-0.8, 1.4**-0.8, 1.0])
    placed = dataclasses.replace(floor, height_source="people")
    np.testing.assert_array_equal(shared_floor_scales(placed, between)[:2], 1.0)
    assert floor.to_dict()["camera_height_source"] == "user"
    assert dataclasses.replace(floor, height_source="people").to_dict()["camera_height_source"] == "people"
