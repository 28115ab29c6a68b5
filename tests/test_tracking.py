"""Tracking people across frames on synthetic metric positions (no models): ids survive a
crossing and a missed frame, newcomers get new ids; the pooled floor ignores odd frames;
smoothing leaves straight paths alone, removes jitter, more so along the line of sight, and
bridges gaps; poses about the hips lose their frame-to-frame shake but keep a stride's swing;
tracks of one person broken by a gap are relinked once the clip has ended, and
only theirs; the floor frame is right-handed."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from metrichmsr.scene.floor import FloorPlane, foot_contacts
from metrichmsr.tracking import (
    MAX_UNSEEN_S,
    RELINK_GAP_S,
    RELINK_LOOK_DISTANCE,
    Tracker,
    TrackSpan,
    appearance_distance,
    appearances,
    box_ious,
    floor_axes,
    floor_coordinates,
    horizontal,
    onto_floor_scales,
    pooled_floor,
    relinked,
    smooth_poses,
    smooth_positions,
    standing_positions,
)

FOCAL_PX = 1000.0
LEVEL_UP = np.array([0.0, -1.0, 0.0])


def box_of(root: np.ndarray, height_m: float = 1.7) -> np.ndarray:
    """The (4,) pixel box of a person whose hip midpoint is ``root`` (camera frame), seen by a
    level camera with a 1000 px focal length and the principal point at 0."""
    x, y, z = root
    top, bottom = y - 0.5 * height_m, y + 0.5 * height_m
    half_width = 0.25
    return FOCAL_PX * np.array([(x - half_width) / z, top / z, (x + half_width) / z, bottom / z])


def run(tracker: Tracker, times: np.ndarray, people: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Feed each frame's roots (camera frame) to the tracker; the ids of each frame."""
    out = []
    for time_s, roots in zip(times, people):
        roots = np.array(roots).reshape(-1, 3)
        boxes = np.array([box_of(r) for r in roots]).reshape(-1, 4)
        out.append(tracker.update(time_s, horizontal(roots, LEVEL_UP), boxes))
    return out


def walk(start, velocity, times, rng=None, noise_m=0.0):
    """Roots (T, 3) of a person walking at constant velocity, 0.9 m above a floor 1.5 m below a level camera."""
    path = np.asarray(start, float) + np.outer(times, velocity)
    path[:, 1] = 1.5 - 0.9
    if rng is not None:
        path[:, [0, 2]] += rng.normal(0, noise_m, (len(times), 2))
    return path


def crossing(rng):
    """Two walkers crossing 10 cm apart, 60 cm a frame (1.5 m/s at 2.5 frames/s), on either
    side of the crossing at once: the times and each frame's roots, a's first."""
    times = np.arange(20) * 0.4
    a = walk([-3.0, 0, 8.0], [1.5, 0, 0.0], times, rng, 0.02)
    b = walk([3.0, 0, 8.1], [-1.5, 0, 0.0], times, rng, 0.02)
    return times, [[a[i], b[i]] for i in range(len(times))]


def test_two_people_crossing_keep_their_ids():
    """The crossing with each frame's list shuffled: the constant-velocity prediction tells them apart."""
    rng = np.random.default_rng(0)
    times, frames = crossing(rng)
    flips = rng.integers(2, size=len(frames)).astype(bool)
    ids = run(Tracker(), times, [f[::-1] if flip else f for f, flip in zip(frames, flips)])
    ids = [f[::-1] if flip else f for f, flip in zip(ids, flips)]  # a's first again
    assert {int(f[0]) for f in ids} == {0} and {int(f[1]) for f in ids} == {1}


def test_without_the_prediction_the_crossing_swaps_them(monkeypatch):
    """The same crossing with tracks predicted where they were last seen: the ids swap (the test above can fail)."""
    from metrichmsr.tracking import Track

    monkeypatch.setattr(Track, "predicted", lambda track, time_s: track.position)
    times, frames = crossing(np.random.default_rng(0))
    ids = run(Tracker(), times, frames)
    assert {int(f[0]) for f in ids} == {0, 1}


def test_a_missed_frame_does_not_break_a_track():
    times = np.arange(20) / 10.0
    a = walk([-2.0, 0, 10.0], [1.4, 0, 0.3], times)
    b = walk([2.0, 0, 14.0], [-1.0, 0, 0.0], times)
    frames = [[a[i], b[i]] for i in range(len(times))]
    frames[7] = [b[7]]  # a is hidden in frame 7
    frames[8] = []  # nobody is seen in frame 8
    ids = run(Tracker(), times, frames)
    assert {int(f[0]) for i, f in enumerate(ids) if i not in (7, 8)} == {0}
    assert {int(f[-1]) for i, f in enumerate(ids) if i != 8} == {1}


def test_a_new_person_gets_a_new_id_and_ids_are_never_reused():
    times = np.arange(30) / 10.0
    a = walk([0.0, 0, 10.0], [1.0, 0, 0.0], times)
    c = walk([-3.0, 0, 6.0], [0.0, 0, 1.0], times)
    frames = [[a[i]] + ([c[i]] if i >= 5 else []) for i in range(len(times))]
    # a leaves for longer than a track waits, then comes back where they were heading
    back = 10 + int(MAX_UNSEEN_S * 10) + 2  # last seen in frame 9, unseen for 1.2 s
    for i in range(10, back):
        frames[i] = frames[i][1:]
    ids = run(Tracker(), times, frames)
    assert ids[4].tolist() == [0]
    assert ids[5].tolist() == [0, 1]
    assert {int(f[-1]) for f in ids[5:]} == {1}  # c keeps theirs
    assert ids[back].tolist() == [2, 1]  # a is back, as someone new


def test_a_person_unseen_for_under_a_second_keeps_their_id():
    """BlazePose misses people for a few frames at a time: at 25 frames/s, 0.8 s is 20 frames."""
    times = np.arange(50) / 25.0
    a = walk([0.0, 0, 12.0], [1.3, 0, 0.2], times)
    frames = [[a[i]] for i in range(len(times))]
    for i in range(15, 35):
        frames[i] = []
    ids = run(Tracker(), times, frames)
    assert {int(f[0]) for f in ids if len(f)} == {0}


def test_a_depth_misread_in_one_frame_is_kept_by_the_box():
    """A person read 30% too far in one frame jumps 3 m along their ray: beyond the metric
    gate, but their box is where it was."""
    times = np.arange(10) / 10.0
    a = walk([0.0, 0, 10.0], [0.3, 0, 0.0], times)
    frames = [[r] for r in a]
    ids = []
    tracker = Tracker()
    for i, (time_s, roots) in enumerate(zip(times, frames)):
        box = box_of(roots[0])  # what the image shows
        seen = roots[0] * (1.3 if i == 5 else 1.0)  # what the depth says
        ids.append(int(tracker.update(time_s, horizontal(seen[None], LEVEL_UP), box[None])[0]))
    assert ids == [0] * 10


def test_a_person_off_the_floor_stands_where_their_box_meets_it():
    """Read 40% too near, a person's body floats above the floor; the bottom of their box still
    says where they stand. Without a floor for the clip, the body is all there is."""
    floor = FloorPlane(LEVEL_UP, 1.5, height_source="video")
    K = np.array([[FOCAL_PX, 0, 0], [0, FOCAL_PX, 0], [0, 0, 1.0]])
    root = np.array([1.0, 0.6, 10.0])  # hips 0.9 m above the floor
    box = box_of(root)
    box[3] = FOCAL_PX * 1.5 / 10.0  # the feet on the floor
    misread = root * 0.6
    positions = standing_positions(np.stack([root, misread]), np.stack([box, box]), [True, False], K, floor)
    assert np.allclose(positions, [[1.0, 0.0, 10.0], [1.0, 0.0, 10.0]])
    assert np.allclose(standing_positions(misread[None], box[None], [False], K, None), [[0.6, 0.0, 6.0]])


def test_box_ious():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    iou = box_ious(boxes, boxes)
    assert np.allclose(np.diag(iou), 1.0)
    assert iou[0, 1] == pytest.approx(50 / 150) and iou[0, 2] == 0.0


def test_pooled_floor_ignores_odd_frames():
    good = [FloorPlane(np.array([0.0, -np.cos(a), -np.sin(a)]), h) for a, h in [(0.2, 7.0), (0.21, 7.1), (0.19, 6.9)]]
    odd = FloorPlane(np.array([0.3, -0.9, 0.0]) / np.linalg.norm([0.3, -0.9, 0.0]), 3.0)  # a child alone, tilted and low
    floor = pooled_floor(good + [odd], weights=[3, 3, 3, 1])
    assert floor.camera_height_m == pytest.approx(7.0)
    assert np.linalg.norm(floor.up) == pytest.approx(1.0)
    assert np.degrees(np.arccos(floor.up @ good[0].up)) < 1.0
    assert floor.height_source == "video"
    assert pooled_floor([]) is None
    assert pooled_floor([FloorPlane(LEVEL_UP, 4.0, height_source="user")] * 2).height_source == "user"


def test_onto_floor_puts_the_feet_on_it():
    floor = FloorPlane(LEVEL_UP, 5.0, height_source="video")
    contacts = np.array([[0.0, 5.5, 20.0], [1.0, 4.8, 18.0], [0.0, 10.0, 30.0], [np.nan] * 3])
    scales, on_floor = onto_floor_scales(floor, contacts)
    assert on_floor.tolist() == [True, True, False, False]
    assert floor.below_ratio(contacts[:2] * scales[:2, None]) == pytest.approx([1.0, 1.0])
    assert scales[2:].tolist() == [1.0, 1.0]  # another level, unknown feet: left alone
    with pytest.raises(ValueError):
        onto_floor_scales(FloorPlane(LEVEL_UP, 5.0), contacts)  # placed by these people: not known


def test_smoothing_keeps_a_straight_constant_speed_path():
    times = np.arange(50) / 25.0
    path = np.array([0.5, 0.6, 9.0]) + np.outer(times, [1.2, 0.0, -0.7])
    assert np.allclose(smooth_positions(times, path), path, atol=1e-3)


def test_smoothing_reduces_jitter_and_keeps_a_turn():
    rng = np.random.default_rng(1)
    times = np.arange(100) / 25.0
    angle = 0.5 * times  # walking a 3 m circle at 1.5 m/s
    true = np.stack([3 * np.cos(angle), np.full_like(angle, 0.6), 10 + 3 * np.sin(angle)], axis=1)
    noisy = true + rng.normal(0, 0.1, true.shape) * [1, 0, 1]
    smooth = smooth_positions(times, noisy)
    error = lambda p: np.sqrt(np.mean(np.sum((p - true) ** 2, axis=1)))  # noqa: E731
    assert error(smooth) < 0.5 * error(noisy)
    assert np.allclose(smooth_positions(times, true), true, atol=0.02)  # the turn itself stays


def test_smoothing_trusts_a_distance_along_the_line_of_sight_less_than_a_step_across_it():
    times = np.arange(75) / 25.0
    path = np.array([0.0, 0.0, 30.0]) + np.outer(times, [1.2, 0.0, 0.0])  # crossing 30 m ahead
    noise = np.random.default_rng(3).normal(0, 0.1, len(times))
    along = smooth_positions(times, path + np.outer(noise, [0, 0, 1]))[:, 2] - path[:, 2]
    across = smooth_positions(times, path + np.outer(noise, [1, 0, 0]))[:, 0] - path[:, 0]
    assert np.std(along) < 0.7 * np.std(across)  # the same noise, smoothed harder along the ray


def test_smoothing_bridges_a_gap_at_walking_pace():
    times = np.r_[np.arange(10), np.arange(35, 60)] / 25.0  # unseen for a second
    path = np.array([-2.0, 0.6, 12.0]) + np.outer(times, [1.4, 0.0, 0.3])
    assert np.allclose(smooth_positions(times, path), path, atol=1e-3)
    assert np.array_equal(smooth_positions([0.5], path[:1]), path[:1])
    with pytest.raises(ValueError, match="one row per frame"):
        smooth_positions(times[:3], path)


def test_pose_smoothing_takes_out_shake_and_keeps_a_stride():
    rng = np.random.default_rng(4)
    times = np.arange(100) / 25.0
    swing = 0.3 * np.sin(2 * np.pi * 1.0 * times)  # an ankle swinging at a 1 Hz stride
    true = np.zeros((100, 2, 3))
    true[:, 0, 2], true[:, 1, 2] = swing, -swing
    noisy = true + rng.normal(0, 0.03, true.shape)
    smooth, rotations = smooth_poses(times, noisy)
    assert rotations is None
    rms = lambda p: np.sqrt(np.mean((p - true)[5:-5] ** 2))  # noqa: E731
    assert rms(smooth) < 0.6 * rms(noisy)
    kept, _ = smooth_poses(times, true)
    assert np.abs(kept - true)[10:-10].max() < 0.06 * 0.3  # the swing itself stays, within 6%


def test_pose_smoothing_keeps_rotations_rotations_and_frames_far_apart_apart():
    rng = np.random.default_rng(5)
    times = np.r_[np.arange(20) / 25.0, 5.0]  # the last frame seen seconds after the others
    rotations = Rotation.from_rotvec(rng.normal(0, 0.1, (21, 3))).as_matrix()  # about the identity
    offsets = rng.normal(0, 0.1, (21, 4, 3))
    smooth, smooth_rotations = smooth_poses(times, offsets, rotations[:, None])
    assert smooth_rotations.shape == (21, 1, 3, 3)
    assert np.allclose(smooth_rotations @ np.swapaxes(smooth_rotations, -1, -2), np.eye(3), atol=1e-6)
    assert np.allclose(np.linalg.det(smooth_rotations), 1.0)
    angle = lambda r: np.arccos(np.clip((np.trace(r, axis1=-2, axis2=-1) - 1) / 2, -1, 1))  # noqa: E731
    assert np.mean(angle(smooth_rotations[:20, 0])) < 0.8 * np.mean(angle(rotations[:20]))  # nearer the mean pose
    assert np.allclose(smooth[-1], offsets[-1]) and np.allclose(smooth_rotations[-1, 0], rotations[-1], atol=1e-6)
    with pytest.raises(ValueError, match="offsets_m"):
        smooth_poses(times[:3], offsets)
    with pytest.raises(ValueError, match="sigma_s"):
        smooth_poses(times, offsets, sigma_s=0.0)


def span(times: np.ndarray, path: np.ndarray, box_height_m: float = 1.8, look: np.ndarray | None = None) -> TrackSpan:
    looks = None if look is None else np.repeat(look[None], len(times), axis=0)
    return TrackSpan(times, horizontal(path, LEVEL_UP), np.full(len(times), box_height_m), looks)


def hidden_walker(rng=None):
    """A walker crossing 20 m ahead at 1.4 m/s, seen for 3 s, hidden for 2 s (behind a post),
    seen for 3 s: the two spans' times and roots."""
    times = np.arange(200) / 25.0
    path = walk([-5.0, 0, 20.0], [1.4, 0, 0.1], times, rng, 0.05)
    first, second = times < 3.0, times >= 5.0
    return (times[first], path[first]), (times[second], path[second])


def test_a_person_hidden_for_two_seconds_is_relinked():
    (t0, p0), (t1, p1) = hidden_walker(np.random.default_rng(4))
    assert relinked([span(t0, p0), span(t1, p1)]).tolist() == [0, 0]
    # three pieces chain up, and a track of someone else elsewhere stays apart
    elsewhere = walk([4.0, 0, 12.0], [0.0, 0, -1.2], t1)
    pieces = [span(t0, p0), span(t1[:25], p1[:25]), span(t1[50:], p1[50:]), span(t1, elsewhere)]
    assert relinked(pieces).tolist() == [0, 0, 0, 3]


def test_relinking_needs_the_same_size_look_and_a_gap_of_a_few_seconds():
    (t0, p0), (t1, p1) = hidden_walker()
    assert relinked([span(t0, p0, 1.8), span(t1, p1, 1.8 * 1.5)]).tolist() == [0, 1]  # a taller box: someone else
    red, black = np.zeros(2 * 72), np.zeros(2 * 72)
    red[[0, 72]], black[[2, 74]] = 1.0, 1.0
    assert relinked([span(t0, p0, look=red), span(t1, p1, look=red)]).tolist() == [0, 0]
    assert relinked([span(t0, p0, look=red), span(t1, p1, look=black)]).tolist() == [0, 1]
    late = t1 + RELINK_GAP_S
    assert relinked([span(t0, p0), span(late, p1 + np.outer(late - t1, [1.4, 0, 0.1]))]).tolist() == [0, 1]
    assert relinked([span(t0, p0), span(t0, p0 + [0.3, 0, 0])]).tolist() == [0, 1]  # at the same time: two people
    assert relinked([]).tolist() == []


def test_appearances_tell_a_red_jacket_from_a_black_coat():
    image = np.full((120, 160, 3), 128, np.uint8)
    image[20:100, 10:40] = (200, 30, 30)  # red
    image[20:100, 60:90] = (200, 30, 30)
    image[20:100, 110:140] = (20, 20, 20)  # black
    boxes = np.array([[10, 20, 40, 100], [60, 20, 90, 100], [110, 20, 140, 100], [300, 20, 330, 100]], float)
    looks = appearances(image, boxes)
    size = looks.shape[1] // 2
    assert looks[:3, :size].sum(axis=1) == pytest.approx(1.0) and looks[:3, size:].sum(axis=1) == pytest.approx(1.0)
    assert appearance_distance(looks[0], looks[1]) == pytest.approx(0.0, abs=1e-6)
    assert appearance_distance(looks[0], looks[2]) > RELINK_LOOK_DISTANCE
    assert not looks[3].any() and appearance_distance(looks[0], looks[3]) == 0.0  # off the image: nothing to tell


def test_floor_frame_is_right_handed_under_the_camera():
    pitch = np.radians(20)
    up = np.array([0.05, -np.cos(pitch), -np.sin(pitch)])
    floor = FloorPlane(up / np.linalg.norm(up), 3.0)
    right, forward = floor_axes(floor)
    assert np.allclose(np.cross(right, forward), floor.up)
    assert right @ floor.up == pytest.approx(0) and forward @ floor.up == pytest.approx(0)
    level = FloorPlane.level(1.5)
    assert np.allclose(floor_axes(level)[0], [1, 0, 0]) and np.allclose(floor_axes(level)[1], [0, 0, 1])
    assert np.allclose(floor_coordinates(np.array([2.0, 1.5, 7.0]), level), [2.0, 7.0])


def test_foot_contacts_of_the_synthetic_floor():
    """The helper floor above: a standing person's contact lies on it (sanity of the test scene)."""
    joints = np.zeros((1, 23, 3))
    joints[0, :, 1] = 1.5 - 0.092  # every foot point at ankle height above a floor 1.5 m down
    assert foot_contacts(joints, LEVEL_UP)[0, 1] == pytest.approx(1.5)


def test_distance_misread_along_the_line_of_sight_counts_less_than_a_step_across_it():
    """Two people walking side by side 25 m away; in one frame one is read 8% farther, in
    another the other 8% nearer (2 m along their line of sight, beyond the 1.08 m gate), with
    boxes left out (the metric gate alone decides): each keeps their id."""
    times = np.arange(20) / 25.0
    a = walk([-0.8, 0, 25.0], [0.0, 0, -1.2], times)
    b = walk([0.8, 0, 25.0], [0.0, 0, -1.2], times)
    tracker = Tracker(iou_gate=1.01)
    ids = []
    for i, time_s in enumerate(times):
        roots = np.stack([a[i] * (1.08 if i == 6 else 1.0), b[i] * (0.92 if i == 13 else 1.0)])
        boxes = np.array([box_of(r) for r in roots])
        ids.append(tracker.update(time_s, horizontal(roots, LEVEL_UP), boxes).tolist())
    assert ids == [[0, 1]] * len(times)
