"""The camera-model baseline the benchmark compares the ray map with, and batched variants.

``recover`` places every person by their own rays through the true K (``"rays"``, the
method). The CLIFF-style baseline (``"box"``) fits each person as if their box were centred on
the optical axis, then moves them to the box's position by the box-centre offset at the fitted
depth: it knows the box and the focal length, not the rays, so it misses the perspective of
off-centre people.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from metrichmsr.result import posed_people

CameraModel = Literal["rays", "box"]


def fit_people_variants(
    recoverer,
    observations: list,
    variants: list[tuple[np.ndarray, CameraModel]],
    humanmoe: bool | None = None,
    refine: bool | None = None,
    image: np.ndarray | None = None,
) -> list[list]:
    """``Recoverer.fit_people`` for several (K (3, 3), camera model) variants of the same
    people, fitted as one batch: one list of ``PersonResult`` (ids 0..N-1) per variant.

    ``humanmoe`` and ``refine`` override the recoverer's stages (``Recoverer.body_params``).
    """
    if not observations:
        return [[] for _ in variants]
    n = len(observations)
    landmarks2d, boxes, cameras, offsets = [], [], [], []
    for K, camera_model in variants:
        kp = np.stack([o.landmarks2d for o in observations])
        box = np.stack([o.bbox for o in observations])
        offset_px = np.zeros((n, 2))
        if camera_model == "box":  # the people as seen by a camera turned onto their box centre's pixel
            offset_px = (box[:, :2] + box[:, 2:]) / 2 - K[:2, 2]
            kp = kp.copy()
            kp[..., :2] -= offset_px[:, None]
            box = box - np.tile(offset_px, 2)
        elif camera_model != "rays":
            raise ValueError(f"camera_model must be 'rays' or 'box', got {camera_model!r}")
        landmarks2d.append(kp)
        boxes.append(box)
        cameras.append(np.broadcast_to(K, (n, 3, 3)))
        offsets.append(offset_px / K[[0, 1], [0, 1]])
    repeated = list(observations) * len(variants)
    params = recoverer.body_params(
        repeated, np.concatenate(cameras), np.concatenate(landmarks2d), np.concatenate(boxes), humanmoe, refine, image
    )
    # "box": back from the box-centred camera to the box's place, at the fitted depth.
    offset = torch.as_tensor(np.concatenate(offsets), dtype=torch.float32, device=params.translation.device)
    depth = params.translation[:, 2:]
    params.translation = torch.cat((params.translation[:, :2] + offset * depth, depth), dim=-1)
    people = posed_people(recoverer.body, repeated, params)
    for i, person in enumerate(people):
        person.id = i % n  # ids count the people of one variant
    return [people[i * n : (i + 1) * n] for i in range(len(variants))]
