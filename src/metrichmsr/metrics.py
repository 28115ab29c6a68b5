"""Pose and placement errors between predicted and ground-truth joints (pure functions)."""

from __future__ import annotations

import roma
import torch

from metrichmsr.joints import HIPS


def mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error after aligning the roots (hip midpoints).

    pred, gt (..., J, 3) metres, JOINT_NAMES order (J >= 13) -> (...,) metres.
    """
    pred = pred - pred[..., HIPS, :].mean(-2, keepdim=True)
    gt = gt - gt[..., HIPS, :].mean(-2, keepdim=True)
    return (pred - gt).norm(dim=-1).mean(-1)


def pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error after the best similarity transform (Procrustes).

    pred, gt (..., J, 3) metres -> (...,) metres. Measures pose and proportions only.
    """
    rotation, translation, scale = roma.rigid_points_registration(pred, gt, compute_scaling=True)
    aligned = scale[..., None, None] * pred @ rotation.transpose(-1, -2) + translation[..., None, :]
    return (aligned - gt).norm(dim=-1).mean(-1)
