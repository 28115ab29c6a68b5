"""The PETS real-footage benchmark's pure parts: the 1.70-m rule, PCK, and its refusals (no data, no network)."""

import numpy as np
import pytest

from metrichmsr.bench import pets, pets_twins, track_pets
from metrichmsr.bench.pets import RULE_HEIGHT_M, main, pck_counts, rule_ankle_point, rule_person

# A 768x576 camera with unequal focal lengths, so fx and fy cannot stand in for each other.
K = np.array([[1185.0, 0.0, 324.2], [0.0, 1194.6, 282.6], [0.0, 0.0, 1.0]])


def project(point: np.ndarray) -> np.ndarray:
    uvw = K @ point
    return uvw[:2] / uvw[2]


@pytest.mark.parametrize("ankle_px", [(324.2, 282.6), (700.0, 540.0), (15.0, 300.5)])
def test_rule_places_the_ankles_on_their_pixel_at_the_box_height_depth(ankle_px):
    bbox = np.array([600.0, 420.0, 640.0, 500.0])  # 80 px tall
    point = rule_ankle_point(K, bbox, np.array(ankle_px))
    assert point[2] == pytest.approx(K[1, 1] * RULE_HEIGHT_M / 80.0)
    np.testing.assert_allclose(project(point), ankle_px, atol=1e-9)


def test_rule_person_uses_the_ankle_midpoint_and_keeps_the_box():
    person = {
        "id": 3,
        "bbox": [100.0, 200.0, 130.0, 300.0],
        "keypoints2d": {"left_ankle": [110.0, 296.0, 0.9], "right_ankle": [120.0, 298.0, 0.2]},
    }
    placed = rule_person(person, K)
    assert placed["bbox"] == person["bbox"] and placed["height_m"] == RULE_HEIGHT_M
    ankle = np.array(placed["joints3d"]["left_ankle"])
    assert placed["joints3d"]["right_ankle"] == placed["joints3d"]["left_ankle"]
    np.testing.assert_allclose(project(ankle), [115.0, 297.0], atol=0.01)  # result.json rounds to 0.1 mm
    assert ankle[2] == pytest.approx(K[1, 1] * RULE_HEIGHT_M / 100.0, abs=1e-4)


def test_rule_refuses_a_flat_box():
    with pytest.raises(ValueError, match="height"):
        rule_ankle_point(K, np.array([0.0, 10.0, 5.0, 10.0]), np.array([2.0, 10.0]))


def person_seen(offsets_px: dict, visibility: dict | None = None) -> dict:
    """A person 20 m away whose joints project onto landmarks moved by ``offsets_px`` (name -> (du, dv))."""
    joints = {
        "nose": [0.0, -1.6, 20.0],
        "left_shoulder": [0.2, -1.3, 20.0],
        "left_ankle": [0.1, 0.0, 20.0],
        "left_big_toe": [0.1, 0.05, 20.0],  # not a BlazePose name: never scored
    }
    landmarks = {}
    for name in ("nose", "left_shoulder", "left_ankle"):
        u, v = project(np.array(joints[name])) + offsets_px.get(name, (0.0, 0.0))
        landmarks[name] = [u, v, (visibility or {}).get(name, 0.99)]
    landmarks["left_heel"] = [0.0, 0.0, 0.99]  # no joint of that name in this person: not scored
    return {"bbox": [300.0, 180.0, 340.0, 300.0], "joints3d": joints, "keypoints2d": landmarks}


def test_pck_counts_the_joint_beyond_the_threshold_as_wrong():
    # Box 40x120 px: the threshold is 0.05 x 120 = 6 px.
    assert pck_counts(person_seen({}), K) == (3, 3)
    assert pck_counts(person_seen({"nose": (0.0, 5.9)}), K) == (3, 3)
    assert pck_counts(person_seen({"nose": (4.3, 4.3)}), K) == (2, 3)  # 6.08 px
    assert pck_counts(person_seen({"left_ankle": (-7.0, 0.0), "nose": (0, 6.5)}), K) == (1, 3)


def test_pck_skips_landmarks_not_seen():
    person = person_seen({"nose": (30.0, 0.0)}, visibility={"nose": 0.5})  # visibility must exceed 0.5
    assert pck_counts(person, K) == (2, 2)


def test_pck_counts_a_joint_behind_the_camera_as_wrong():
    person = person_seen({})
    # Mirrored through the camera centre it divides out to the very same pixel.
    person["joints3d"]["nose"] = [-v for v in person["joints3d"]["nose"]]
    assert pck_counts(person, K) == (2, 3)


def test_missing_pets_dir_exits_2_with_one_line(tmp_path, capsys):
    code = main(["--pets-dir", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "--pets-dir" in err and "nowhere" in err
    assert not (tmp_path / "out").exists()


def test_dev_without_frames_exits_2(tmp_path, capsys):
    pets_dir = tmp_path / "pets"
    pets_dir.mkdir()
    for name in ("make_dev.py", "score.py"):
        (pets_dir / name).write_text("raise SystemExit('must not run')\n")
    code = main(["--pets-dir", str(pets_dir), "--dev", str(tmp_path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--dev" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bench", [pets, pets_twins, track_pets])
def test_missing_weights_exit_2_before_anything_runs(bench, tmp_path, capsys):
    """Every PETS benchmark checks its shared arguments before running anything."""
    pets_dir = tmp_path / "pets"
    pets_dir.mkdir()
    for name in ("make_dev.py", "score.py"):
        (pets_dir / name).write_text("raise SystemExit('must not run')\n")
    code = bench.main(["--pets-dir", str(pets_dir), "--weights", str(tmp_path / "none.pt"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--weights" in err and "none.pt" in err
    assert not (tmp_path / "out").exists()
