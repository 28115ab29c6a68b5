import math

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
