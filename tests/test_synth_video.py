"""Synthetic clips (``synth --video``) and the scoring of the ``track`` bench on them."""

import json
import math

import numpy as np
import pytest

from metrichmsr import cli
from metrichmsr.bench import track_synth
from metrichmsr.body import JOINT_NAMES
from metrichmsr.synth import HELD_OUT_SEED_START, level_axes
from metrichmsr.synth.dataset import INDEX_FILE
from metrichmsr.synth.video import VideoConfig, list_clips, load_truth, sample_clip, walk_path
from metrichmsr.tracks import FrameRecord, TrackedPerson

SMALL = VideoConfig(long_side_px=160, frames=8)


@pytest.mark.parametrize("turn_deg_s", [0.0, 30.0, -25.0])
def test_walk_path_keeps_speed_and_turn_rate(turn_deg_s):
    fps, speed = 12.0, 1.3
    times = np.arange(-10, 11) / fps
    xz, heading = walk_path(np.array([0.5, 6.0]), 0.7, speed, math.radians(turn_deg_s), times)
    np.testing.assert_allclose(xz[10], [0.5, 6.0])  # at time 0
    steps = np.diff(xz, axis=0)
    # A chord of a circle is a hair shorter than its arc: well within 0.1%.
    np.testing.assert_allclose(np.linalg.norm(steps, axis=1), speed / fps, rtol=1e-3)
    np.testing.assert_allclose(np.diff(heading), math.radians(turn_deg_s) / fps)
    mid_heading = (heading[1:] + heading[:-1]) / 2  # a chord points along the heading half-way
    np.testing.assert_allclose(
        steps / np.linalg.norm(steps, axis=1, keepdims=True), np.stack([np.sin(mid_heading), np.cos(mid_heading)], -1), atol=1e-9
    )


@pytest.fixture(scope="module")
def clip(body_model):
    return sample_clip(body_model, HELD_OUT_SEED_START + 2, SMALL)


def _level(clip, points):
    return points @ level_axes(clip.floor.up)  # camera frame -> level frame (X_level = axes.T @ X_cam)


def test_clip_people_walk_smoothly_facing_where_they_go(clip):
    n = len(clip.phenotype)
    assert SMALL.people[0] <= n <= SMALL.people[1] and clip.frames == SMALL.frames
    roots = _level(clip, clip.translation.numpy().astype(np.float64))  # (F, N, 3)
    steps = np.linalg.norm(np.diff(roots[..., [0, 2]], axis=0), axis=-1)  # along the floor
    np.testing.assert_allclose(steps, np.broadcast_to(clip.speed_mps / clip.fps, steps.shape), rtol=2e-3)
    # Hips bob a little with the stride, not more.
    assert np.abs(np.diff(roots[..., 1], axis=0)).max() < 0.05
    facing = _level(clip, (clip.global_rotation.numpy() @ np.array([0.0, 0.0, -1.0])).astype(np.float64))
    np.testing.assert_allclose(facing[..., 1], 0.0, atol=1e-5)  # upright
    going = np.diff(roots[..., [0, 2]], axis=0)
    going /= np.linalg.norm(going, axis=-1, keepdims=True)
    cos = np.sum(facing[:-1][..., [0, 2]] * going, axis=-1)
    # A turning walker's chord is half a frame's turn off its heading: 40 deg/s / 12 fps / 2 < 2 deg.
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 2.0


def test_clip_people_stand_on_the_floor_every_frame(body_model, clip):
    frames, n = clip.translation.shape[:2]
    out = body_model(
        clip.phenotype.repeat(frames, 1),
        clip.bone_rotvec.flatten(0, 1),
        clip.global_rotation.flatten(0, 1),
        clip.translation.flatten(0, 1),
    )
    lowest = clip.floor.height_above(out.vertices.numpy().astype(np.float64)).min(axis=1)
    assert np.abs(lowest).max() < 0.02
    # People stay apart and ahead of the camera.
    roots = _level(clip, clip.translation.numpy().astype(np.float64))
    assert roots[..., 2].min() >= SMALL.min_ahead_m
    gaps = [np.hypot(*(roots[:, i, [0, 2]] - roots[:, j, [0, 2]]).T).min() for i in range(n) for j in range(i)]
    assert min(gaps) >= SMALL.min_separation_m


@pytest.fixture(scope="module")
def clip_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("video") / "set"
    seed = str(HELD_OUT_SEED_START)
    assert cli.main(["synth", "--video", "--n", "2", "--frames", "4", "--long-side", "160", "--seed", seed, "-o", str(out)]) == 0
    return out


def test_synth_video_writes_clips_and_truth(clip_set):
    index = json.loads((clip_set / INDEX_FILE).read_text())
    assert index["kind"] == "video" and index["held_out"] and index["config"]["frames"] == 4
    clips = list_clips(clip_set)
    assert [c.name for c in clips] == ["01000000", "01000001"]
    for clip_dir in clips:
        truth = load_truth(clip_dir)
        frames = sorted(p.name for p in (clip_dir / "frames").iterdir())
        assert frames == [f"{f:06d}.png" for f in range(4)]
        m = len(truth["frame"])
        n = m // 4
        assert m == 4 * n and SMALL.people[0] <= n <= SMALL.people[1]
        assert truth["K"].shape == (3, 3) and float(truth["fps"]) == 12.0 and truth["floor_up"].shape == (3,)
        assert truth["root"].shape == (m, 3) and truth["joints"].shape == (m, len(JOINT_NAMES), 3)
        assert truth["boxes"].shape == truth["boxes_full"].shape == (m, 4)
        np.testing.assert_array_equal(truth["person_id"], np.tile(np.arange(n), 4))
        # Each person's height is the same all clip long.
        heights = truth["height_m"].reshape(4, n)
        np.testing.assert_allclose(heights, np.broadcast_to(heights[0], heights.shape), atol=1e-6)
        assert (heights > 0.5).all()


def test_truth_boxes_are_inside_the_image(clip_set):
    from PIL import Image

    for clip_dir in list_clips(clip_set):
        truth = load_truth(clip_dir)
        width, height = Image.open(clip_dir / "frames" / "000000.png").size
        seen = truth["boxes"].any(axis=1)
        assert seen.any()
        x0, y0, x1, y1 = truth["boxes"][seen].T
        assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= width - 1).all() and (y1 <= height - 1).all()
        assert (x0 <= x1).all() and (y0 <= y1).all()


def test_backdrop_stays_the_same_from_frame_to_frame(clip_set):
    from PIL import Image

    for clip_dir in list_clips(clip_set):
        truth = load_truth(clip_dir)
        images = [np.asarray(Image.open(p)) for p in sorted((clip_dir / "frames").glob("*.png"))]
        height, width = images[0].shape[:2]
        free = np.ones((height, width), dtype=bool)  # away from every person in every frame
        for x0, y0, x1, y1 in truth["boxes_full"]:
            free[max(int(y0) - 2, 0) : max(int(y1) + 3, 0), max(int(x0) - 2, 0) : max(int(x1) + 3, 0)] = False
        assert free.mean() > 0.2
        for image in images[1:]:
            np.testing.assert_array_equal(image[free], images[0][free])


def _snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["synth", "--n", "1", "--frames", "4"], "--frames and --fps are for --video"),
        (["synth", "--video", "--n", "2", "--seed", str(HELD_OUT_SEED_START - 1)], "straddles the held-out split"),
        (["synth", "--video", "--n", "1", "--frames", "0"], "--frames"),
        (["synth", "--video", "--n", "1", "--fps", "-3"], "--fps"),
    ],
)
def test_synth_video_refuses_bad_flags(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert cli.main([*argv, "-o", str(out)]) == cli.EXIT_INPUT_ERROR
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bench_refuses_bad_input_and_writes_nothing(tmp_path, capsys, clip_set):
    images = tmp_path / "images"
    images.mkdir()
    (images / INDEX_FILE).write_text(json.dumps({"seeds": [0, 0]}))  # an image set (older ones say no kind)
    out = tmp_path / "report"
    cases = [
        ([str(tmp_path / "missing")], "no such folder"),
        ([str(tmp_path)], "not a synth folder"),
        ([str(images)], "not of clips"),
        ([str(clip_set), "--clips", "0"], "--clips 0"),
        ([str(clip_set), "--detect-every", "0"], "--detect-every 0"),
    ]
    for argv, message in cases:
        assert track_synth.main([*argv, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()
    # ... and the still-image bench refuses a video set.
    assert cli.main(["bench", str(clip_set), "-o", str(out)]) == cli.EXIT_INPUT_ERROR
    assert "track_synth" in capsys.readouterr().err and not out.exists()


def _person(track_id, box, root, height_m):
    return TrackedPerson(track_id, np.array(box, float), 0.9, np.array(root, float), height_m, np.zeros((23, 3)), True)


def test_scoring_counts_an_id_switch_and_a_false_positive():
    """Two people walk three frames, a third is too small to be asked for. The tracker keeps
    person 0 as track 0, calls person 1 track 1 then track 4 (one switch), sees a ghost in
    frame 1 (one false positive) and follows the small person in frame 2 (neither right nor wrong)."""
    boxes = {0: [0, 0, 20, 60], 1: [100, 0, 120, 60], 2: [200, 0, 205, 10]}  # person 2: 10 px tall
    roots = {0: [0.0, 0.0, 5.0], 1: [1.0, 0.0, 5.0], 2: [2.0, 0.0, 20.0]}
    heights = {0: 1.7, 1: 1.6, 2: 1.0}
    truth = {
        "frame": np.repeat(np.arange(3), 3),
        "person_id": np.tile(np.arange(3), 3),
        "boxes": np.array([boxes[i] for _ in range(3) for i in range(3)], float),
        "root": np.array([roots[i] for _ in range(3) for i in range(3)]),
        "height_m": np.array([heights[i] for _ in range(3) for i in range(3)]),
    }
    # Person 1 is read 10% too far and 0.1 m short; person 0 exactly.
    p0 = lambda: _person(0, boxes[0], roots[0], 1.7)  # noqa: E731
    p1 = lambda track_id: _person(track_id, np.add(boxes[1], 1), np.multiply(roots[1], 1.1), 1.5)  # noqa: E731
    frames = [
        FrameRecord(0, 0.0, [p0(), p1(1)], None),
        FrameRecord(1, 0.1, [p0(), p1(1), _person(9, [300, 0, 320, 60], [3.0, 0.0, 5.0], 1.7)], None),
        FrameRecord(2, 0.2, [p0(), p1(4), _person(7, [200, 0, 206, 11], [2.0, 0.0, 20.0], 1.0)], None),
    ]
    score = track_synth.score_clip(truth, frames)
    [row, overall] = track_synth.summarize(["clip"], [score], [3], [1.5])
    assert row["num_switches"] == 1 and row["num_false_positives"] == 1 and row["num_misses"] == 0
    assert row["gt_people"] == 2 and row["tracks"] == 4
    assert row["mota"] == pytest.approx(1 - 2 / 6)
    assert row["recall"] == 1.0 and row["precision"] == pytest.approx(6 / 7)
    assert row["mean_iou"] == pytest.approx((3 + 3 * (19 * 59) / (2 * 1200 - 19 * 59)) / 6)  # person 1 a pixel off
    assert row["position_error_med"] == pytest.approx(0.05) and row["height_error_med_m"] == pytest.approx(0.05)
    assert sorted(score.tracks_per_person) == [1, 2] and row["tracks_per_person"] == 1.5
    assert row["frames_per_s"] == 2.0
    assert overall["mota"] == pytest.approx(row["mota"]) and overall["clip"] == "overall"
    table = track_synth.markdown_table([row, overall])
    assert table.count("\n") == 3 and "| clip | 3 | 2 | 4 | 0.667 |" in table and "| 0.94 |" in table


def test_scoring_leaves_a_frame_without_tracks_as_misses():
    truth = {
        "frame": np.array([0, 1]),
        "person_id": np.array([0, 0]),
        "boxes": np.array([[0, 0, 20, 60], [0, 0, 20, 60]], float),
        "root": np.array([[0.0, 0.0, 5.0]] * 2),
        "height_m": np.array([1.7, 1.7]),
    }
    score = track_synth.score_clip(truth, [FrameRecord(0, 0.0, [_person(0, [0, 0, 20, 60], [0, 0, 5], 1.7)], None)])
    [row, _] = track_synth.summarize(["c"], [score], [1], [1.0])
    assert row["num_misses"] == 1 and row["mota"] == pytest.approx(0.5)
