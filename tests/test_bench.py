"""The benchmark's scorer, report and methods: exact on perfect and perturbed predictions."""

import csv
from dataclasses import dataclass, replace

import numpy as np
import pytest

from metrichmsr.bench.report import markdown_table, write_csv, write_plots
from metrichmsr.bench.run import FIXED_FOV_DEG, method_camera, summary_line
from metrichmsr.bench.score import ScoreConfig, score_image
from metrichmsr.perception import match_boxes
from metrichmsr.synth import HELD_OUT_SEED_START, SceneConfig, sample_scene


@dataclass
class Person:
    bbox: np.ndarray
    translation: np.ndarray
    height_m: float
    joints3d: np.ndarray
    vertices: np.ndarray


@pytest.fixture(scope="module")
def scene(body_model, session_renderer):
    config = SceneConfig(long_side_px=480, people=(3, 3), distance_m=(2.0, 6.0), fov_deg=(50.0, 70.0), min_separation_m=1.5)
    return sample_scene(body_model, session_renderer, HELD_OUT_SEED_START + 11, config)


def perfect(scene, scale: float = 1.0) -> list[Person]:
    """Ground truth as predictions, everything scaled by ``scale`` about the camera centre."""
    height, width = scene.image.shape[:2]
    boxes = np.clip(scene.boxes_full, 0, [width - 1, height - 1] * 2)
    return [
        Person(
            boxes[i],
            scale * scene.params.translation[i].numpy(),
            float(scene.height_m[i]),
            scale * scene.joints[i],
            scale * scene.vertices[i],
        )
        for i in range(len(scene.height_m))
    ]


def test_scene_has_people_to_score(scene):
    assert len(score_image(scene, [])) >= 2


def test_perfect_predictions_score_zero(scene):
    rows = score_image(scene, perfect(scene)[::-1], method="m", image="x")  # order must not matter
    assert rows and all(r["found"] for r in rows)
    for r in rows:
        assert r["method"] == "m" and r["image"] == "x"
        for key in ("depth_ratio_err", "root_err_m", "height_err_m", "mpjpe_mm", "pve_mm"):
            assert r[key] == pytest.approx(0.0, abs=1e-3), key
        assert r["pa_mpjpe_mm"] == pytest.approx(0.0, abs=0.05)


def test_depths_times_1_1_give_10_percent(scene):
    rows = score_image(scene, perfect(scene, 1.1))
    truth = {r["person"]: r for r in score_image(scene, perfect(scene))}
    for r in rows:
        assert r["depth_ratio_err"] == pytest.approx(0.10, abs=1e-6)
        root = scene.params.translation[r["person"]].numpy()
        assert r["root_err_m"] == pytest.approx(0.1 * np.linalg.norm(root), rel=1e-5)
        assert r["pa_mpjpe_mm"] == pytest.approx(0.0, abs=0.05)  # a similarity transform: no pose error
        assert r["mpjpe_mm"] > 10 and r["pve_mm"] > 10  # bodies 10% larger about their root
        assert r["height_err_m"] == truth[r["person"]]["height_err_m"]


def test_missing_and_misplaced_predictions_are_not_found(scene):
    people = perfect(scene)
    far_away = replace(people[1], bbox=people[1].bbox + 500)
    rows = {r["person"]: r for r in score_image(scene, [people[0], far_away])}
    assert rows[0]["found"]
    assert not any(r["found"] for i, r in rows.items() if i != 0)
    assert "depth_ratio_err" not in rows[1]


def test_matching_is_one_to_one():
    truth = np.array([[0, 0, 10, 20], [100, 0, 110, 20.0]])
    # Two predictions on the first person: only the better one matches it.
    predictions = np.array([[1, 1, 10, 20], [0, 0, 10, 20], [101, 0, 110, 20.0]])
    assert match_boxes(predictions, truth, 0.5) == {0: 1, 1: 2}
    assert match_boxes(predictions[:0], truth, 0.5) == {}
    assert match_boxes(predictions, truth, 0.99) == {0: 1}


def test_small_people_are_not_scored(scene):
    heights = scene.boxes[:, 3] - scene.boxes[:, 1]
    rows = score_image(scene, perfect(scene), ScoreConfig(min_box_px=float(np.sort(heights)[1])))
    assert len(rows) == len(heights) - 1


def test_method_cameras():
    K = np.array([[800.0, 0, 300], [0, 800.0, 250], [0, 0, 1]])
    assert method_camera("full", K, (640, 480)) == (K, "rays")
    assert method_camera("box-true-focal", K, (640, 480)) == (K, "box")
    fixed, model = method_camera("fixed-fov", K, (640, 480))
    assert model == "rays" and 2 * np.degrees(np.arctan(320 / fixed[0, 0])) == pytest.approx(FIXED_FOV_DEG)
    assert fixed[0, 2] == pytest.approx(319.5)
    cliff, model = method_camera("box-only", K, (640, 480))
    assert model == "box" and cliff[0, 0] == pytest.approx(800.0)  # the diagonal of 640 x 480
    with pytest.raises(ValueError, match="unknown method"):
        method_camera("oracle", K, (640, 480))


def test_report_table_csv_and_plots(tmp_path, scene):
    rows = score_image(scene, perfect(scene), method="full", image="a") + score_image(
        scene, perfect(scene, 1.2), method="fixed-fov", image="a"
    )
    table = markdown_table(rows, ["full", "fixed-fov"], {"full": 1.5, "fixed-fov": 1.6})
    lines = table.splitlines()
    full_all = next(line for line in lines if line.startswith("| full | all |"))
    fixed_all = next(line for line in lines if line.startswith("| fixed-fov | all |"))
    assert "| 0.0 | 0.0 |" in full_all and "| 20.0 | 20.0 |" in fixed_all and fixed_all.endswith("| 1.60 |")
    assert any("deg FOV" in line for line in lines) and any(" m |" in line for line in lines)
    assert "full 0.0%" in summary_line(rows, ["full", "fixed-fov"]) and "fixed-fov 20.0%" in summary_line(
        rows, ["full", "fixed-fov"]
    )
    write_csv(rows, tmp_path / "results.csv")
    with open(tmp_path / "results.csv") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    paths = write_plots(rows, ["full", "fixed-fov"], tmp_path)
    assert len(paths) == 3 and all(p.stat().st_size > 5000 for p in paths)


def test_height_evidence_features_carry_no_metric_size():
    """The image cannot give metres: the features of a body and of the same body twice as big
    (and elsewhere) match, and BlazePose's noise moves them in proportion to its scale."""
    from metrichmsr.bench.height_evidence import keypoint_features, least_squares_mae

    rng = np.random.default_rng(0)
    joints = rng.normal(size=(5, 21, 2))
    core_std = np.full(21, 0.02)
    clean = keypoint_features(joints, core_std, 0.0, rng)
    np.testing.assert_allclose(keypoint_features(2.0 * joints + 3.0, core_std, 0.0, rng), clean, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(clean, axis=1), 1.0)
    moved = [np.abs(keypoint_features(joints, core_std, scale, rng) - clean).mean() for scale in (0.5, 1.0)]
    assert 0 < moved[0] < moved[1] < 3 * moved[0]

    # Least squares finds an affine relation exactly.
    x = rng.normal(size=(50, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 1.7
    assert least_squares_mae(x[:40], y[:40], x[40:], y[40:]) < 1e-9


def test_scene_table_splits_the_planar_floor_by_people():
    from metrichmsr.bench.depth_bench import markdown_table

    def row(case: str, people: int, floor_err: float, height_err: float) -> dict:
        keys = ("corrupted_absrel", "global_absrel", "refined_absrel", "corrupted_delta1", "global_delta1", "refined_delta1")
        return {
            "case": case,
            "people": people,
            **dict.fromkeys(keys, 0.1),
            "spatial": False,
            "feet_to_floor_m": 0.02,
            "refine_s": 0.03,
            "planar_floor_absrel": floor_err,
            "camera_height_err": height_err,
        }

    rows = [
        row(case, n, err, err / 2)
        for case in ("scale+shift", "scale+shift+drift")
        for n, err in ((1, 0.09), (1, 0.11), (3, 0.03))
    ]
    lines = markdown_table(rows).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    floor_col, height_col = header.index("planar floor AbsRel, median (%)"), header.index("camera height off, median (%)")
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    assert cells["scale+shift"][floor_col] == "9.0" and cells["scale+shift"][height_col] == "4.5"
    assert cells["scale+shift, 1 people"][floor_col] == "10.0" and cells["scale+shift, 3 people"][floor_col] == "3.0"
    assert cells["scale+shift+drift, 3 people"][height_col] == "1.5"


def test_adult_heights_weight_is_the_slope_of_the_truth_on_the_read():
    """Reads that are the truth plus independent noise as large as the truth's own spread keep
    half of it; the depth errors follow each person's height scaled toward the median."""
    from metrichmsr.bench.adult_heights import pulled_depth_errors, read_weight, report
    from metrichmsr.population import ADULT_MEDIAN_HEIGHT_M

    rng = np.random.default_rng(0)
    true = ADULT_MEDIAN_HEIGHT_M * np.exp(rng.normal(0, 0.06, 4000))
    read = true * np.exp(rng.normal(0, 0.06, 4000))
    assert read_weight(true, read) == pytest.approx(0.5, abs=0.05)
    assert read_weight(true, true) == pytest.approx(1.0)
    rows = [
        {"true_height_m": 1.7, "true_adult": True, "read_height_m": 1.5, "read_adult": a, "depth_err": -0.1}
        for a in (True, False, True)
    ]
    assert pulled_depth_errors(rows, 1.0) == pytest.approx([-0.1] * 3)
    assert pulled_depth_errors(rows[:1], 0.0)[0] == pytest.approx(0.9 * ADULT_MEDIAN_HEIGHT_M / 1.5 - 1)
    table = report(rows + [{**rows[0], "read_height_m": 1.6}])
    assert "| true adults | 4 |" in table and "| read as adults | 3 |" in table and table.startswith("| people |")
