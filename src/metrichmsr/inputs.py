"""Checks of what a user hands in, shared by the command line and ``Recoverer.infer``.

Every check raises :class:`~metrichmsr.errors.InputError` with a one-line reason and imports
nothing heavy (no torch), so the command line runs them all before any model loads.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from metrichmsr.errors import InputError
from metrichmsr.image_io import MIN_IMAGE_SIDE

#: Highest camera the floor step accepts, metres: above a tall mast or a high-rise window a
#: value is a typo (millimetres, feet) rather than a camera.
MAX_CAMERA_HEIGHT_M = 100.0


def parse_intrinsics(text: str) -> tuple[float, float, float, float]:
    """Parse ``"fx,fy,cx,cy"`` (pixels) as given to ``--intrinsics``."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InputError(f"--intrinsics must be four numbers fx,fy,cx,cy, got {text!r}")
    if values[0] <= 0 or values[1] <= 0:
        raise InputError(f"--intrinsics focal lengths must be positive, got {text!r}")
    return values  # type: ignore[return-value]


def check_camera_height(value: object, name: str = "camera height") -> float:
    """The camera's height above the floor in metres: a number in (0, MAX_CAMERA_HEIGHT_M]."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)):
        raise InputError(f"{name} must be a number of metres, got {value!r}")
    height = float(value)
    if not (math.isfinite(height) and 0 < height <= MAX_CAMERA_HEIGHT_M):
        raise InputError(f"{name} must be above 0 and at most {MAX_CAMERA_HEIGHT_M:g} m, got {value!r}")
    return height


def check_image(image: object) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array with sides of at least ``MIN_IMAGE_SIDE`` pixels."""
    try:
        array = np.asarray(image)  # also a Pillow image
    except (TypeError, ValueError):
        array = None
    if array is None or array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        got = f"{array.shape} {array.dtype}" if array is not None else type(image).__name__
        raise InputError(f"image must be an (H, W, 3) uint8 RGB array or an image file, got {got}")
    if min(array.shape[:2]) < MIN_IMAGE_SIDE:
        raise InputError(f"image too small ({array.shape[1]}x{array.shape[0]}); need at least {MIN_IMAGE_SIDE} px a side")
    return array


def check_K(K: object) -> np.ndarray:
    """(3, 3) float64 intrinsics in pixels with finite entries and positive focal lengths."""
    try:
        matrix = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"K must be a (3, 3) matrix of numbers, got {type(K).__name__}") from None
    if matrix.shape != (3, 3):
        raise InputError(f"K must be (3, 3), got shape {matrix.shape}")
    if not np.isfinite(matrix).all() or matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
        raise InputError("K must be finite with positive focal lengths K[0, 0] and K[1, 1]")
    return matrix


def check_boxes(boxes: object, where: str = "boxes", size: tuple[int, int] | None = None) -> np.ndarray:
    """Person boxes as an (N, 4) float64 array of [x0, y0, x1, y1] pixels.

    Accepts a list of boxes, one flat box, or none (``[]``). With the image ``size`` (W, H),
    a box lying wholly outside the image is refused (it can only be a mistake: other axes,
    another image's boxes).
    """
    try:
        array = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):  # ragged or not numbers
        array = None
    if array is not None and array.shape in ((0,), (4,)):
        array = array.reshape(-1, 4)  # [] is no box, a flat [x0, y0, x1, y1] is one
    # Only (N, 4): a reshape would silently turn [[x0, y0], [x1, y1]] into a box.
    if array is None or array.ndim != 2 or array.shape[1] != 4:
        raise InputError(f"{where}: expected a list of [x0, y0, x1, y1]")
    if not np.isfinite(array).all() or (array[:, 2] <= array[:, 0]).any() or (array[:, 3] <= array[:, 1]).any():
        raise InputError(f"{where}: each box needs finite x0 < x1 and y0 < y1")
    if size is not None:
        width, height = size
        outside = (array[:, 2] <= 0) | (array[:, 3] <= 0) | (array[:, 0] >= width) | (array[:, 1] >= height)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise InputError(f"{where}: box {i} {array[i].tolist()} lies outside the {width}x{height} image")
    return array
