"""Synthetic scenes: pose families, cameras, determinism and the ground truth's consistency."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from metrichmsr.errors import InputError
from metrichmsr.joints import JOINT_NAMES
from metrichmsr.synth import (
    EXTRA_POSE_FAMILIES,
    HELD_OUT_SEED_START,
    POSE_FAMILIES,
    SceneConfig,
    level_axes,
    sample_camera,
    sample_pose,
    sample_scene,
)
from metrichmsr.synth.dataset import INDEX_FILE, list_samples, load_sample, save_sample, write_dataset
from metrichmsr.synth.poses import clip_to_limits

SMALL = SceneConfig(long_side_px=320, people=(2, 3))


@pytest.mark.parametrize("family", POSE_FAMILIES + EXTRA_POSE_FAMILIES)
def test_pose_families_are_deterministic_and_within_limits(family):
    pose, name = sample_pose(np.random.default_rng(1), family)
    again, _ = sample_pose(np.random.default_rng(1), family)
    assert name == family and pose.shape == (18, 3)
    np.testing.assert_array_equal(pose, again)
    np.testing.assert_allclose(clip_to_limits(pose), pose)  # already inside the limits
    assert np.linalg.norm(pose, axis=-1).max() > 0.1  # a pose, not the rest pose


def test_kneeling_people_rest_on_a_knee_and_their_hips_drop(body_model):
    """Kneeling: the lowest joint a knee (or a toe behind it), the hips about a thigh's length
    lower than standing, the same person's standing height."""
    rng = np.random.default_rng(7)
    poses = [sample_pose(rng, family)[0] for family in ["standing"] * 8 + ["kneeling"] * 8]
    n = len(poses)
    phenotype = torch.full((n, 6), 0.5)
    with torch.no_grad():
        joints = body_model.joints(
            phenotype, torch.as_tensor(np.stack(poses), dtype=torch.float32), torch.eye(3).expand(n, 3, 3), torch.zeros(n, 3)
        )
    up = -joints[..., 1].numpy()  # camera axes: y down
    ground = up.min(1)
    hips = up[:, [JOINT_NAMES.index("left_hip"), JOINT_NAMES.index("right_hip")]].mean(1) - ground
    standing, kneeling = hips[:8], hips[8:]
    assert np.all(kneeling < standing.min() - 0.25) and np.all(kneeling > 0.25)
    knees = up[8:, [JOINT_NAMES.index("left_knee"), JOINT_NAMES.index("right_knee")]].min(1) - ground[8:]
    # A knee on the floor (its joint a few cm up; a toe may reach a little lower).
    assert np.median(knees) < 0.08 and np.all(knees < 0.2)


def test_unknown_pose_family_is_refused():
    with pytest.raises(ValueError, match="unknown pose family"):
        sample_pose(np.random.default_rng(0), "cartwheel")


def test_cameras_cover_the_configured_ranges():
    config = SceneConfig()
    fovs, pitches, heights, portrait = [], [], [], 0
    for seed in range(300):
        K, (width, height), floor = sample_camera(np.random.default_rng(seed), config)
        fovs.append(math.degrees(2 * math.atan(width / (2 * K[0, 0]))))
        pitches.append(math.degrees(math.asin(-floor.up[2])))  # looking down: up leans toward -z
        heights.append(floor.camera_height_m)
        portrait += height > width
        assert np.linalg.norm(floor.up) == pytest.approx(1.0)
        assert max(width, height) == config.long_side_px
    assert 20 <= min(fovs) < 25 and 115 < max(fovs) <= 120
    assert -10 <= min(pitches) < -5 and 25 < max(pitches) <= 30
    assert 0.5 <= min(heights) and max(heights) <= 4.0
    assert 0.2 < portrait / 300 < 0.4


def test_level_axes_one_or_many_floors():
    up = np.random.default_rng(0).normal(size=(5, 3)) * 0.2 + [0, -1, 0]
    up /= np.linalg.norm(up, axis=-1, keepdims=True)
    batched = level_axes(up)
    np.testing.assert_allclose(batched, np.stack([level_axes(u) for u in up]))
    for axes, u in zip(batched, up):
        np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-12)  # a rotation
        assert np.linalg.det(axes) == pytest.approx(1.0)
        np.testing.assert_allclose(axes[:, 1], -u)  # level y is gravity
        assert axes[:, 2] @ u == pytest.approx(0.0, abs=1e-12) and axes[2, 2] > 0  # forward: horizontal, ahead
    np.testing.assert_allclose(level_axes(np.array([0.0, -1.0, 0.0])), np.eye(3), atol=1e-12)  # a level camera


@pytest.fixture(scope="module")
def scene(body_model, session_renderer):
    return sample_scene(body_model, session_renderer, HELD_OUT_SEED_START + 3, SMALL)


def test_scenes_are_deterministic_per_seed(body_model, session_renderer, scene):
    again = sample_scene(body_model, session_renderer, HELD_OUT_SEED_START + 3, SMALL)
    np.testing.assert_array_equal(again.image, scene.image)
    np.testing.assert_array_equal(again.depth_m, scene.depth_m)
    other = sample_scene(body_model, session_renderer, HELD_OUT_SEED_START + 4, SMALL)
    assert other.image.shape != scene.image.shape or not np.array_equal(other.image, scene.image)


def test_ground_truth_agrees_with_itself(scene):
    n = len(scene.height_m)
    height, width = scene.image.shape[:2]
    assert scene.joints.shape == (n, 23, 3) and scene.vertices.shape == (n, 13718, 3)
    assert len(scene.pose_family) == n and set(scene.pose_family) <= set(POSE_FAMILIES)
    assert scene.depth_m.shape == (height, width) and np.isfinite(scene.depth_m).all()
    # Everybody stands on the floor: their lowest point touches it.
    for vertices in scene.vertices:
        assert scene.floor.height_above(vertices).min() == pytest.approx(0.0, abs=0.01)
    # Where the floor is seen, the depth map is the floor's depth.
    floor_depth = scene.floor.depth_map(scene.K, (width, height))
    on_floor = np.abs(scene.depth_m / floor_depth - 1) < 1e-3
    assert on_floor.mean() > 0.05
    # A person's pixels: the depth map lies within the body's depth range, and the visible box holds them.
    for i, vertices in enumerate(scene.vertices):
        pixels = scene.instance_ids == i
        if not pixels.any():
            continue
        depth = scene.depth_m[pixels]
        assert vertices[:, 2].min() - 0.01 <= depth.min() and depth.max() <= vertices[:, 2].max() + 0.01
        ys, xs = np.nonzero(pixels)
        np.testing.assert_array_equal(scene.boxes[i], [xs.min(), ys.min(), xs.max(), ys.max()])
        x0, y0, x1, y1 = scene.boxes_full[i]
        assert x0 <= xs.min() + 1 and y0 <= ys.min() + 1 and xs.max() <= x1 + 1 and ys.max() <= y1 + 1
    # The root is the hip midpoint of the joints, and the rest-pose height is the standing height.
    np.testing.assert_allclose(scene.joints[:, 11:13].mean(axis=1), scene.params.translation.numpy(), atol=1e-4)
    assert ((scene.height_m > 0.4) & (scene.height_m < 2.3)).all()


def test_a_seated_person_gets_a_seat(body_model, session_renderer):
    config = dataclasses.replace(SMALL, people=(1, 1), pose_families=("sitting",), pitch_deg=(0.0, 0.0), roll_deg=(0.0, 0.0))
    scene = sample_scene(body_model, session_renderer, 7, config)
    # The seat shows in the depth map but is nobody's pixel: neither floor nor the wall (>= 3 m
    # behind), yet as near as the person.
    floor_depth = scene.floor.depth_map(scene.K, scene.image.shape[1::-1])
    z = scene.vertices[0, :, 2]
    near_person = (scene.depth_m > z.min() - 0.3) & (scene.depth_m < z.max() + 0.3)
    seat = (scene.instance_ids < 0) & near_person & (np.abs(scene.depth_m / floor_depth - 1) > 1e-3)
    assert seat.sum() > 20


def test_save_load_round_trip(tmp_path, scene):
    save_sample(tmp_path, "00000001", scene)
    loaded = load_sample(tmp_path / "00000001.png")
    np.testing.assert_array_equal(loaded.image, scene.image)
    np.testing.assert_allclose(loaded.joints, scene.joints)
    np.testing.assert_allclose(loaded.vertices, scene.vertices, atol=1e-6)
    np.testing.assert_array_equal(loaded.instance_ids, scene.instance_ids)
    np.testing.assert_array_equal(loaded.depth_m, scene.depth_m)
    np.testing.assert_allclose(loaded.params.translation, scene.params.translation)
    assert loaded.pose_family == scene.pose_family
    assert loaded.floor.camera_height_m == pytest.approx(scene.floor.camera_height_m)


def test_write_dataset_is_atomic_and_listed(tmp_path, body_model, session_renderer):
    out = write_dataset(tmp_path / "set", 2, HELD_OUT_SEED_START, SMALL, body_model, session_renderer, progress=False)
    samples = list_samples(out)
    assert [p.stem for p in samples] == [f"{HELD_OUT_SEED_START:08d}", f"{HELD_OUT_SEED_START + 1:08d}"]
    assert (out / INDEX_FILE).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="did not write"):
        write_dataset(tmp_path / "mine", 1, 0, SMALL, body_model, session_renderer, progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(InputError, match="not a synth folder"):
        list_samples(tmp_path / "mine")
