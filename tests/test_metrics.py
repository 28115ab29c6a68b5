import math

import numpy as np
import roma
import torch

from metrichmsr.metrics import mpjpe, pa_mpjpe


def _joints(batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, 23, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_perfect_prediction_has_zero_error():
    gt = _joints()
    assert torch.allclose(mpjpe(gt, gt), torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(pa_mpjpe(gt, gt), torch.zeros(3, dtype=torch.float64), atol=1e-9)


def test_mpjpe_ignores_translation_and_counts_the_rest():
    gt = _joints()
    shifted = gt + torch.tensor([1.0, -2.0, 5.0], dtype=torch.float64)
    assert torch.allclose(mpjpe(shifted, gt), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    # Move every joint but the hips by 3 cm along x: the roots stay, the error is 3 cm * 21/23.
    moved = gt.clone()
    moved[:, [i for i in range(23) if i not in (11, 12)], 0] += 0.03
    assert torch.allclose(mpjpe(moved, gt), torch.full((3,), 0.03 * 21 / 23, dtype=torch.float64))


def test_pa_mpjpe_ignores_similarity_transforms_but_not_pose():
    gt = _joints()
    rotation = roma.rotvec_to_rotmat(torch.tensor([0.3, -1.2, 0.7], dtype=torch.float64))
    similar = 1.7 * gt @ rotation.T + torch.tensor([0.5, 0.0, 9.0], dtype=torch.float64)
    assert torch.allclose(pa_mpjpe(similar, gt), torch.zeros(3, dtype=torch.float64), atol=1e-9)
    assert mpjpe(similar, gt).min() > 0.1
    bent = gt.clone()
    bent[:, 9] += 0.2  # one wrist 20 cm off
    error = pa_mpjpe(bent, gt)
    # Procrustes minimises squared distances, so the mean distance is bounded by the RMS of
    # the unaligned error: sqrt(|0.2 (1, 1, 1)|^2 / 23).
    assert (error > 0.005).all() and (error <= 0.2 * math.sqrt(3) / math.sqrt(23)).all()


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
        return {"case": case, "people": people, **dict.fromkeys(keys, 0.1), "spatial": False, "feet_to_floor_m": 0.02,
                "refine_s": 0.03, "planar_floor_absrel": floor_err, "camera_height_err": height_err}  # fmt: skip

    rows = [row(case, n, err, err / 2) for case in ("scale+shift", "scale+shift+drift") for n, err in ((1, 0.09), (1, 0.11), (3, 0.03))]
    lines = markdown_table(rows).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    floor_col, height_col = header.index("planar floor AbsRel, median (%)"), header.index("camera height off, median (%)")
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    assert cells["scale+shift"][floor_col] == "9.0" and cells["scale+shift"][height_col] == "4.5"
    assert cells["scale+shift, 1 people"][floor_col] == "10.0" and cells["scale+shift, 3 people"][floor_col] == "3.0"
    assert cells["scale+shift+drift, 3 people"][height_col] == "1.5"
