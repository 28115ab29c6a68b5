"""Score recovered people against synthetic ground truth: one row per ground-truth person.

Predictions are matched to ground-truth people one-to-one by box IoU (Hungarian). The
ground-truth box is the whole projected body clipped to the image, as detectors box the
whole person even where it is occluded. People whose visible box is under
``min_box_px`` tall are not scored (the detector's documented range starts at ~60 px).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch

from metrichmsr.body import ADULT_AGE, PHENOTYPE_NAMES
from metrichmsr.camera import fov_from_focal
from metrichmsr.metrics import mpjpe, pa_mpjpe
from metrichmsr.perception import match_boxes
from metrichmsr.synth.people import SyntheticImage

_AGE = PHENOTYPE_NAMES.index("age")


class Prediction(Protocol):
    """What scoring reads of a recovered person (``result.PersonResult`` has it)."""

    bbox: np.ndarray  # (4,) px
    translation: np.ndarray  # (3,) root, m
    height_m: float
    joints3d: np.ndarray  # (23, 3) m
    vertices: np.ndarray  # (V, 3) m


@dataclass(frozen=True)
class ScoreConfig:
    min_iou: float = 0.5
    min_box_px: float = 60.0


def _root_aligned_error_m(pred: np.ndarray, true: np.ndarray, root_pred: np.ndarray, root_true: np.ndarray) -> float:
    """Mean distance (m) between corresponding points (N, 3) once both roots are at the origin."""
    return float(np.linalg.norm((pred - root_pred) - (true - root_true), axis=-1).mean())


def score_image(scene: SyntheticImage, people: Sequence[Prediction], config: ScoreConfig = ScoreConfig(), **fields) -> list[dict]:
    """Rows (one per scored ground-truth person) of errors; ``fields`` are copied into each row.

    Row keys: person, fov_deg, distance_m (true root depth z), off_axis_deg (angle of the true
    root's ray from the optical axis), box_height_px, adult, pose_family, found, and when found:
    depth_ratio_err (z_pred / z_true - 1), root_err_m, height_err_m (signed), mpjpe_mm,
    pa_mpjpe_mm, pve_mm (root-aligned vertex error).
    """
    height, width = scene.image.shape[:2]
    full = np.clip(scene.boxes_full, 0, [width - 1, height - 1, width - 1, height - 1])
    matches = match_boxes(np.array([p.bbox for p in people]).reshape(-1, 4), full, config.min_iou)
    fov_deg = fov_from_focal(scene.K[0, 0], width)
    rows = []
    for i, root in enumerate(scene.params.translation.numpy().astype(np.float64)):
        box_height = scene.boxes[i, 3] - scene.boxes[i, 1]
        if box_height < config.min_box_px:
            continue
        row = dict(fields)
        row.update(
            person=i,
            fov_deg=fov_deg,
            distance_m=float(root[2]),
            off_axis_deg=math.degrees(math.acos(root[2] / np.linalg.norm(root))),
            box_height_px=float(box_height),
            adult=bool(scene.params.phenotype[i, _AGE] >= ADULT_AGE),
            pose_family=scene.pose_family[i] if scene.pose_family else "",
            found=i in matches,
        )
        if row["found"]:
            p = people[matches[i]]
            joints = torch.as_tensor(np.stack((p.joints3d[:17], scene.joints[i, :17])), dtype=torch.float64)
            row.update(
                depth_ratio_err=float(p.translation[2] / root[2] - 1),
                root_err_m=float(np.linalg.norm(p.translation - root)),
                height_err_m=float(p.height_m - scene.height_m[i]),
                mpjpe_mm=1000 * float(mpjpe(joints[0], joints[1])),
                pa_mpjpe_mm=1000 * float(pa_mpjpe(joints[0], joints[1])),
                pve_mm=1000 * _root_aligned_error_m(p.vertices, scene.vertices[i], p.translation, root),
            )
        rows.append(row)
    return rows
