"""Camera intrinsics (user flags, EXIF, default), projection and the bounding camera ray map.

The ray map is MetricHMSR's first idea: every keypoint's and every box cell's unit ray
``normalize(K^-1 [u, v, 1])`` (:func:`unit_rays`, :func:`box_ray_map`), Fourier-encoded
(:func:`fourier_encode`), so a person crop keeps where it sat and what lens took it. Torch,
differentiable; the numpy z = 1 rays of the scene are ``metrichmsr.geometry``'s.

Conventions: OpenCV camera frame (x right, y down, z forward), metres; pixel coordinates
with integer values at pixel centres, so the centre of a W-pixel-wide image is (W - 1) / 2.
``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels of the image as decoded (after EXIF
orientation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np
import roma
import torch

from metrichmsr.errors import InputError

#: Horizontal field of view assumed when neither the user nor EXIF tells the focal length.
#: 60 deg sits between a phone's main camera (~69 deg) and a 35 mm lens on full frame (~54 deg).
DEFAULT_FOV_DEG = 60.0

CameraSource = Literal["user", "exif", "estimated", "default"]

# EXIF tag ids (Exif IFD).
_EXIF_IFD = 0x8769
_FOCAL_LENGTH = 0x920A
_FOCAL_35MM = 0xA405
_FOCAL_PLANE_X_RES = 0xA20E
_FOCAL_PLANE_RES_UNIT = 0xA210
_PIXEL_X_DIM = 0xA002
_PIXEL_Y_DIM = 0xA003
_MM_PER_UNIT = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # inch, cm, mm, micrometre


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels and where they came from.

    ``source``: ``user`` (flags or ``K=``), ``exif``, ``estimated`` (from the image itself,
    ``scene.focal``) or ``default`` (:data:`DEFAULT_FOV_DEG`). With ``estimated``,
    ``fov_interval_deg`` is the 68% interval of the horizontal field of view (degrees).
    ``note``: how it was estimated, or why the default was taken (one line, for the user).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    source: CameraSource
    fov_interval_deg: tuple[float, float] | None = None
    note: str | None = None

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 intrinsics matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def horizontal_fov_deg(self, width: int) -> float:
        return fov_from_focal(self.fx, width)

    def fov_text(self, width: int) -> str:
        """The horizontal field of view over ``width`` pixels, and its interval when estimated, for the user."""
        text = f"horizontal FOV {self.horizontal_fov_deg(width):.1f} deg"
        if self.fov_interval_deg is not None:
            text += " (68%: {:.1f}-{:.1f})".format(*self.fov_interval_deg)
        return text

    def to_dict(self) -> dict:
        out = {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "source": self.source}
        if self.fov_interval_deg is not None:
            out["fov_deg_68"] = [round(v, 2) for v in self.fov_interval_deg]
        if self.note is not None:
            out["note"] = self.note
        return out


def scale_K(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics (3, 3) of the image resized by ``sx`` in x and ``sy`` in y.

    A resize maps pixel edges to pixel edges, so with pixel centres at integers
    ``f' = s f`` and ``c' = s (c + 0.5) - 0.5``.
    """
    K = np.asarray(K, dtype=np.float64)
    return np.array(
        [
            [K[0, 0] * sx, 0.0, (K[0, 2] + 0.5) * sx - 0.5],
            [0.0, K[1, 1] * sy, (K[1, 2] + 0.5) * sy - 0.5],
            [0.0, 0.0, 1.0],
        ]
    )


def focal_from_fov(fov_deg: float, width: int) -> float:
    """Focal length in pixels for a horizontal field of view ``fov_deg`` over ``width`` pixels."""
    if not 0.0 < fov_deg < 180.0:
        raise InputError(f"--fov must be in (0, 180) degrees, got {fov_deg}")
    return (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)


def fov_from_focal(focal_px: float, width: int) -> float:
    """Horizontal field of view (degrees) of a focal length ``focal_px`` over ``width`` pixels."""
    return math.degrees(2.0 * math.atan(width / (2.0 * focal_px)))


def _exif_number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def focal_from_exif(exif: Mapping[int, object], width: int, height: int) -> float | None:
    """Focal length in pixels from EXIF tags, or None when EXIF does not say.

    ``exif`` maps EXIF tag ids to values (Pillow's ``Image.getexif().get_ifd(0x8769)`` merged
    with the base IFD). Uses the 35 mm-equivalent focal length (36 mm spans the image's long
    side), else the focal length in mm with the sensor's focal-plane resolution.
    """
    long_side = max(width, height)
    f35 = _exif_number(exif.get(_FOCAL_35MM))
    if f35 is not None:
        return f35 / 36.0 * long_side
    f_mm = _exif_number(exif.get(_FOCAL_LENGTH))
    x_res = _exif_number(exif.get(_FOCAL_PLANE_X_RES))
    unit = _exif_number(exif.get(_FOCAL_PLANE_RES_UNIT) or 2)  # EXIF default: inch
    unit_mm = _MM_PER_UNIT.get(int(unit)) if unit is not None else None
    if f_mm is None or x_res is None or unit_mm is None:
        return None
    f_px = f_mm * x_res / unit_mm
    # The focal-plane resolution refers to the stored full-size image; follow any resize.
    dims = [_exif_number(exif.get(t)) for t in (_PIXEL_X_DIM, _PIXEL_Y_DIM)]
    if all(d is not None for d in dims):
        f_px *= long_side / max(dims)  # type: ignore[type-var]
    return f_px


def resolve_intrinsics(
    width: int,
    height: int,
    *,
    intrinsics: tuple[float, float, float, float] | None = None,
    focal_px: float | None = None,
    fov_deg: float | None = None,
    exif: Mapping[int, object] | None = None,
) -> Intrinsics:
    """Intrinsics by source order: user flag, EXIF, default field of view (``DEFAULT_FOV_DEG``).

    At most one of ``intrinsics``, ``focal_px``, ``fov_deg`` may be given. Without a user
    principal point it is the image centre ``((W - 1) / 2, (H - 1) / 2)``.
    """
    if sum(v is not None for v in (intrinsics, focal_px, fov_deg)) > 1:
        raise InputError("give only one of --intrinsics, --focal, --fov")
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    if intrinsics is not None:
        fx, fy, cx, cy = (float(v) for v in intrinsics)
        if not all(math.isfinite(v) for v in (fx, fy, cx, cy)):
            raise InputError(f"intrinsics must be finite, got fx={fx}, fy={fy}, cx={cx}, cy={cy}")
        if fx <= 0 or fy <= 0:
            raise InputError(f"focal lengths must be positive, got fx={fx}, fy={fy}")
        return Intrinsics(fx, fy, cx, cy, "user")
    if focal_px is not None:
        if not (math.isfinite(focal_px) and focal_px > 0):
            raise InputError(f"--focal must be a positive number of pixels, got {focal_px}")
        return Intrinsics(focal_px, focal_px, cx, cy, "user")
    if fov_deg is not None:
        f = focal_from_fov(fov_deg, width)
        return Intrinsics(f, f, cx, cy, "user")
    f = focal_from_exif(exif, width, height) if exif else None
    if f is not None:
        return Intrinsics(f, f, cx, cy, "exif")
    f = focal_from_fov(DEFAULT_FOV_DEG, width)
    return Intrinsics(f, f, cx, cy, "default")


def project(K: torch.Tensor, points: torch.Tensor, min_depth: float = 1e-3) -> torch.Tensor:
    """Pinhole projection. K (..., 3, 3), points (..., N, 3) camera frame -> (..., N, 2) pixels."""
    z = points[..., 2:3].clamp(min=min_depth)
    xy = points[..., :2] / z
    fx, fy = K[..., 0, 0, None], K[..., 1, 1, None]
    cx, cy = K[..., 0, 2, None], K[..., 1, 2, None]
    return torch.stack((fx * xy[..., 0] + cx, fy * xy[..., 1] + cy), dim=-1)


def unit_rays(K: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Unit rays ``normalize(K^-1 [u, v, 1])``. K (..., 3, 3), uv (..., N, 2) -> (..., N, 3)."""
    fx, fy = K[..., 0, 0, None], K[..., 1, 1, None]
    cx, cy = K[..., 0, 2, None], K[..., 1, 2, None]
    x = (uv[..., 0] - cx) / fx
    y = (uv[..., 1] - cy) / fy
    rays = torch.stack((x, y, torch.ones_like(x)), dim=-1)
    return torch.nn.functional.normalize(rays, dim=-1)


def crop_rotation(K: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Rotation of the virtual camera that looks at pixel ``uv`` into the real camera frame.

    K (..., 3, 3), uv (..., 2) -> (..., 3, 3), the minimal rotation taking the optical axis onto
    the pixel's ray: ``X_cam = R @ X_crop`` for points a crop-based network (BlazePose) reports
    in the frame of a camera looking along the crop centre's ray.
    """
    ray = unit_rays(K, uv[..., None, :])[..., 0, :]
    z_axis = torch.zeros_like(ray)
    z_axis[..., 2] = 1.0
    axis = torch.linalg.cross(z_axis, ray)
    angle = torch.atan2(axis.norm(dim=-1), ray[..., 2])
    return roma.rotvec_to_rotmat(torch.nn.functional.normalize(axis, dim=-1) * angle[..., None])


def box_grid(box: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pixel centres of an ``size = (h, w)`` grid of cells over ``box`` (..., 4) [x0, y0, x1, y1].

    Returns (..., h * w, 2) pixel coordinates, row-major. The box spans pixel edges
    ``x0 - 0.5 .. x1 + 0.5`` so a box of one pixel has that pixel's centre as its one cell.
    """
    h, w = size
    s = (torch.arange(w, dtype=box.dtype, device=box.device) + 0.5) / w
    t = (torch.arange(h, dtype=box.dtype, device=box.device) + 0.5) / h
    x0, y0, x1, y1 = (box[..., i, None] for i in range(4))
    u = (x0 - 0.5) + s * (x1 - x0 + 1.0)  # (..., w)
    v = (y0 - 0.5) + t * (y1 - y0 + 1.0)  # (..., h)
    uu = u[..., None, :].expand(*u.shape[:-1], h, w)
    vv = v[..., :, None].expand(*v.shape[:-1], h, w)
    return torch.stack((uu, vv), dim=-1).flatten(-3, -2)


def box_ray_map(K: torch.Tensor, box: torch.Tensor, size: tuple[int, int] = (16, 16)) -> torch.Tensor:
    """The bounding camera ray map: unit rays on an ``(h, w)`` grid over the box.

    K (..., 3, 3), box (..., 4) -> (..., h, w, 3). It depends on the box in full-image pixels
    and on K only, never on the resolution the crop is later resampled to, so it re-attaches
    the box position, its size and the focal length to the crop.
    """
    rays = unit_rays(K, box_grid(box, size))
    return rays.unflatten(-2, size)


def fourier_encode(x: torch.Tensor, num_bands: int = 8, max_frequency: float = 32.0) -> torch.Tensor:
    """Fourier features ``[x, sin(pi f x), cos(pi f x)]`` with log-spaced frequencies f in [1, max].

    x (..., D) -> (..., D * (1 + 2 * num_bands)).
    """
    freqs = torch.logspace(0.0, math.log10(max_frequency), num_bands, dtype=x.dtype, device=x.device)
    angles = math.pi * x[..., None] * freqs  # (..., D, F)
    features = torch.cat((x[..., None], angles.sin(), angles.cos()), dim=-1)
    return features.flatten(-2)
