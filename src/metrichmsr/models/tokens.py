"""HumanMoE's inputs: what the network sees of each person, built from BlazePose's output.

:class:`HumanInputs` holds B people's keypoints, world landmarks, boxes and intrinsics (and
optionally silhouettes and image crops); :func:`inputs_from_blazepose` builds it from the
detector's arrays; the silhouette and the image crop are read over one square window around
the box (:func:`silhouette_window`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from metrichmsr.joints import JOINT_NAMES
from metrichmsr.perception.landmarks import BLAZEPOSE_FOR_JOINT

_NUM_JOINTS = len(JOINT_NAMES)
#: The silhouette window's side in units of the box's longer side: the person box stops at the
#: landmarks (+10%), and the crown of the head lies above the highest one (the eyes).
SILHOUETTE_SPAN = 1.4


@dataclass
class HumanInputs:
    """What HumanMoE sees of B people (float tensors on one device).

    keypoints2d: (B, 23, 3) pixel u, v (integer values at pixel centres) and visibility in
        [0, 1], JOINT_NAMES order; visibility 0 marks a joint the detector has no point for
        (its u, v are then ignored).
    world3d: (B, 23, 3) BlazePose world landmarks, metres, hip-centred, in the crop's
        camera-aligned frame (not rotated into the camera frame); their scale is normalised by
        BlazePose, so it says nothing about body size; zeros where absent.
    bbox: (B, 4) person box [x0, y0, x1, y1], pixels.
    K: (B, 3, 3) intrinsics, pixels.
    silhouette: optional (B, G, G) person probability in [0, 1] on a grid over
        ``silhouette_window(bbox)`` (row-major, top row first); all zero where no segmentation
        was had. None: nobody's segmentation (a model with silhouette tokens reads zeros).
    crop: optional (B, 3, S, S) RGB in [0, 1] of the image over the same window
        (``crop_from_image``); only a model with a ``backbone`` reads it, and needs it.
    """

    keypoints2d: torch.Tensor
    world3d: torch.Tensor
    bbox: torch.Tensor
    K: torch.Tensor
    silhouette: torch.Tensor | None = None
    crop: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.keypoints2d.shape[0]

    def map_tensors(self, change) -> HumanInputs:
        """A copy with ``change`` applied to every tensor (None stays None)."""
        return HumanInputs(*(None if value is None else change(value) for value in (getattr(self, f.name) for f in fields(self))))

    def to(self, device: torch.device | str) -> HumanInputs:
        return self.map_tensors(lambda value: value.to(device))

    def select(self, index: torch.Tensor) -> HumanInputs:
        """The people at ``index`` (a (B',) index or (B,) bool tensor)."""
        return self.map_tensors(lambda value: value[index])

    @classmethod
    def cat(cls, parts: list[HumanInputs]) -> HumanInputs:
        """One batch of several; an optional field is kept only when every part has it."""
        joined = []
        for f in fields(cls):
            values = [getattr(p, f.name) for p in parts]
            joined.append(None if any(v is None for v in values) else torch.cat(values))
        return cls(*joined)

    def validate(self) -> None:
        """Raise ValueError naming the first field whose shape is not as documented."""
        b = self.keypoints2d.shape[0] if self.keypoints2d.dim() == 3 else -1
        expected = {
            "keypoints2d": (b, _NUM_JOINTS, 3),
            "world3d": (b, _NUM_JOINTS, 3),
            "bbox": (b, 4),
            "K": (b, 3, 3),
        }
        if self.silhouette is not None:
            side = self.silhouette.shape[-1]
            expected["silhouette"] = (b, side, side)
        if self.crop is not None:
            side = self.crop.shape[-1]
            expected["crop"] = (b, 3, side, side)
        for name, shape in expected.items():
            value = getattr(self, name)
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"HumanInputs.{name} must have shape (B, {', '.join(map(str, shape[1:]))}), got {tuple(value.shape)}"
                )

    @property
    def box_centre(self) -> torch.Tensor:
        """(B, 2) pixel centre of each box."""
        return (self.bbox[:, :2] + self.bbox[:, 2:]) / 2

    @property
    def box_height(self) -> torch.Tensor:
        """(B,) box height in pixels, at least one pixel."""
        return (self.bbox[:, 3] - self.bbox[:, 1]).clamp(min=1.0)


def inputs_from_blazepose(
    landmarks2d: np.ndarray | torch.Tensor,
    world_landmarks: np.ndarray | torch.Tensor,
    bbox: np.ndarray | torch.Tensor,
    K: np.ndarray | torch.Tensor,
    silhouette: np.ndarray | torch.Tensor | None = None,
) -> HumanInputs:
    """HumanInputs of N people from BlazePose's 33 landmarks (float32, on the inputs' device).

    landmarks2d (N, 33, 3) [u_px, v_px, visibility]; world_landmarks (N, 33, 3) metres, crop
    frame (kept as is: the ray tokens tell the model where the crop looked); bbox (N, 4);
    K (3, 3) or (N, 3, 3); silhouette: optional (N, G, G) (``silhouette_from_segmentation``).
    Joints BlazePose has no point for (``metrichmsr.perception.landmarks.BLAZEPOSE_FOR_JOINT``) get zeros.
    """
    kp = torch.as_tensor(landmarks2d, dtype=torch.float32)
    n = kp.shape[0]
    if tuple(kp.shape) != (n, 33, 3):
        raise ValueError(f"landmarks2d must have shape (N, 33, 3), got {tuple(kp.shape)}")
    world = torch.as_tensor(world_landmarks, dtype=torch.float32, device=kp.device)
    if tuple(world.shape) != (n, 33, 3):
        raise ValueError(f"world_landmarks must have shape ({n}, 33, 3), got {tuple(world.shape)}")
    box = torch.as_tensor(bbox, dtype=torch.float32, device=kp.device)
    if tuple(box.shape) != (n, 4):
        raise ValueError(f"bbox must have shape ({n}, 4), got {tuple(box.shape)}")
    K = torch.as_tensor(K, dtype=torch.float32, device=kp.device)
    if tuple(K.shape) == (3, 3):
        K = K.expand(n, 3, 3)
    if tuple(K.shape) != (n, 3, 3):
        raise ValueError(f"K must have shape (3, 3) or ({n}, 3, 3), got {tuple(K.shape)}")
    index = [BLAZEPOSE_FOR_JOINT[name] for name in JOINT_NAMES]
    gather = torch.tensor([i if i is not None else 0 for i in index], device=kp.device)
    present = torch.tensor([i is not None for i in index], dtype=torch.float32, device=kp.device)[:, None]
    if silhouette is not None:
        silhouette = torch.as_tensor(silhouette, dtype=torch.float32, device=kp.device)
    inputs = HumanInputs(kp[:, gather] * present, world[:, gather] * present, box, K.contiguous(), silhouette)
    inputs.validate()
    return inputs


def silhouette_window(bbox: torch.Tensor) -> torch.Tensor:
    """(B, 4) ``[x0, y0, x1, y1]`` outer edges (pixel-centre coordinates) of the square the
    silhouette grid covers: centred on each (B, 4) box, SILHOUETTE_SPAN times its longer side."""
    centre = (bbox[:, :2] + bbox[:, 2:]) / 2
    half = SILHOUETTE_SPAN / 2 * (bbox[:, 2:] - bbox[:, :2]).amax(dim=-1, keepdim=True).clamp(min=1.0)
    return torch.cat((centre - half, centre + half), dim=-1)


def silhouette_from_segmentation(
    segmentation: np.ndarray | None, segmentation_box: np.ndarray | None, bbox: np.ndarray, grid: int
) -> torch.Tensor:
    """(grid, grid) float32 silhouette of one person for ``HumanInputs.silhouette``.

    segmentation: (S, S') person probability over the rectangle whose outer edges are
    ``segmentation_box`` (4,) [x0, y0, x1, y1] (pixel-centre coordinates), e.g. BlazePose's
    mask of its crop (``PersonObservation.segmentation``); bbox (4,) the person's box.
    Bilinear; zero outside the segmentation, and everywhere when there is none (None).
    """
    if segmentation is None:
        return torch.zeros(grid, grid)
    window = silhouette_window(torch.as_tensor(bbox, dtype=torch.float64)[None])[0]
    cells = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid
    x = window[0] + cells * (window[2] - window[0])
    y = window[1] + cells * (window[3] - window[1])
    box = torch.as_tensor(segmentation_box, dtype=torch.float64)
    # grid_sample's -1 and 1 are the segmentation's outer edges (align_corners=False).
    gx = 2 * (x - box[0]) / (box[2] - box[0]) - 1
    gy = 2 * (y - box[1]) / (box[3] - box[1]) - 1
    where = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None].float()  # (1, G, G, 2)
    mask = torch.as_tensor(segmentation, dtype=torch.float32)[None, None]
    return F.grid_sample(mask, where, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0]


def crop_from_image(image: np.ndarray, bbox: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, size, size) float32 RGB in [0, 1] of an (H, W, 3) uint8 image over each of the
    (N, 4) boxes' ``silhouette_window``, for ``HumanInputs.crop``. Bilinear; zero outside the image.
    Only the pixels under each window are converted, so a huge photo costs no more than a small one."""
    height, width = image.shape[:2]
    windows = silhouette_window(torch.as_tensor(bbox, dtype=torch.float64).reshape(-1, 4))
    cells = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    crops = []
    for x0, y0, x1, y1 in windows.tolist():
        # The window's pixels (one more on each side for the bilinear taps), inside the image.
        left, top = max(0, math.floor(x0)), max(0, math.floor(y0))
        right, bottom = min(width, math.ceil(x1) + 1), min(height, math.ceil(y1) + 1)
        if right <= left or bottom <= top:
            crops.append(torch.zeros(3, size, size))
            continue
        region = torch.as_tensor(np.ascontiguousarray(image[top:bottom, left:right])).permute(2, 0, 1)[None].float() / 255
        # grid_sample's -1 and 1 are the region's outer edges (align_corners=False).
        gx = 2 * (x0 + cells * (x1 - x0) - left + 0.5) / (right - left) - 1
        gy = 2 * (y0 + cells * (y1 - y0) - top + 0.5) / (bottom - top) - 1
        where = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None].float()
        crops.append(F.grid_sample(region, where, mode="bilinear", padding_mode="zeros", align_corners=False)[0])
    return torch.stack(crops) if crops else torch.zeros(0, 3, size, size)


def inputs_from_observations(observations: list, K: np.ndarray | torch.Tensor, silhouette_grid: int) -> HumanInputs:
    """HumanInputs of N (>= 1) ``perception.PersonObservation``'s as they were detected: their
    landmarks, boxes and (with ``silhouette_grid``) silhouettes; K (3, 3) or (N, 3, 3)."""
    return inputs_from_blazepose(
        np.stack([o.landmarks2d for o in observations]),
        np.stack([o.world_landmarks for o in observations]),
        np.stack([o.bbox for o in observations]),
        K,
        silhouettes(observations, silhouette_grid),
    )


def silhouettes(observations: list, grid: int) -> torch.Tensor | None:
    """(N, grid, grid) HumanMoE silhouettes of N ``perception.PersonObservation``'s BlazePose segmentations (zeros for
    anyone without one); None when ``grid`` is 0 (a model without silhouette tokens)."""
    if not grid:
        return None
    return torch.stack([silhouette_from_segmentation(o.segmentation, o.segmentation_box, o.bbox, grid) for o in observations])
