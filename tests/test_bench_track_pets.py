"""The PETS track benchmark's pure parts: runs on the floor, jitter, and its refusals (no data, no model)."""

import numpy as np
import pytest

from metrichmsr.bench.track_pets import floor_runs, hip_points, jitter_m, main

UP = np.array([0.0, -1.0, 0.0])
WINDOW = 9


def tracks_document(positions: dict[int, list], on_floor: dict[int, list[bool]] | None = None) -> dict:
    """A tracks.json document: track id -> per-frame ankle midpoint (3,) or None (not seen)."""
    frames = []
    for index in range(max(len(p) for p in positions.values())):
        people = []
        for track_id, points in positions.items():
            if index < len(points) and points[index] is not None:
                floor = True if on_floor is None else on_floor[track_id][index]
                ankle = list(points[index])
                people.append({"track_id": track_id, "on_floor": floor, "joints3d": {"left_ankle": ankle, "right_ankle": ankle}})
        frames.append({"index": index, "people": people})
    return {"frames": frames}


def walk(n: int, step_m: float = 0.056, noise_m: float = 0.0, seed: int = 0) -> list[np.ndarray]:
    """A steady straight walk on the floor (y = 1.5 below the camera), with optional noise on the floor."""
    rng = np.random.default_rng(seed)
    points = np.array([[-2.0 + step_m * t, 1.5, 20.0 + 0.5 * step_m * t] for t in range(n)])
    points[:, [0, 2]] += rng.normal(0.0, noise_m, (n, 2))
    return list(points)


def test_a_steady_walk_has_no_jitter_and_its_own_step():
    runs = floor_runs(tracks_document({0: walk(20)}), UP, WINDOW + 1)
    jitter, step = jitter_m(runs, WINDOW)
    assert len(runs) == 1 and jitter == pytest.approx(0.0, abs=1e-9)
    assert step == pytest.approx(0.056 * np.hypot(1.0, 0.5))


def test_jitter_reads_the_position_noise():
    jitter, _ = jitter_m(floor_runs(tracks_document({0: walk(4000, noise_m=0.02)}), UP, WINDOW + 1), WINDOW)
    # Noise of 2 cm on each floor axis: a step's is sqrt(2) * 2 cm a axis (less the window's mean),
    # and the median of its length 1.18 times that (Rayleigh).
    assert jitter == pytest.approx(np.sqrt(2) * 0.02 * np.sqrt(2 * np.log(2)), rel=0.1)


def test_a_wobble_slower_than_a_frame_is_jitter_too():
    """Smoothing turns frame noise into a wobble over a few frames: a step still strays from the walk's."""
    points = np.array(walk(200))
    points[:, 0] += 0.05 * np.sin(np.arange(200) * 2 * np.pi / 6)  # 5 cm, a 6-frame period
    jitter, _ = jitter_m(floor_runs(tracks_document({0: list(points)}), UP, WINDOW + 1), WINDOW)
    assert jitter > 0.02


def test_runs_break_where_a_track_is_unseen_or_off_the_floor():
    points = walk(30)
    points[10] = None  # unseen in frame 10
    off = [True] * 30
    off[20] = False  # seen off the floor in frame 20
    runs = floor_runs(tracks_document({4: points}, {4: off}), UP, 5)
    assert [len(r) for r in runs] == [10, 9, 9]
    short = floor_runs(tracks_document({4: walk(4)}), UP, 5)
    assert short == [] and np.isnan(jitter_m(short, WINDOW)[0])


def test_height_changes_along_up_are_not_jitter():
    points = walk(20)
    for t in range(0, 20, 2):
        points[t] = points[t] + 0.3 * UP  # bobbing up and down: the floor position is unchanged
    assert jitter_m(floor_runs(tracks_document({0: points}), UP, WINDOW + 1), WINDOW)[0] == pytest.approx(0.0, abs=1e-9)


def test_hip_runs_follow_the_translation_not_the_ankles():
    document = tracks_document({0: walk(20, noise_m=0.05)})
    for t, frame in enumerate(document["frames"]):
        frame["people"][0]["translation"] = list(walk(20)[t] + 0.9 * UP)  # a steady hip over noisy ankles
    hips = floor_runs(document, UP, WINDOW + 1, hip_points)
    assert jitter_m(hips, WINDOW)[0] == pytest.approx(0.0, abs=1e-9)
    assert jitter_m(floor_runs(document, UP, WINDOW + 1), WINDOW)[0] > 0.02


def test_missing_dev_clip_exits_2_with_one_line(tmp_path, capsys):
    pets_dir = tmp_path / "pets"
    pets_dir.mkdir()
    for name in ("make_dev.py", "score.py"):
        (pets_dir / name).write_text("raise SystemExit('must not run')\n")
    (tmp_path / "dev" / "frames").mkdir(parents=True)
    (tmp_path / "dev" / "camera.json").write_text("{}")  # the stills only: no clip/
    code = main(["--pets-dir", str(pets_dir), "--dev", str(tmp_path / "dev"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "clip/" in err
    assert not (tmp_path / "out").exists()


def test_bad_frame_count_exits_2(tmp_path, capsys):
    pets_dir = tmp_path / "pets"
    pets_dir.mkdir()
    for name in ("make_dev.py", "score.py"):
        (pets_dir / name).write_text("raise SystemExit('must not run')\n")
    assert main(["--pets-dir", str(pets_dir), "--frames", "0", "-o", str(tmp_path / "out")]) == 2
    assert "--frames" in capsys.readouterr().err and not (tmp_path / "out").exists()
